"""The feed of label changes (``GET /labels``) against a recomputation (issue 25).

Hypothesis runs random sequences of every write that can change an item's label (answers,
relabelling after undo, adjudications, corrections, bulk labels and their undo, removal and
return, pushed items with labels) on a real store, SQLite and PostgreSQL. After every step a
follower reads the feed from its cursor, a few changes a page, and:

* the items it reads are exactly those whose label (or presence in the pool) differs from the
  step before: none missed, none repeated;
* each change it reads carries the item's label now;
* the follower's copy, built only from the feed, equals every pool item's label from scratch
  (:func:`labeling.store.answers.final_labels`).
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select, update

from labeling import Workspace
from labeling.errors import BadInput, NothingToUndo
from labeling.store.answers import final_labels
from labeling.store.models import Item

LABELS = ["a", "b", "c"]
PEOPLE = ["ann", "bob"]
N_ITEMS = 6
_databases = itertools.count()

items = st.lists(st.integers(0, N_ITEMS - 1), min_size=1, max_size=3, unique=True)
steps = st.one_of(
    st.tuples(st.just("answer"), st.sampled_from(PEOPLE), st.sampled_from([*LABELS, None])),
    st.tuples(st.just("relabel"), st.sampled_from(PEOPLE), st.sampled_from(LABELS)),
    st.tuples(st.just("adjudicate"), st.integers(0, N_ITEMS - 1), st.sampled_from(LABELS)),
    st.tuples(st.just("correct"), st.integers(0, N_ITEMS - 1), st.sampled_from(LABELS)),
    st.tuples(st.just("bulk"), items, st.sampled_from(LABELS)),
    st.tuples(st.just("undo_bulk"), st.integers(0, 3)),
    st.tuples(st.just("remove"), items),
    st.tuples(st.just("restore"), items),
    st.tuples(st.just("push"), st.integers(0, 99), st.sampled_from([*LABELS, None])),
)


def _step(ws: Workspace, step: tuple[Any, ...], batches: list[str]) -> None:
    kind = step[0]
    if kind == "answer":
        item = ws.next_item(step[1])
        if item is not None:
            ws.answer_and_next(item.item_id, step[1], step[2])
            ws.release(step[1])
    elif kind == "relabel":
        ws.release(step[1])
        try:
            item = ws.undo(step[1])
        except NothingToUndo:
            return
        ws.annotate(item.item_id, step[1], step[2])
        ws.release(step[1])
    elif kind in ("adjudicate", "correct"):
        try:
            if kind == "adjudicate":
                ws.adjudicate(_row_id(ws, f"i{step[1]}"), step[2], lead="lead")
            else:
                ws.correct(f"i{step[1]}", step[2], by="lead")
        except BadInput:  # a removed item
            return
    elif kind == "bulk":
        try:
            done = ws.bulk_label(
                label=step[2], by="lead", override=True, item_ids=[f"i{k}" for k in step[1]]
            )
        except BadInput:  # every chosen item removed
            return
        batches.append(done["batch"])
    elif kind == "undo_bulk" and batches:
        ws.undo_bulk(batches.pop(step[1] % len(batches)), by="lead")
    elif kind == "remove":
        ws.remove_items([f"i{k}" for k in step[1]])
    elif kind == "restore":
        ws.restore_items([f"i{k}" for k in step[1]])
    elif kind == "push":
        row: dict[str, Any] = {"id": f"p{step[1]}", "text": f"pushed text {step[1]}"}
        if step[2] is not None:
            row["label"] = step[2]
        ws.push_items([row], label_field="label" if step[2] is not None else None)


def _row_id(ws: Workspace, external_id: str) -> int:
    with ws._read() as session:
        return int(session.exec(select(Item.id).where(Item.external_id == external_id)).one() or 0)


def _truth(ws: Workspace) -> dict[str, str | None]:
    """Every item's label as the feed should tell it: its label from scratch while in the
    pool, None otherwise."""
    with ws._read() as session:
        labels = final_labels(session, ws.labels)
        rows = session.exec(select(Item.id, Item.external_id, Item.split)).all()
    return {
        external_id: labels.get(int(item_id or 0)) if split == "pool" else None
        for item_id, external_id, split in rows
    }


class Follower:
    """A training job's copy of the labels, kept only from the feed."""

    def __init__(self) -> None:
        self.cursor: str | None = None
        self.copy: dict[str, str | None] = {}

    def read(self, ws: Workspace) -> list[str]:
        seen: list[str] = []
        while True:
            page = ws.label_changes(self.cursor, limit=2)
            for change in page.labels:
                seen.append(change["id"])
                if change["removed"] or change["label"] is None:
                    assert change["label"] is None and change["origin"] is None
                self.copy[change["id"]] = change["label"]
            if not page.labels:
                assert page.next == (self.cursor or "0")
                return seen
            self.cursor = page.next


def _run(db_url: str | None, directory: Path, sequence: list[tuple[Any, ...]]) -> None:
    ws = Workspace.create(directory / "ws", labels=LABELS, db_url=db_url)
    try:
        pool = directory / "pool.csv"
        pool.write_text("id,text\n" + "".join(f"i{k},item number {k}\n" for k in range(N_ITEMS)))
        ws.import_file(pool, id_field="id")
        for name in PEOPLE:
            ws.add_user(name)
        ws.add_user("lead", role="lead")
        ws.update_settings(overlap=2, lease_seconds=600, gold_rate=0.0)
        follower = Follower()
        before = _truth(ws)
        assert follower.read(ws) == []
        batches: list[str] = []
        for step in sequence:
            _step(ws, step, batches)
            now = _truth(ws)
            changed = {k for k, v in now.items() if before.get(k) != v}
            seen = follower.read(ws)
            assert sorted(seen) == sorted(changed), f"after {step}: read {seen}, changed {changed}"
            for external_id in seen:
                assert follower.copy[external_id] == now[external_id]
            labelled = {k: v for k, v in now.items() if v is not None}
            assert {k: v for k, v in follower.copy.items() if v is not None} == labelled
            before = now
    finally:
        ws.close()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(steps, min_size=3, max_size=14))
def test_a_follower_of_the_feed_misses_and_repeats_nothing(backend, request, sequence):
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    db_url = None if server is None else server.create_database(f"feedprop{next(_databases)}")
    with tempfile.TemporaryDirectory() as directory:
        _run(db_url, Path(directory), sequence)


def test_doctor_finds_a_label_missing_from_the_feed_and_puts_it_back(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=LABELS)
    try:
        rows = [{"id": f"p{k}", "text": f"pushed text {k}", "label": "a"} for k in range(3)]
        ws.push_items(rows, label_field="label")
        follower = Follower()
        assert sorted(follower.read(ws)) == ["p0", "p1", "p2"]
        assert ws.doctor()["ok"]
        with ws._write() as session:  # as if a writer had forgotten to mark its change
            session.exec(update(Item).where(Item.external_id == "p1").values(label_seq=None))
        checks = {c["check"]: c for c in ws.doctor()["checks"]}
        assert checks["labels feed holds every label"]["problems"] == [
            "item 'p1': labelled, not in the feed of label changes"
        ]
        assert ws.doctor(fix=True)["ok"]
        assert follower.read(ws) == ["p1"] and follower.copy["p1"] == "a"
        assert ws.doctor()["ok"]
    finally:
        ws.close()
