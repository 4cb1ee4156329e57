"""The apply lock: one ``lf apply`` at a time per workspace, on any machine.

Two applies at once would compute the same votes twice and add each LF's fault count twice.
The lock lives in the store, not in a file, because a PostgreSQL workspace is shared by
several machines.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import delete
from sqlalchemy import text as sql
from sqlalchemy.engine import Connection
from sqlmodel import col

from labeling.context import Context
from labeling.errors import LabelloopError
from labeling.store import db
from labeling.store.models import SchemaInfo
from labeling.store.processes import process_gone

# The key of the PostgreSQL advisory lock held while an apply runs. Advisory locks are scoped
# to one database, and a workspace owns its database, so this is one lock per workspace.
_APPLY_LOCK_KEY = 0x6C6C6C6661  # "lllfa"
# The SQLite store's lock row (in ``schemainfo``), holding ``pid@host token`` of its owner.
_APPLY_LOCK_ROW = "lf_apply_lock"
_LOCK_POLL_SECONDS = 0.2
_RUNNING = (
    "another `lf apply` is running on this workspace (the CLI, the LFs page or a notebook); "
    "wait for it to finish, then apply again"
)


class ApplyRunning(LabelloopError):
    """Another ``lf apply`` holds this workspace's apply lock (exit code 1: try again later)."""


@contextmanager
def apply_lock(
    ws: Context, *, wait: bool = True, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold this workspace's apply lock: one ``lf apply`` at a time, on any machine.

    PostgreSQL (team setups, several machines): a session-level advisory lock on a connection
    kept for the whole apply; the server drops it when that connection ends, also when the
    process holding it dies. SQLite (one machine's file): a row in ``schemainfo`` naming its
    owner (``pid@host`` and a random token), written under ``BEGIN IMMEDIATE`` so two writers
    cannot both see it free; a row whose process no longer exists is taken over. A lock held
    by someone else makes the caller wait (``on_wait`` is called once) or, without ``wait``,
    raises :class:`ApplyRunning`.
    """
    if db.is_sqlite(ws.engine):
        with _sqlite_apply_lock(ws, wait=wait, on_wait=on_wait):
            yield
        return
    conn = ws.engine.connect()
    try:
        _take(lambda: _try_advisory_lock(conn), wait=wait, on_wait=on_wait)
        try:
            yield
        finally:
            try:
                conn.execute(sql("SELECT pg_advisory_unlock(:key)"), {"key": _APPLY_LOCK_KEY})
                conn.commit()
            except Exception:
                conn.invalidate()  # closes the connection for real, and the lock with it
                raise
    finally:
        conn.close()


def _take(try_lock: Callable[[], bool], *, wait: bool, on_wait: Callable[[], None] | None) -> None:
    """Call ``try_lock`` until it takes the lock, every ``_LOCK_POLL_SECONDS``; without
    ``wait``, raise :class:`ApplyRunning` after the first miss. ``on_wait`` is called once."""
    told = False
    while not try_lock():
        if not wait:
            raise ApplyRunning(_RUNNING)
        if on_wait is not None and not told:
            on_wait()
            told = True
        time.sleep(_LOCK_POLL_SECONDS)


def _try_advisory_lock(conn: Connection) -> bool:
    """Try the PostgreSQL advisory lock once on ``conn``; no transaction stays open after."""
    taken = conn.execute(sql("SELECT pg_try_advisory_lock(:key)"), {"key": _APPLY_LOCK_KEY})
    held = bool(taken.scalar())
    conn.commit()  # the lock is the session's: no transaction stays open during the apply
    return held


@contextmanager
def _sqlite_apply_lock(
    ws: Context, *, wait: bool, on_wait: Callable[[], None] | None
) -> Iterator[None]:
    me = f"{os.getpid()}@{socket.gethostname()} {uuid.uuid4().hex}"
    _take(lambda: _try_lock_row(ws, me), wait=wait, on_wait=on_wait)
    try:
        yield
    finally:
        with db.write_session(ws.engine) as session:
            session.execute(
                delete(SchemaInfo).where(
                    col(SchemaInfo.key) == _APPLY_LOCK_ROW, col(SchemaInfo.value) == me
                )
            )


def _try_lock_row(ws: Context, me: str) -> bool:
    """Write ``me`` as the SQLite lock row's owner if the row is free or its owner is gone."""
    with db.write_session(ws.engine) as session:
        row = session.get(SchemaInfo, _APPLY_LOCK_ROW)
        if row is None:
            session.add(SchemaInfo(key=_APPLY_LOCK_ROW, value=me))
            return True
        if _owner_gone(row.value):
            row.value = me
            session.add(row)
            return True
        return False


def _owner_gone(owner: str) -> bool:
    """Whether the ``pid@host token`` owner of a lock row is a process of this host that ended."""
    return process_gone(owner.split(" ", 1)[0])
