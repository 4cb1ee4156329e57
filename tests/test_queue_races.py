"""Races between undo and claim on an item's last place, replayed step by step.

Two threads, two transactions: one is stopped inside the queue at the moment that matters
(a hook around a queue internal waits on an event), the other runs meanwhile. PostgreSQL
must keep them apart with row locks; SQLite serialises writers, so there the second one waits.
Every wait has a timeout: a regression fails the test, it never hangs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from labeling import Workspace
from labeling.annotation import answers, leases
from labeling.config import write_config
from labeling.errors import NothingToUndo
from labeling.store.models import Item

OVERLAP = 2
# Long enough for any step here on a loaded machine; only reached when something is wrong.
STEP_TIMEOUT = 20.0
# How long a transaction that should be waiting for the other's lock is watched not finishing
# (SQLite only: PostgreSQL shows its lock waits, see _waits_for_a_lock).
SQLITE_WAIT_SHOWN = 0.5


@pytest.fixture
def ws(tmp_path, db_url) -> Iterator[Workspace]:
    """Overlap 2, one item: ann skipped it, bob labelled it, so one place is left."""
    created = Workspace.create(tmp_path / "race", labels=["a", "b"], db_url=db_url)
    write_config(created.root, replace(created.config, overlap=OVERLAP))
    created.close()
    ws = Workspace.open(tmp_path / "race")
    pool = tmp_path / "pool.csv"
    pool.write_text("id,text\nx,the only item\n")
    ws.import_file(pool, id_field="id")
    for name in ("ann", "bob", "cat"):
        ws.add_user(name)
    item = ws.next_item("ann")
    assert item is not None
    ws.skip(item.item_id, "ann")
    again = ws.next_item("bob")
    assert again is not None and again.item_id == item.item_id
    ws.annotate(item.item_id, "bob", "a")
    yield ws
    ws.close()


@dataclass
class Pause:
    """Stops one thread right after it returns from a queue function, until released."""

    thread_name: str
    reached: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)

    def around(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def paused(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if threading.current_thread().name == self.thread_name and not self.reached.is_set():
                self.reached.set()
                if not self.go.wait(STEP_TIMEOUT):
                    raise TimeoutError(f"{self.thread_name} was never released")
            return result

        return paused


@dataclass
class Call:
    """A queue call running in a thread of its own; ``outcome`` is its result or exception."""

    thread: threading.Thread
    done: threading.Event
    outcome: list[Any]

    @classmethod
    def start(cls, name: str, run: Callable[[], Any]) -> Call:
        done = threading.Event()
        outcome: list[Any] = []

        def body() -> None:
            try:
                outcome.append(run())
            except BaseException as exc:  # handed to the test through outcome
                outcome.append(exc)
            finally:
                done.set()

        thread = threading.Thread(target=body, name=name, daemon=True)
        thread.start()
        return cls(thread=thread, done=done, outcome=outcome)

    def result(self) -> Any:
        self.thread.join(STEP_TIMEOUT)
        assert not self.thread.is_alive(), f"{self.thread.name} did not finish"
        return self.outcome[0]


def _waits_for_a_lock(ws: Workspace, call: Call) -> bool:
    """Whether ``call`` is held up by the other transaction's lock (False: it finished)."""
    if ws.engine.dialect.name == "sqlite":
        # The writer lock is a Python lock and a file lock: nothing to ask, so watch a while.
        return not call.done.wait(SQLITE_WAIT_SHOWN)
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + STEP_TIMEOUT
    while not call.done.wait(0.01):
        with ws.engine.connect() as conn:
            if conn.execute(waiting).scalar():
                return True
        assert time.monotonic() < deadline, f"{call.thread.name} neither waits nor finishes"
    return False


def _n_labels(ws: Workspace, item_id: int) -> int:
    with Session(ws.engine) as session:
        item = session.get(Item, item_id)
        assert item is not None
        return item.n_labels


def _the_item(ws: Workspace) -> int:
    with Session(ws.engine) as session:
        item_id = session.exec(select(Item.id)).one()
        assert item_id is not None
        return item_id


def test_claim_while_undo_holds_the_last_place(ws, monkeypatch):
    """Undo found room on ann's skipped item; before it takes the place, cat claims.

    PostgreSQL: undo holds the item's row, so cat's claim passes over it (SKIP LOCKED) and
    finishes with nothing. SQLite: cat's claim waits for undo's transaction, then finds the
    item full. Either way only ann can answer, and the item ends with two labels, not three.
    """
    item_id = _the_item(ws)
    pause = Pause("undo")
    monkeypatch.setattr(answers, "has_room", pause.around(answers.has_room))
    undo = Call.start("undo", lambda: ws.undo("ann"))
    try:
        assert pause.reached.wait(STEP_TIMEOUT), "undo never checked for room"
        claim = Call.start("claim", lambda: ws.next_item("cat"))
        # PostgreSQL: the claim skips the locked row and finishes while undo is still stopped.
        claim_waited = _waits_for_a_lock(ws, claim)
    finally:
        pause.go.set()
    back, claimed = undo.result(), claim.result()
    assert not isinstance(back, BaseException), back
    assert not isinstance(claimed, BaseException), claimed
    assert back.item_id == item_id and back.is_undo
    # Both answer whatever they were given: the store must not end beyond the overlap.
    ws.annotate(item_id, "ann", "b")
    if claimed is not None:
        ws.annotate(claimed.item_id, "cat", "a")
    assert _n_labels(ws, item_id) == OVERLAP
    assert claimed is None, "cat was given the place undo had found"
    # SQLite serialises the two writers: there the claim could not even start meanwhile.
    assert claim_waited == (ws.engine.dialect.name == "sqlite")


def test_undo_while_a_claim_holds_the_last_place(ws, monkeypatch):
    """The other order: cat's claim has picked (and locked) the item, then ann undoes.

    Undo must wait for the claim's transaction, then see cat's lease and find no room: ann
    has nothing to go back to, and cat's answer is the item's second and last label.
    """
    item_id = _the_item(ws)
    pause = Pause("claim")
    monkeypatch.setattr(leases, "_pick_item", pause.around(leases._pick_item))
    claim = Call.start("claim", lambda: ws.next_item("cat"))
    try:
        assert pause.reached.wait(STEP_TIMEOUT), "the claim never picked an item"
        undo = Call.start("undo", lambda: ws.undo("ann"))
        undo_waited = _waits_for_a_lock(ws, undo)
    finally:
        pause.go.set()
    claimed, back = claim.result(), undo.result()
    assert not isinstance(claimed, BaseException), claimed
    assert claimed is not None and claimed.item_id == item_id
    ws.annotate(item_id, "cat", "a")
    if not isinstance(back, BaseException):
        ws.annotate(back.item_id, "ann", "b")
    assert _n_labels(ws, item_id) == OVERLAP
    assert isinstance(back, NothingToUndo), back
    assert undo_waited, "undo went ahead while the claim held the item"
