"""The webhooks' sender: POSTs the outbox's due deliveries, signed, with retries and backoff.

Events are written to the outbox in their own transactions (:mod:`labeling.store.outbox`); this
loop sends them. A row is *claimed* before it is sent: one UPDATE, still conditioned on the row
being pending and due, pushes its ``due_at`` past the hook's timeout and counts the attempt, so
two senders (the worker's and the API server's) never send a row at the same moment, and a
sender killed mid-request leaves a row that is due again once the claim runs out. Delivery is
therefore at least once: a receiver dedupes by ``X-Labelloop-Delivery``.

A reply in 2xx delivers the row; anything else (another status, a refused connection, no reply
in time, an unset secret variable) is recorded on the row (``last_status``, ``last_error``) and
tried again after a backoff with jitter (10 s, 30 s, 90 s, ... capped at an hour) until the
hook's ``max_attempts``, then the row is ``dead``. The secret is read from the environment at
each attempt (setting it later recovers) and written nowhere.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, astuple, dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlmodel import col

from labeling import __version__
from labeling.config_tables import WebhookSettings
from labeling.context import Context
from labeling.errors import BadInput
from labeling.service.signing import signature
from labeling.store import db, outbox
from labeling.store.models import Outbox, utcnow

_ROWS = Outbox.__table__  # type: ignore[attr-defined]
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATES = (PENDING, DELIVERED, DEAD)
# A claim outlasts the hook's timeout by this much: the time to record the attempt.
CLAIM_MARGIN_SECONDS = 2.0
# A pass sends this many deliveries at once, so that one slow endpoint does not hold the rest.
SENDERS = 4
POLL_SECONDS = 1.0
# What a receiver's reply may say in last_error (its body is not kept beyond this).
REPLY_CHARS = 200
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
# Jitter only spreads retries out: no seed, no cryptographic strength needed.
_JITTER = random.Random()


@dataclass(frozen=True)
class Backoff:
    """The wait after the n-th failed attempt: ``first * factor ** (n - 1)``, at most ``cap``
    seconds, times a random factor in ``1 ± jitter`` (so retries of many rows spread out)."""

    first: float = 10.0
    factor: float = 3.0
    cap: float = 3600.0
    jitter: float = 0.2

    def delay(self, attempts: int, rng: random.Random) -> float:
        base = min(self.cap, self.first * self.factor ** max(attempts - 1, 0))
        return base * (1 + rng.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True)
class Attempt:
    """One try's outcome: the HTTP status (None: no reply) and what went wrong, in words."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class SendSummary:
    """What one pass did: deliveries tried, delivered, to be retried, and now dead."""

    tried: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0

    def __add__(self, other: SendSummary) -> SendSummary:
        return SendSummary(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class _Claimed:
    id: int
    event: str
    hook: str
    url: str
    body: str
    attempts: int


def hook_named(ws: Context, name: str) -> WebhookSettings:
    """The ``[[webhooks]]`` entry called ``name``; BadInput lists the names there are."""
    for hook in ws.config.webhooks:
        if hook.name == name:
            return hook
    names = ", ".join(hook.name for hook in ws.config.webhooks) or "none"
    raise BadInput(f"no webhook {name!r} in [[webhooks]] of labelloop.toml; configured: {names}")


def _claim(ws: Context, *, due_by: datetime, only: Sequence[int] | None) -> _Claimed | None:
    """Take one row due by ``due_by`` for this sender, or None when none is."""
    hooks = {hook.name: hook for hook in ws.config.webhooks}
    due = (_ROWS.c.state == PENDING) & (_ROWS.c.due_at <= due_by)
    query = select(_ROWS.c.id, _ROWS.c.hook).where(due)
    if only is not None:
        query = query.where(_ROWS.c.id.in_(list(only)))
    # Read first: an idle poll must not take SQLite's write lock from the annotators.
    with db.read_session(ws.engine) as session:
        candidates = session.execute(query.order_by(_ROWS.c.due_at, _ROWS.c.id).limit(16)).all()
    if not candidates:
        return None
    with db.write_session(ws.engine) as session:
        now = utcnow()
        for row_id, name in candidates:
            timeout = (hooks.get(name) or WebhookSettings).timeout_seconds
            taken = session.execute(
                update(_ROWS)
                .where(_ROWS.c.id == row_id, due)
                .values(
                    due_at=now + timedelta(seconds=timeout + CLAIM_MARGIN_SECONDS),
                    attempts=_ROWS.c.attempts + 1,
                )
                .returning(
                    _ROWS.c.id,
                    _ROWS.c.event,
                    _ROWS.c.hook,
                    _ROWS.c.url,
                    _ROWS.c.body,
                    _ROWS.c.attempts,
                )  # fmt: skip
            ).first()
            if taken is not None:
                return _Claimed(*taken)
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed delivery (its status is recorded), not a GET elsewhere."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def post(url: str, body: str, headers: dict[str, str], timeout: float) -> Attempt:
    """POST ``body`` to ``url``; the reply's status, or why there was none."""
    handlers: list[Any] = [_NoRedirect()]
    if urlsplit(url).hostname in LOOPBACK_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))  # a proxy cannot reach our loopback
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout) as reply:
            reply.read(65536)
            return Attempt(reply.status, None)
    except urllib.error.HTTPError as exc:
        said = exc.read(REPLY_CHARS).decode("utf-8", "replace").strip()
        return Attempt(exc.code, f"HTTP {exc.code} {exc.reason}" + (f": {said}" if said else ""))
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return Attempt(None, f"no connection within {timeout:g} s")
        return Attempt(None, f"could not connect: {exc.reason}")
    except TimeoutError:
        return Attempt(None, f"no reply within {timeout:g} s")
    except OSError as exc:
        return Attempt(None, f"connection failed: {exc!r}")


