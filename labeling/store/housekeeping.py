"""Pruning the two tables that grow by a row per key press or event: the browser tabs' applied
operations (:class:`~labeling.store.models.ClientOp`) and the webhooks' finished deliveries
(:class:`~labeling.store.models.Outbox`).

What is kept (docs/workspace.md, "Housekeeping", says why):

* a tab's operation for :attr:`Retention.clientop` (30 days), and after that while it is one
  of the :attr:`Retention.tab_keeps` (200) newest of its tab, up to
  :attr:`Retention.clientop_most` (180 days). A tab sends an operation again only while no
  reply to a batch holding it has reached it, and each batch is the head of the tab's queue of
  unacknowledged operations, at most 200 (``MAX_OPS`` of labeling.ui.label_route): so the
  operations it may still send are among its 200 newest, which this keeps however long the
  tab sleeps (a laptop closed on a lost reply). An older row is of no resend any more;
  30 days keeps the tab's undo of its own older answers working as long;
* a delivered webhook delivery for :attr:`Retention.delivered` (30 days) after its last try, a
  dead one for :attr:`Retention.dead` (90 days: ``labelloop webhooks log`` shows them for
  debugging); a pending one always.

Rows go in batches of at most ``batch`` rows, each its own short write transaction, with a
pause between them, so the Label page's claims and answers (SQLite has one writer) wait for one
batch at most, never for the whole prune.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, tuple_
from sqlmodel import Session

from labeling.store import db
from labeling.store.models import ClientOp, Outbox, utcnow

_OPS = ClientOp.__table__  # type: ignore[attr-defined]
_OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
# Outbox.state of a delivery sent, and of one out of tries (labeling.service.webhooks).
DELIVERED, DEAD = "delivered", "dead"
# Rows deleted per transaction: ~110 ms on SQLite on a loaded 2-core machine; 2,000 made
# the presses of a labeller no faster and the prune twice as long (benchmarks/bench_prune.py).
BATCH_ROWS = 5000
# Between two batches: a waiting claim takes the write lock here.
PAUSE_SECONDS = 0.02
# A tab's newest operations kept past ``Retention.clientop``: at least the operations a batch
# may carry (labeling.ui.label_route.MAX_OPS), as a tab resends only its latest batch's.
TAB_KEEPS = 200
# How often a long-running process prunes (labeling.rounds.worker).
EVERY_SECONDS = 300.0


@dataclass(frozen=True)
class Retention:
    """How long rows are kept (see the module)."""

    clientop: timedelta = timedelta(days=30)
    tab_keeps: int = TAB_KEEPS
    clientop_most: timedelta = timedelta(days=180)
    delivered: timedelta = timedelta(days=30)
    dead: timedelta = timedelta(days=90)


@dataclass
class Pruned:
    """What one prune removed (or, counted by :func:`due`, would remove), and in how many
    write transactions."""

    clientops: int = 0
    delivered: int = 0
    dead: int = 0
    batches: int = 0
    seconds: float = 0.0
    # Operations past ``clientop`` kept because they are among their tab's newest.
    kept_for_tabs: int = 0

    @property
    def rows(self) -> int:
        return self.clientops + self.delivered + self.dead


def prune(
    engine: Engine,
    *,
    now: datetime | None = None,
    retention: Retention = Retention(),
    batch: int = BATCH_ROWS,
    pause: float = PAUSE_SECONDS,
) -> Pruned:
    """Delete the rows past their retention (see the module), ``batch`` rows per transaction."""
    started = time.perf_counter()
    now = utcnow() if now is None else now
    done = Pruned()
    done.delivered = _delete_in_batches(
        engine, lambda n: _finished(DELIVERED, now - retention.delivered, n), batch, pause, done
    )
    done.dead = _delete_in_batches(
        engine, lambda n: _finished(DEAD, now - retention.dead, n), batch, pause, done
    )
    done.clientops = _delete_in_batches(
        engine, lambda n: _ops_older_than(now - retention.clientop_most, n), batch, pause, done
    )
    done.clientops += _prune_ops_of_quiet_tabs(engine, now, retention, batch, pause, done)
    done.seconds = time.perf_counter() - started
    return done


def _delete_in_batches(
    engine: Engine, statement: Callable[[int], Any], batch: int, pause: float, done: Pruned
) -> int:
    """Run ``statement(batch)`` (a DELETE of at most ``batch`` rows), each in its own write
    transaction, until it deletes fewer; how many rows went."""
    removed = 0
    while True:
        with db.write_session(engine) as session:
            gone = int(session.connection().execute(statement(batch)).rowcount or 0)
        done.batches += 1
        removed += gone
        if gone < batch:
            return removed
        time.sleep(pause)


def _finished(state: str, before: datetime, limit: int) -> Any:
    # due_at is the last try's time (its claim pushed it past the timeout): the index's order.
    oldest = (
        select(_OUTBOX.c.id)
        .where(_OUTBOX.c.state == state, _OUTBOX.c.due_at < before)
        .order_by(_OUTBOX.c.due_at)
        .limit(limit)
    )
    return delete(_OUTBOX).where(_OUTBOX.c.id.in_(oldest))


def _ops_older_than(before: datetime, limit: int) -> Any:
    oldest = (
        select(_OPS.c.cid)
        .where(_OPS.c.created_at < before)
        .order_by(_OPS.c.created_at)
        .limit(limit)
    )
    return delete(_OPS).where(_OPS.c.cid.in_(oldest))


def _prune_ops_of_quiet_tabs(
    engine: Engine,
    now: datetime,
    retention: Retention,
    batch: int,
    pause: float,
    done: Pruned,
    *,
    write: bool = True,
) -> int:
    """Delete (with ``write``; else only count) the operations older than
    ``retention.clientop`` but each tab's newest ``retention.tab_keeps``: walk them oldest
    first, ``batch`` at a time (a read, then a short write of the ones to go)."""
    since, before = now - retention.clientop_most, now - retention.clientop
    after: tuple[Any, str] | None = None
    removed = 0
    while True:
        query = select(_OPS.c.cid, _OPS.c.tab, _OPS.c.created_at).where(
            _OPS.c.created_at >= since, _OPS.c.created_at < before
        )
        if after is not None:
            query = query.where(tuple_(_OPS.c.created_at, _OPS.c.cid) > tuple_(*after))
        with db.read_session(engine) as session:
            candidates = session.execute(
                query.order_by(_OPS.c.created_at, _OPS.c.cid).limit(batch)
            ).all()
            kept_from = _kept_from(session, {row.tab for row in candidates}, retention.tab_keeps)
        going = [
            row.cid
            for row in candidates
            if row.tab in kept_from and row.created_at < kept_from[row.tab]
        ]
        done.kept_for_tabs += len(candidates) - len(going)
        if going and write:
            with db.write_session(engine) as session:
                session.execute(delete(_OPS).where(_OPS.c.cid.in_(going)))
            done.batches += 1
        removed += len(going)
        if len(candidates) < batch:
            return removed
        after = (candidates[-1].created_at, candidates[-1].cid)
        if write:
            time.sleep(pause)


def _kept_from(session: Session, tabs: set[str], keeps: int) -> dict[str, Any]:
    """For each tab of ``tabs`` with more than ``keeps`` operations, the time of the oldest of
    its ``keeps`` newest (an index walk of ``keeps`` rows per tab); the others keep all."""
    found: dict[str, Any] = {}
    for tab in sorted(tabs):
        query = (
            select(_OPS.c.created_at)
            .where(_OPS.c.tab == tab)
            .order_by(_OPS.c.created_at.desc())
            .offset(max(0, keeps - 1))
            .limit(1)
        )
        oldest_kept = session.execute(query).scalar()
        if oldest_kept is not None:
            found[tab] = oldest_kept
    return found


def due(
    engine: Engine,
    *,
    now: datetime | None = None,
    retention: Retention = Retention(),
    batch: int = BATCH_ROWS,
) -> Pruned:
    """How many rows :func:`prune` would delete now (for ``labelloop doctor``); nothing is
    written."""
    now = utcnow() if now is None else now
    counted = Pruned()
    with db.read_session(engine) as session:
        for state, kept in ((DELIVERED, retention.delivered), (DEAD, retention.dead)):
            where = (_OUTBOX.c.state == state) & (_OUTBOX.c.due_at < now - kept)
            count = session.execute(select(func.count()).select_from(_OUTBOX).where(where))
            setattr(counted, state, int(count.scalar() or 0))
        oldest = _OPS.c.created_at < now - retention.clientop_most
        count = session.execute(select(func.count()).select_from(_OPS).where(oldest))
        counted.clientops = int(count.scalar() or 0)
    counted.clientops += _prune_ops_of_quiet_tabs(
        engine, now, retention, batch, 0.0, counted, write=False
    )
    return counted


class Pruner:
    """Prunes at most every ``every`` seconds, for a loop that runs often (the round worker)."""

    def __init__(self, every: float = EVERY_SECONDS) -> None:
        self.every = every
        self.last: float | None = None

    def maybe_prune(self, engine: Engine) -> Pruned | None:
        """Prune when ``every`` seconds have gone by since the last prune (or none ran)."""
        if self.last is not None and time.monotonic() - self.last < self.every:
            return None
        self.last = time.monotonic()
        return prune(engine)
