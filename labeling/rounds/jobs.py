"""Rounds as jobs: queueing and claiming them, the heartbeat, dead workers, failures.

A round goes ``queued`` -> ``running`` -> ``succeeded`` or ``failed``. One runs at a time per
workspace: :func:`claim_queued` flips the oldest queued round to running only when none is
running, in one write transaction. While it runs, a :class:`Heartbeat` thread writes the time
and the stage every :data:`HEARTBEAT_SECONDS`; a running round whose heartbeat is older than
:data:`STALE_SECONDS` belonged to a worker that died, and :func:`recover` marks it failed.
What a running round does is :mod:`labeling.rounds.pipeline`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from labeling.context import Context
from labeling.errors import LabelloopError, StoreError
from labeling.store import db, outbox
from labeling.store.doctor import check
from labeling.store.models import Item, Round, utcnow
from labeling.store.processes import process_gone

HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 30.0
# How long a failed round waits for an unreachable store to record why it failed.
FAILURE_PATIENCE_SECONDS = 120.0

# Called with the name of each stage of a round as it starts ("training", "saving"...): the
# heartbeat writes it on the round, ``labelloop retrain`` prints it.
StageCallback = Callable[[str], None]


class RoundError(LabelloopError):
    """A round could not run (another is running, nothing to score...)."""


def lower_priority(nice: int) -> int:
    """Run this process at CPU priority ``nice`` (Unix nice value) or lower; returns the value
    in effect.

    Rounds are batch work beside people waiting on clicks: at a lower priority the kernel
    gives the annotators' processes (and the database server) the CPU first when both want it,
    and the round all of it otherwise. Every thread is set, numpy's pools included (on Linux a
    nice value belongs to a thread, and those threads exist before this call). The value only
    ever goes up: an unprivileged process cannot take it back.
    """
    if not hasattr(os, "setpriority") or nice <= 0:
        return os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # not Linux: the process
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:
            pass  # a thread that has ended, or a platform that refuses
    return os.getpriority(os.PRIO_PROCESS, 0)


# --------------------------------------------------------------------------- queueing


def queue_round(ws: Context, *, trigger: str, strategy: str | None = None) -> Round:
    """Queue a round; if one is already queued, that one is returned (no pile-up), with
    ``strategy`` when one is given."""
    with db.write_session(ws.engine) as session:
        queued = session.exec(
            select(Round).where(Round.status == "queued").order_by(col(Round.id))
        ).first()
        if queued is not None:
            if strategy is not None and queued.strategy != strategy:
                queued.strategy = strategy  # the latest explicit request decides
                session.add(queued)
                session.flush()
            return queued
        round_ = Round(
            status="queued", trigger=trigger, strategy=strategy or ws.config.strategy or None
        )
        session.add(round_)
        session.flush()
        session.refresh(round_)
        return round_


def labelled_item_count(ws: Context) -> int:
    """Pool items with at least one current label: what a round's ``n_human`` counts."""
    with db.read_session(ws.engine) as session:
        return int(
            session.exec(
                select(func.count()).where(Item.split == "pool", col(Item.n_labels) > 0)
            ).one()
        )


def maybe_trigger(ws: Context) -> Round | None:
    """Queue a round when ``retrain_every`` more items are labelled than the last round used."""
    every = ws.config.retrain_every
    if every <= 0:
        return None
    with db.read_session(ws.engine) as session:
        busy = session.exec(
            select(Round.id).where(col(Round.status).in_(("queued", "running")))
        ).first()
        last = session.exec(
            select(Round).where(Round.status == "succeeded").order_by(col(Round.id).desc())
        ).first()
    if busy is not None:
        return None
    done = labelled_item_count(ws)
    since = done - (last.n_human if last is not None else 0)
    if since >= every:
        return queue_round(ws, trigger=f"every {every} labels")
    return None


def claim_queued(ws: Context, *, round_id: int | None = None) -> int | None:
    """Start the oldest queued round (or ``round_id``) unless a round is running."""
    with db.write_session(ws.engine) as session:
        running = session.exec(select(Round.id).where(Round.status == "running")).first()
        if running is not None:
            return None
        query = select(Round).where(Round.status == "queued")
        if round_id is not None:
            query = query.where(Round.id == round_id)
        if session.get_bind().dialect.name != "sqlite":
            query = query.with_for_update(skip_locked=True)
        round_ = session.exec(query.order_by(col(Round.id))).first()
        if round_ is None:
            return None
        now = utcnow()
        round_.status = "running"
        round_.started_at = now
        round_.heartbeat = now
        round_.worker = _worker_name()
        round_.stage = "starting"
        session.add(round_)
        return round_.id


def _worker_name() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


# --------------------------------------------------------------------------- while it runs


