"""Multi-label answers: a person answers a set (the empty set too), undo brings the set back,
and an item's label is decided label by label (labeling.store.answers.set_majority)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labeling import Workspace
from labeling.errors import UnknownLabel
from labeling.store import labelsets
from labeling.store.answers import decide, decided_by, set_majority
from tests.test_bulk import item_labels

LABELS = ("billing", "refund", "bug")


def pool(tmp_path: Path, db_url: str | None = None, *, overlap: int = 1) -> Workspace:
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label", db_url=db_url)
    path = tmp_path / "pool.csv"
    path.write_text("id,text\n" + "".join(f"i{k},text number {k}\n" for k in range(6)))
    ws.import_file(path, id_field="id")
    if overlap != 1:
        root = ws.root
        toml = root / "labelloop.toml"
        toml.write_text(toml.read_text().replace("overlap = 1", f"overlap = {overlap}"))
        ws.close()
        ws = Workspace.open(root, db_url=db_url)
    for name in ("ann", "bob"):
        ws.add_user(name)
    return ws


def stored(*names: str) -> str:
    return labelsets.encode(names, LABELS)


def test_a_person_answers_sets_and_the_empty_set(tmp_path, backend, db_url):
    with pool(tmp_path, db_url) as ws:
        first = ws.next_item("ann")
        ws.annotate(first.item_id, "ann", ["refund", "billing"])
        second = ws.next_item("ann")
        ws.annotate(second.item_id, "ann", [])
        third = ws.next_item("ann")
        ws.skip(third.item_id, "ann")
        labels = item_labels(ws)
        assert labels[first.external_id] == (stored("billing", "refund"), 1)
        assert labels[second.external_id] == ("[]", 1)  # an answer: the item is done
        assert labels[third.external_id] == (None, 0)  # a skip is not


def test_a_set_is_refused_in_the_wrong_form_or_with_an_unknown_name(tmp_path):
    with pool(tmp_path) as ws:
        item = ws.next_item("ann")
        with pytest.raises(UnknownLabel, match="multi-label: expected a set of labels"):
            ws.annotate(item.item_id, "ann", "billing")
        with pytest.raises(UnknownLabel, match="label 'refunds' is not one of"):
            ws.annotate(item.item_id, "ann", ["billing", "refunds"])
        assert item_labels(ws)[item.external_id] == (None, 0)


def test_a_single_label_workspace_refuses_a_set(workspace, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,text\n1,one\n")
    workspace.import_file(path, id_field="id")
    workspace.add_user("ann")
    item = workspace.next_item("ann")
    with pytest.raises(UnknownLabel, match="single-label: expected one label"):
        workspace.annotate(item.item_id, "ann", ["a"])
    with pytest.raises(UnknownLabel):
        workspace.annotate(item.item_id, "ann", '["a"]')


def test_undo_brings_the_set_back_and_the_next_answer_replaces_it(tmp_path, backend, db_url):
    with pool(tmp_path, db_url) as ws:
        item = ws.next_item("ann")
        ws.annotate(item.item_id, "ann", ["bug"])
        back = ws.undo("ann")
        assert back.item_id == item.item_id
        assert back.previous_label == stored("bug")
        ws.annotate(item.item_id, "ann", ["bug", "refund"])
        assert item_labels(ws)[item.external_id] == (stored("refund", "bug"), 1)


def test_two_people_decide_label_by_label(tmp_path, backend, db_url):
    with pool(tmp_path, db_url, overlap=3) as ws:
        ws.add_user("cid")
        answers = {"ann": ["billing", "refund"], "bob": ["billing"], "cid": ["billing", "bug"]}
        item = ws.next_item("ann")
        for who, names in answers.items():
            claimed = ws.next_item(who) if who != "ann" else item
            assert claimed.item_id == item.item_id
            ws.annotate(item.item_id, who, names)
        # billing 3 of 3, refund 1 of 3, bug 1 of 3: only billing has at least half.
        assert item_labels(ws)[item.external_id] == (stored("billing"), 3)


def test_set_majority_includes_a_label_on_a_tie_and_says_so():
    chosen, tie = set_majority({stored("billing"): 1, stored("refund"): 1}, LABELS)
    assert chosen == stored("billing", "refund") and tie
    rows = [(stored("billing"), "human", 1, 1), (stored("refund"), "human", 1, 2)]
    assert decided_by(rows, LABELS) == (stored("billing", "refund"), "tie-break", "human")
    rows = [(stored("billing"), "human", 2, 1), (stored(), "human", 1, 3)]
    assert decided_by(rows, LABELS) == (stored("billing"), "majority", "human")


answer_sets = st.lists(st.sets(st.sampled_from(LABELS)), min_size=1, max_size=7)


@given(answer_sets)
def test_set_majority_matches_a_count_per_label(answers):
    counts: dict[str, int] = {}
    for names in answers:
        key = stored(*names)
        counts[key] = counts.get(key, 0) + 1
    rows = [(key, "human", n, i) for i, (key, n) in enumerate(counts.items())]
    expected = {name for name in LABELS if 2 * sum(name in a for a in answers) >= len(answers)}
    assert labelsets.decode(decide(rows, LABELS)) == expected


def test_status_counts_each_label_a_set_holds(tmp_path):
    with pool(tmp_path) as ws:
        for names in (["billing", "refund"], ["refund"], []):
            item = ws.next_item("ann")
            ws.annotate(item.item_id, "ann", names)
        info = ws.status()
        assert info["task"] == "multi-label"
        assert info["annotations"] == 3
        assert info["annotations_by_label"] == {"billing": 1, "refund": 2, "bug": 0}


def test_parts_not_built_for_sets_yet_say_so(tmp_path):
    from labeling.errors import BadInput

    with pool(tmp_path) as ws, pytest.raises(BadInput, match="no applied LFs"):
        ws.fit_weak_labels()  # the label model works on sets (tests/test_multilabel_weak.py)


def test_search_filters_and_counts_by_the_labels_a_set_holds(tmp_path, backend, db_url):
    with pool(tmp_path, db_url) as ws:
        given = {}
        for names in (["billing", "refund"], ["refund"], [], ["bug"]):
            item = ws.next_item("ann")
            ws.annotate(item.item_id, "ann", names)
            given[item.external_id] = names
        found = ws.search(label="refund")
        assert {i["id"] for i in found["items"]} == {
            e for e, names in given.items() if "refund" in names
        }
        everything = ws.search()
        assert everything["total"] == 6
        assert everything["counts"] == {"billing": 1, "refund": 2, "bug": 1, "": 2}
        assert ws.search(unlabelled=True)["total"] == 2


def test_corrections_and_decisions_take_sets(tmp_path, backend, db_url):
    with pool(tmp_path, db_url) as ws:
        ws.add_user("eng", role="engineer")
        ws.add_user("lea", role="lead")
        item = ws.next_item("ann")
        ws.annotate(item.item_id, "ann", ["bug"])
        done = ws.correct(item.external_id, ["bug", "refund"], by="eng", note="both")
        assert done["label"] == stored("refund", "bug")
        assert item_labels(ws)[item.external_id][0] == stored("refund", "bug")
        ws.adjudicate(item.item_id, [], lead="lea")
        assert item_labels(ws)[item.external_id][0] == "[]"
        with pytest.raises(UnknownLabel, match="expected a set of labels"):
            ws.correct(item.external_id, "bug", by="eng")
        with pytest.raises(UnknownLabel, match="'refunds' is not one of"):
            ws.adjudicate(item.item_id, ["refunds"], lead="lea")
        assert item_labels(ws)[item.external_id][0] == "[]"


def test_the_correct_command_reads_a_set(tmp_path):
    from typer.testing import CliRunner

    from labeling.cli.main import app

    with pool(tmp_path) as ws:
        ws.add_user("eng", role="engineer")
        item = ws.next_item("ann")
        ws.annotate(item.item_id, "ann", ["bug"])
        root = ws.root
    runner = CliRunner()
    args = ["correct", item.external_id, "billing|refund", "--as", "eng", "-w", str(root)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "bug -> billing|refund" in result.output
    result = runner.invoke(
        app, ["correct", item.external_id, "billing|nope", "--as", "eng", "-w", str(root)]
    )
    assert result.exit_code != 0 and "'nope' is not one of" in result.output


def test_bulk_labelling_asks_what_to_do_to_each_set(tmp_path):
    from labeling.errors import BadInput

    with pool(tmp_path) as ws:
        ws.add_user("eng", role="engineer")
        with pytest.raises(BadInput, match="say what to do to each item's set"):
            ws.bulk_audit_sample(item_ids=["i1"])


def test_my_stats_count_each_label_a_set_holds(tmp_path):
    with pool(tmp_path) as ws:
        for names in (["billing", "refund"], ["refund"], []):
            item = ws.next_item("ann")
            ws.annotate(item.item_id, "ann", names)
        stats = ws.annotator_stats("ann")
        assert stats["by_label"] == {"billing": 1, "refund": 2, "bug": 0}
