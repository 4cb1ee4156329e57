"""``Item.label`` in a multi-label workspace stays in step with its answers: after every step of
a random sequence of answers (sets, the empty set among them), skips, undos, corrections,
adjudications, imports with sets and removals, the stored column equals the label recomputed
from scratch by ``store.answers.final_labels`` (which applies ``decide`` to every item's
current answers), and every stored set is in its one canonical form."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from labeling import Workspace
from labeling.errors import BadInput
from labeling.store import labelsets
from labeling.store.answers import final_labels
from labeling.store.models import Item

LABELS = ("billing", "refund", "bug")
_EXAMPLES = itertools.count()

SETS = st.frozensets(st.sampled_from(LABELS))
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["answer", "skip", "undo", "correct", "adjudicate", "import", "remove"]),
        st.integers(0, 2),
        SETS,
    ),
    min_size=4,
    max_size=18,
)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS)
def test_the_set_column_equals_a_recomputation_after_any_sequence(
    tmp_path_factory, backend, request, steps
):
    root = tmp_path_factory.mktemp("sets")
    url = None
    if backend != "sqlite":  # a fresh database per example
        url = request.getfixturevalue("postgres_server").create_database(f"sets{next(_EXAMPLES)}")
    ws = Workspace.create(root / "ws", labels=LABELS, task="multi-label", db_url=url)
    try:
        _run_steps(ws, root, steps)
    finally:
        ws.close()


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=["id", "text", "labels"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _cell(chosen: frozenset[str]) -> str:
    # an empty cell is "no label"; the empty set is written as the JSON list []
    return "|".join(sorted(chosen)) if chosen else ""


def _check_labels(ws: Workspace) -> None:
    with Session(ws.engine) as session:
        stored = {i: label for i, label in session.exec(select(Item.id, Item.label)).all() if label}
        assert stored == final_labels(session, LABELS)
    for value in stored.values():
        assert value == labelsets.encode(labelsets.decode(value), LABELS)


def _run_steps(ws: Workspace, root: Path, steps: list) -> None:
    people = ["p0", "p1", "p2"]
    for name in people:
        ws.add_user(name)
    ws.add_user("lead", role="lead")
    ws.add_user("eng", role="engineer")
    ws.update_settings(overlap=2, lease_seconds=ws.config.lease_seconds)
    rows = [
        {"id": f"s{i}", "text": f"item {i} words", "labels": LABELS[i % 3] if i % 4 == 0 else ""}
        for i in range(12)
    ]
    ws.import_file(_write(root / "start.csv", rows), id_field="id", label_field="labels")
    imported = 12
    for op, who, chosen in steps:
        person = people[who]
        if op in ("answer", "skip"):
            item = ws.next_item(person)
            if item is not None and op == "answer":
                ws.annotate(item.item_id, person, chosen)
            elif item is not None:
                ws.skip(item.item_id, person)
        elif op == "undo":
            try:
                item = ws.undo(person)
            except BadInput:
                continue
            ws.annotate(item.item_id, person, chosen)
        elif op == "correct":
            try:
                ws.correct(f"s{who * 4 + 1}", chosen, by="eng")
            except BadInput:  # a removed item
                continue
        elif op == "adjudicate":
            try:
                ws.adjudicate(_item_id(ws, f"s{who * 3}"), chosen, lead="lead")
            except BadInput:
                continue
        elif op == "import":
            extra = [{"id": f"n{imported}", "text": f"new {imported}", "labels": _cell(chosen)}]
            ws.import_file(
                _write(root / f"n{imported}.csv", extra), id_field="id", label_field="labels"
            )
            imported += 1
        elif op == "remove":
            ws.remove_items([f"s{who * 4}"], by="test")
        _check_labels(ws)


def _item_id(ws: Workspace, external_id: str) -> int:
    with Session(ws.engine) as session:
        found = session.exec(select(Item.id).where(Item.external_id == external_id)).first()
    assert found is not None
    return found