def _deliver(ws: Context, row: _Claimed) -> Attempt:
    """Sign and send one claimed row (an unset secret or a removed hook fails the attempt)."""
    hook = next((h for h in ws.config.webhooks if h.name == row.hook), None)
    if hook is None:
        return Attempt(None, f"webhook {row.hook!r} is no longer in [[webhooks]] of labelloop.toml")
    secret = os.environ.get(hook.secret_env)
    if not secret:
        return Attempt(
            None,
            f"the environment variable {hook.secret_env} (secret_env of webhook "
            f"{hook.name!r}) is not set in the sender's process",
        )
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"labelloop-webhooks/{__version__}",
        "X-Labelloop-Event": row.event,
        "X-Labelloop-Delivery": _delivery_id(row.body),
        "X-Labelloop-Timestamp": str(stamp),
        "X-Labelloop-Signature": signature(secret, stamp, row.body),
    }
    return post(row.url, row.body, headers, hook.timeout_seconds)


def _delivery_id(body: str) -> str:
    """The body's ``id`` (the JSON is ours, written by labeling.store.outbox)."""
    return str(json.loads(body)["id"])


def _record(ws: Context, row: _Claimed, attempt: Attempt, limit: int, backoff: Backoff) -> str:
    """Write the attempt's outcome on the row (``limit``: the hook's tries); returns its state
    now."""
    now = utcnow()
    values: dict[str, Any] = {"last_status": attempt.status, "last_error": attempt.error}
    if row.attempts > limit:  # a sender was stopped during the last attempt: not sent again
        values = {"state": DEAD, "last_error": f"all {limit} attempts used; the last was cut off"}
    elif attempt.delivered:
        values |= {"state": DELIVERED, "delivered_at": now}
    elif row.attempts >= limit:
        values |= {"state": DEAD}
    else:
        values |= {"due_at": now + timedelta(seconds=backoff.delay(row.attempts, _JITTER))}
    with db.write_session(ws.engine) as session:
        session.execute(
            update(_ROWS).where(_ROWS.c.id == row.id, _ROWS.c.state == PENDING).values(**values)
        )
    return str(values.get("state", PENDING))


