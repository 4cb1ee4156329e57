"""Item labels and label counts stay equal to a recomputation from the answer log, whatever
mix of answers, skips, decisions (adjudications, corrections), bulk batches and their undo
came before (issue 21, #5).

Hypothesis runs random sequences on a real store (a SQLite file, a PostgreSQL database). After
every step, for every item:

* ``Item.label`` is the label :func:`labeling.store.answers.final_labels` computes from scratch;
* ``Item.n_labels`` is the number of its current labelled answers that are not decisions
  (people's, imported and bulk answers), as ``labelloop doctor`` counts them;
* with a scored round, its score is closed exactly when ``n_labels`` reached the overlap;
* an item has at most one current bulk answer;
* at the end every batch still applied is undone: no bulk answer is left, and the above holds.
"""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from labeling import Workspace
from labeling.data.search import SearchQuery
from labeling.errors import BadInput, NothingToUndo
from labeling.store.answers import current, final_labels
from labeling.store.models import BULK, DECISIONS, Annotation, Item, Round, Score

LABELS = ["a", "b", "c"]
PEOPLE = ["ann", "bob", "cat"]
N_ITEMS = 8
OVERLAP = 2
_databases = itertools.count()

items = st.lists(st.integers(0, N_ITEMS - 1), min_size=1, max_size=N_ITEMS, unique=True)
steps = st.one_of(
    st.tuples(st.just("answer"), st.sampled_from(PEOPLE), st.sampled_from([*LABELS, None])),
    st.tuples(st.just("undo"), st.sampled_from(PEOPLE), st.sampled_from(LABELS)),
    st.tuples(st.just("adjudicate"), st.integers(0, N_ITEMS - 1), st.sampled_from(LABELS)),
    st.tuples(st.just("correct"), st.integers(0, N_ITEMS - 1), st.sampled_from(LABELS)),
    st.tuples(st.just("bulk"), items, st.sampled_from(LABELS), st.sampled_from(["eng", "lead"])),
    st.tuples(
        st.just("bulk_search"), st.sampled_from(["", "even", "odd"]), st.sampled_from(LABELS)
    ),  # fmt: skip
    st.tuples(st.just("undo_bulk"), st.integers(0, 5)),
)


def _check(ws: Workspace) -> None:
    with ws._read() as session:
        expected = final_labels(session, ws.labels)
        counted = Counter(
            session.exec(
                select(Annotation.item_id).where(
                    current(),
                    col(Annotation.label).is_not(None),
                    col(Annotation.origin).not_in(DECISIONS),
                )
            ).all()
        )
        stored = session.exec(select(Item.id, Item.label, Item.n_labels, Item.split)).all()
        closed = dict(session.exec(select(Score.item_id, Score.closed)).all())
        bulk = Counter(
            session.exec(
                select(Annotation.item_id).where(current(), Annotation.origin == BULK)
            ).all()
        )
    assert all(n == 1 for n in bulk.values()), "one current bulk answer per item"
    for item_id, label, n_labels, split in stored:
        assert label == expected.get(item_id), f"item {item_id}: label"
        assert n_labels == counted.get(item_id, 0), f"item {item_id}: n_labels"
        if split == "pool" and item_id in closed:
            assert closed[item_id] == (n_labels >= OVERLAP), f"item {item_id}: closed"


def _step(ws: Workspace, step: tuple[Any, ...], batches: list[str]) -> None:
    kind = step[0]
    if kind == "answer":
        item = ws.next_item(step[1])
        if item is not None:
            ws.answer_and_next(item.item_id, step[1], step[2])
            ws.release(step[1])
    elif kind == "undo":
        ws.release(step[1])
        try:
            item = ws.undo(step[1])
        except NothingToUndo:
            return
        ws.annotate(item.item_id, step[1], step[2])
        ws.release(step[1])
    elif kind == "adjudicate":
        ws.adjudicate(_item_ids(ws)[step[1]], step[2], lead="lead")
    elif kind == "correct":  # a correction decides, over bulk labels too
        ws.correct(f"i{step[1]}", step[2], by="lead")
    elif kind in ("bulk", "bulk_search"):
        if kind == "bulk":
            options: dict[str, Any] = {"item_ids": [f"i{k}" for k in step[1]]}
        else:
            options = {"query": SearchQuery(text=step[1])}
        try:
            done = ws.bulk_label(label=step[2], by=step[3] if kind == "bulk" else "lead",
                                 override=True, **options)  # fmt: skip
        except BadInput as exc:  # the search found nothing
            assert "no items" in str(exc)
            return
        batches.append(done["batch"])
    elif kind == "undo_bulk" and batches:
        ws.undo_bulk(batches.pop(step[1] % len(batches)), by="lead")


def _item_ids(ws: Workspace) -> list[int]:
    with ws._read() as session:
        return [
            int(i or 0)
            for i in session.exec(
                select(Item.id).where(Item.split == "pool").order_by(col(Item.id))
            ).all()
        ]


def _run(db_url: str | None, directory: Path, sequence: list[tuple[Any, ...]]) -> None:
    ws = Workspace.create(directory / "ws", labels=LABELS, db_url=db_url)
    try:
        pool = directory / "pool.csv"
        pool.write_text(
            "id,text\n"
            + "".join(f"i{k},{'even' if k % 2 == 0 else 'odd'} item {k}\n" for k in range(N_ITEMS))
        )
        ws.import_file(pool, id_field="id")
        for name in PEOPLE:
            ws.add_user(name)
        ws.add_user("lead", role="lead")
        ws.add_user("eng", role="engineer")  # bulk labels: engineers and leads
        ws.update_settings(overlap=OVERLAP, lease_seconds=600, gold_rate=0.0)
        with ws._write() as session:  # a promoted round scores every item: the queue's order
            round_ = Round(status="succeeded", promoted=True)
            session.add(round_)
            session.flush()
            for n, item_id in enumerate(session.exec(select(Item.id))):
                session.add(Score(round_id=round_.id, item_id=item_id, score=float(n)))
        batches: list[str] = []
        for step in sequence:
            _step(ws, step, batches)
            _check(ws)
        report = ws.doctor()  # labelloop doctor agrees: counts, labels, supersede chains
        assert report["ok"], [c for c in report["checks"] if not c["ok"]]
        while batches:
            ws.undo_bulk(batches.pop(), by="lead")
            _check(ws)
        with ws._read() as session:
            assert not session.exec(select(Annotation.id).where(Annotation.origin == BULK)).all()
        assert ws.doctor()["ok"]
    finally:
        ws.close()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(steps, min_size=3, max_size=14))
def test_item_labels_and_counts_always_equal_a_recomputation(backend, request, sequence):
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    db_url = None if server is None else server.create_database(f"bulkprop{next(_databases)}")
    with tempfile.TemporaryDirectory() as directory:
        _run(db_url, Path(directory), sequence)