class Heartbeat:
    """Writes the round's heartbeat and stage every few seconds from a thread."""

    def __init__(self, ws: Context, round_id: int) -> None:
        self.ws = ws
        self.round_id = round_id
        self.stage = "starting"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="round-heartbeat")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def set(self, stage: str) -> None:
        self.stage = stage
        self._beat()

    def _beat(self) -> None:
        try:
            with db.write_session(self.ws.engine) as session:
                session.execute(
                    update(Round)
                    .where(col(Round.id) == self.round_id, col(Round.status) == "running")
                    .values(heartbeat=utcnow(), stage=self.stage)
                )
        except Exception:  # a missed beat is retried; it must never kill the round
            pass

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._beat()


def record_failure(
    ws: Context,
    round_id: int,
    detail: str,
    trace: str,
    *,
    patience: float | None = None,
) -> None:
    """Mark the round failed with the real reason, waiting for the store if it is away.

    A round often fails *because* the store went away (a PostgreSQL restart, a dropped
    network): the first write of the failure fails too. Left at that, the round stayed
    ``running`` until some later :func:`recover` saw its heartbeat go stale, and said only
    "no heartbeat". So the write is retried (backing off to :data:`HEARTBEAT_SECONDS`) for up
    to ``patience`` seconds (default :data:`FAILURE_PATIENCE_SECONDS`); the heartbeat thread
    keeps the round alive meanwhile, and the first write that gets through records the reason.
    """
    wait = FAILURE_PATIENCE_SECONDS if patience is None else patience
    deadline = time.monotonic() + wait
    delay = 0.25
    while True:
        try:
            with db.write_session(ws.engine) as session:
                round_ = session.get(Round, round_id)
                assert round_ is not None
                tell_failure(session, ws, round_, detail)
                round_.status = "failed"
                round_.error = detail[:2000]
                round_.finished_at = utcnow()
                round_.stage = None
                metrics = json.loads(round_.metrics or "{}")
                metrics["traceback"] = trace
                round_.metrics = json.dumps(metrics)
                session.add(round_)
            return
        except DBAPIError as store_exc:
            if time.monotonic() + delay > deadline:
                raise StoreError(
                    f"round {round_id} failed ({detail[:300]}) and the store stayed unreachable "
                    f"for {wait:.0f} s, so the failure could not be recorded; the round shows "
                    "as running until `labelloop doctor`, `labelloop retrain` or the worker "
                    "finds its heartbeat stale and marks it failed"
                ) from store_exc
            time.sleep(delay)
            delay = min(delay * 2, HEARTBEAT_SECONDS)


def tell_failure(session: Session, ws: Context, round_: Round, detail: str) -> None:
    """Write the webhooks' ``round.failed`` in the transaction that marks the round failed."""
    data = {"round": round_.id, "error": detail[:2000], "stage": round_.stage,
            "trigger": round_.trigger}  # fmt: skip
    outbox.emit(session, ws.config.webhooks, "round.failed", data, workspace=ws.config.name)


# --------------------------------------------------------------------------- dead workers


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_dead(round_: Round) -> bool:
    """Whether a running round's worker is gone: stale heartbeat, or no such local process."""
    stale = utcnow() - timedelta(seconds=STALE_SECONDS)
    return (
        round_.heartbeat is None or _aware(round_.heartbeat) < stale or process_gone(round_.worker)
    )


def recover(ws: Context) -> list[int]:
    """Mark failed every running round whose worker died.

    Dead means: its heartbeat is older than :data:`STALE_SECONDS`, or its worker was a process
    of this machine that no longer exists.
    """
    with db.write_session(ws.engine) as session:
        running = session.exec(select(Round).where(Round.status == "running")).all()
        dead = [r for r in running if is_dead(r)]
        for round_ in dead:
            round_.error = (
                f"the worker running it ({round_.worker or 'unknown'}) stopped: no heartbeat "
                f"for more than {STALE_SECONDS:.0f} s"
            )
            tell_failure(session, ws, round_, round_.error)
            round_.status = "failed"
            round_.finished_at = utcnow()
            session.add(round_)
        return [r.id for r in dead if r.id is not None]


def round_checks(ws: Context, *, fix: bool = False) -> list[dict[str, Any]]:
    """``doctor``'s checks of rounds: none left running by a dead worker (``fix`` fails them),
    and the promoted round's model folder on disk."""
    with db.read_session(ws.engine) as session:
        running = session.exec(select(Round).where(Round.status == "running")).all()
        promoted = session.exec(select(Round).where(col(Round.promoted).is_(True))).all()
    checks = []
    dead = recover(ws) if fix else []
    stuck = [
        f"round {r.id} is running (worker {r.worker or 'unknown'})"
        for r in running
        if r.id not in dead and is_dead(r)
    ]
    checks.append(check("rounds left running by a dead worker", stuck, len(dead)))
    missing = [
        f"round {r.id} is promoted but {r.model_path} is missing"
        for r in promoted
        if r.model_path and not (Path(ws.root) / r.model_path).exists()
    ]
    if len(promoted) > 1:
        missing.append(f"{len(promoted)} rounds are marked promoted; one at most should be")
    checks.append(check("promoted round", missing))
    return checks