def _send_one(ws: Context, row: _Claimed, backoff: Backoff) -> str:
    """Send a claimed row (unless its tries are used up) and record the outcome; its state."""
    hook = next((h for h in ws.config.webhooks if h.name == row.hook), None)
    limit = hook.max_attempts if hook is not None else WebhookSettings.max_attempts
    attempt = Attempt(None, None) if row.attempts > limit else _deliver(ws, row)
    return _record(ws, row, attempt, limit, backoff)


def send_due(
    ws: Context,
    *,
    backoff: Backoff | None = None,
    only: Sequence[int] | None = None,
    senders: int = SENDERS,
) -> SendSummary:
    """Send every delivery due now (``only``: of these rows), ``senders`` at a time; returns
    what was done. Rows that fail come due again after their backoff, for a later pass."""
    wait = backoff or Backoff()
    started = utcnow()

    def drain() -> SendSummary:
        done = SendSummary()
        while (row := _claim(ws, due_by=started, only=only)) is not None:
            state = _send_one(ws, row, wait)
            done += SendSummary(
                1, int(state == DELIVERED), int(state == PENDING), int(state == DEAD)
            )
        return done

    if senders <= 1:
        return drain()
    with ThreadPoolExecutor(max_workers=senders, thread_name_prefix="webhook") as pool:
        parts = [pool.submit(drain) for _ in range(senders)]
        return sum((part.result() for part in parts), SendSummary())


def run_sender(
    ws: Context,
    stop: threading.Event,
    *,
    poll: float = POLL_SECONDS,
    backoff: Backoff | None = None,
) -> None:
    """Send due deliveries every ``poll`` seconds until ``stop`` is set: the loop the round
    worker runs in a thread, and the HTTP API server may run in its own process. A pass that
    fails (the store away) is reported on stderr and tried again at the next poll."""
    while not stop.is_set():
        try:
            outbox.attach(ws.engine, ws.config.webhooks, workspace=ws.config.name)
            send_due(ws, backoff=backoff)
        except Exception as exc:  # reported; the loop must outlive a store restart
            print(f"webhooks: sending failed ({exc!r}); retrying", file=sys.stderr, flush=True)
        stop.wait(poll)


def ping(ws: Context, name: str) -> int:
    """Write a ``ping`` delivery to webhook ``name`` alone (whatever its events); its row id."""
    hook = hook_named(ws, name)
    data = {"hook": hook.name, "message": "a test delivery from `labelloop webhooks test`"}
    with db.write_session(ws.engine) as session:
        (row_id,) = outbox.emit(
            session, [replace(hook, events=(outbox.PING,))], outbox.PING, data,
            workspace=ws.config.name,
        )  # fmt: skip
    return row_id


@dataclass(frozen=True)
class Delivery:
    """One row of ``labelloop webhooks log``."""

    id: int
    delivery: str
    event: str
    hook: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_try: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """For JSON: the times in ISO 8601."""
        found = asdict(self)
        return found | {k: v.isoformat() for k, v in found.items() if isinstance(v, datetime)}


def deliveries(
    ws: Context,
    *,
    limit: int = 50,
    state: str | None = None,
    event: str | None = None,
    ids: Sequence[int] | None = None,
) -> list[Delivery]:
    """The outbox, newest first, at most ``limit`` rows, of one state, event and of these row
    ids if given."""
    if state is not None and state not in STATES:
        raise BadInput(f"option '--state': expected one of {', '.join(STATES)}, found {state!r}")
    if limit < 1:
        raise BadInput(f"option '--limit': expected at least 1, found {limit}")
    query = select(Outbox).order_by(col(Outbox.id).desc()).limit(limit)
    if state is not None:
        query = query.where(col(Outbox.state) == state)
    if event is not None:
        query = query.where(col(Outbox.event) == event)
    if ids is not None:
        query = query.where(col(Outbox.id).in_(list(ids)))
    with db.read_session(ws.engine) as session:
        rows = session.execute(query).scalars().all()
    return [
        Delivery(
            id=int(row.id or 0),
            delivery=_delivery_id(row.body),
            event=row.event,
            hook=row.hook,
            state=row.state,
            attempts=row.attempts,
            last_status=row.last_status,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            next_try=row.due_at if row.state == PENDING else None,
        )  # fmt: skip
        for row in rows
    ]
