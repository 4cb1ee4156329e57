"""Bulk actions on sets and their undo, in any order, always leave each item with the set its
remaining answers give (multi-label workspaces; labeling.annotation.bulk_sets).

Hypothesis runs random sequences of people's sets, bulk adds, removes and sets on random items,
and undos of random batches, on a real store (a SQLite file, a PostgreSQL database). After every
step, for every item:

* ``Item.label`` is what :func:`labeling.store.answers.final_labels` computes from scratch, and
  ``Item.n_labels`` counts its current labelled answers (people's and bulk);
* an item has at most one current bulk answer;
* an item no person answered has the set of a model kept here apart from the store: per item,
  the sets its standing batches gave, in order, each computed from the one before it by the
  action (``add`` starts from the empty set, ``remove`` leaves an item without a set alone, an
  unchanged set is not written); undoing a batch takes its entries out.

At the end every batch still standing is undone: no bulk answer is left.
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
from labeling.store import labelsets
from labeling.store.answers import current, final_labels
from labeling.store.models import BULK, DECISIONS, Annotation, Item

LABELS = ("a", "b", "c")
PEOPLE = ("ann", "bob")
N_ITEMS = 6
_databases = itertools.count()

label_sets = st.frozensets(st.sampled_from(LABELS))
items = st.lists(st.integers(0, N_ITEMS - 1), min_size=1, max_size=N_ITEMS, unique=True)
steps = st.one_of(
    st.tuples(st.just("answer"), st.sampled_from(PEOPLE), label_sets),
    st.tuples(st.just("bulk"), items, st.sampled_from(["add", "remove"]), st.sampled_from(LABELS)),
    st.tuples(st.just("bulk"), items, st.just("set"), label_sets),
    st.tuples(st.just("undo_bulk"), st.integers(0, 5)),
)

Model = dict[str, list[tuple[str, frozenset[str]]]]  # item -> (batch, set) of standing batches


def _acted(action: str, given: Any, now: frozenset[str] | None) -> frozenset[str] | None:
    """The new set, or None when the action leaves the item alone (written apart from
    bulk_sets on purpose: the test's own reading of the rules)."""
    if action == "add":
        new: frozenset[str] | None = (now or frozenset()) | {given}
    elif action == "remove":
        new = None if now is None else now - {given}
    else:
        new = frozenset(given)
    return None if new == now else new


def _check(ws: Workspace, model: Model, answered: set[str]) -> None:
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
        bulk = Counter(
            session.exec(
                select(Annotation.item_id).where(current(), Annotation.origin == BULK)
            ).all()
        )
        stored = session.exec(select(Item.id, Item.external_id, Item.label, Item.n_labels)).all()
    assert all(n == 1 for n in bulk.values()), "one current bulk answer per item"
    for item_id, external, label, n_labels in stored:
        assert label == expected.get(item_id), f"{external}: label against a recomputation"
        assert n_labels == counted.get(item_id, 0), f"{external}: n_labels"
        if external not in answered:
            standing = model.get(external, [])
            want = standing[-1][1] if standing else None
            got = None if label is None else labelsets.decode(label)
            assert got == want, f"{external}: {got} against the model's {want}"


def _step(ws: Workspace, step: tuple[Any, ...], model: Model, answered: set[str]) -> None:
    kind = step[0]
    if kind == "answer":
        item = ws.next_item(step[1])
        if item is not None:
            ws.annotate(item.item_id, step[1], sorted(step[2]))
            ws.release(step[1])
            answered.add(item.external_id)
    elif kind == "bulk":
        chosen = [f"i{k}" for k in step[1]]
        done = ws.bulk_label(item_ids=chosen, action=step[2],
                             label=sorted(step[3]) if step[2] == "set" else step[3],
                             by="eng", override=True)  # fmt: skip
        written = 0
        for external in chosen:
            if external in answered:
                continue
            standing = model.setdefault(external, [])
            new = _acted(step[2], step[3], standing[-1][1] if standing else None)
            if new is not None:
                standing.append((done["batch"], new))
                written += 1
        assert done["count"] == written
    elif kind == "undo_bulk":
        standing = [b.batch for b in ws.bulk_batches() if b.status == "applied"]
        if standing:
            batch = standing[step[1] % len(standing)]
            ws.undo_bulk(batch, by="eng")
            for entries in model.values():
                entries[:] = [(b, s) for b, s in entries if b != batch]


def _run(db_url: str | None, directory: Path, sequence: list[tuple[Any, ...]]) -> None:
    ws = Workspace.create(directory / "ws", labels=LABELS, task="multi-label", db_url=db_url)
    try:
        pool = directory / "pool.csv"
        pool.write_text("id,text\n" + "".join(f"i{k},item {k}\n" for k in range(N_ITEMS)))
        ws.import_file(pool, id_field="id")
        for name in PEOPLE:
            ws.add_user(name)
        ws.add_user("eng", role="engineer")
        # Overlap 2: people still answer items a batch labelled (and their answer decides).
        ws.update_settings(overlap=2, lease_seconds=600, gold_rate=0.0)
        model: Model = {}
        answered: set[str] = set()
        for step in sequence:
            _step(ws, step, model, answered)
            _check(ws, model, answered)
        assert ws.doctor()["ok"]
        for record in ws.bulk_batches():
            if record.status == "applied":
                ws.undo_bulk(record.batch, by="eng")
        _check(ws, {}, answered)
        with ws._read() as session:
            assert not session.exec(select(Annotation.id).where(Annotation.origin == BULK)).all()
    finally:
        ws.close()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(steps, min_size=3, max_size=12))
def test_each_set_always_equals_its_remaining_answers_and_the_model(backend, request, sequence):
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    db_url = None if server is None else server.create_database(f"bulksetprop{next(_databases)}")
    with tempfile.TemporaryDirectory() as directory:
        _run(db_url, Path(directory), sequence)
