"""Bulk labelling on sets (multi-label workspaces): add, remove and set, what each does to an
item with no set, items left unchanged, undo back to each item's set before, the audit, the
errors, and bulk answers kept out of people's figures (both backends).
labeling.annotation.bulk_sets says what each action does."""

from __future__ import annotations

import pytest
from sqlmodel import select

from labeling import Workspace
from labeling.annotation.bulk_sets import SetAction
from labeling.annotation.progress import my_label_counts
from labeling.data.search import SearchQuery
from labeling.errors import BadInput, UnknownLabel
from labeling.store.answers import human_labels
from labeling.store.models import Annotator, BulkBatch
from tests.bad_inputs.store import LABEL_FEED, assert_unchanged, fingerprint
from tests.test_bulk import item_labels

LABELS = ("billing", "refund", "bug")
NOT_BATCHES = ("bulkbatch", *LABEL_FEED)


@pytest.fixture
def ws(tmp_path, db_url):
    """Eight pool items (i0-i3 mention a refund) and one gold item; overlap 2, no gold
    checks, so a person can answer an item a batch labelled."""
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label", db_url=db_url)
    pool = tmp_path / "pool.csv"
    pool.write_text(
        "id,text\n"
        + "".join(f"i{k},{'refund please' if k < 4 else 'parcel late'} {k}\n" for k in range(8))
    )
    ws.import_file(pool, id_field="id")
    gold = tmp_path / "gold.csv"
    gold.write_text('id,text,label\ng0,refund now,"billing|refund"\n')
    ws.import_file(gold, id_field="id", label_field="label", split="gold")
    ws.add_user("eng", role="engineer")
    ws.add_user("ann")
    ws.update_settings(overlap=2, lease_seconds=600, gold_rate=0.0)
    yield ws
    ws.close()


def sets(ws: Workspace) -> dict[str, str | None]:
    """external id -> the item's stored set (None: no set)."""
    return {external: label for external, (label, _n) in item_labels(ws).items()}


def bulk(ws: Workspace, items: list[str], action: str, label, **options):
    return ws.bulk_label(
        item_ids=items, action=action, label=label, by="eng", override=True, **options
    )


REFUND = SearchQuery(text="refund")


# --------------------------------------------------------------------------- the actions


@pytest.mark.parametrize(
    ("current", "action", "names", "expected"),
    [
        (None, "add", {"bug"}, {"bug"}),  # no set: starts from the empty set
        ({"billing"}, "add", {"bug"}, {"billing", "bug"}),
        ({"bug"}, "add", {"bug"}, None),  # holds it already: left as it is
        (None, "remove", {"bug"}, None),  # no set: nothing to remove, no empty set written
        ({"billing", "bug"}, "remove", {"bug"}, {"billing"}),
        ({"bug"}, "remove", {"bug"}, set()),  # its last label: the empty set
        ({"billing"}, "remove", {"bug"}, None),  # lacks it: left as it is
        (None, "set", set(), set()),  # the empty set is an answer
        ({"billing"}, "set", {"bug", "refund"}, {"bug", "refund"}),
        ({"bug"}, "set", {"bug"}, None),
    ],
)
def test_each_action_on_a_set(current, action, names, expected):
    change = SetAction(action, frozenset(names), LABELS)
    found = change.applied(None if current is None else frozenset(current))
    assert found == (None if expected is None else frozenset(expected))


def test_add_remove_and_set_change_each_set_and_undo_brings_each_back(ws):
    before = fingerprint(ws, ignore=NOT_BATCHES)
    first = bulk(ws, ["i0", "i1", "i2"], "set", ["billing"])
    second = bulk(ws, ["i1", "i2", "i3"], "add", "refund")
    assert (second["count"], second["replaced_bulk"], second["skipped_unchanged"]) == (3, 2, 0)
    third = bulk(ws, ["i0", "i2", "i3", "i4"], "remove", "billing")
    # i3 and i4 lack billing (i4 has no set at all): left as they are.
    assert (third["count"], third["skipped_unchanged"]) == (2, 2)
    assert sets(ws) | {"g0": None} == {
        "i0": "[]", "i1": '["billing","refund"]', "i2": '["refund"]', "i3": '["refund"]',
        "i4": None, "i5": None, "i6": None, "i7": None, "g0": None,
    }  # fmt: skip
    assert item_labels(ws)["i0"] == ("[]", 1)  # one answer per item, whatever the batches
    ws.undo_bulk(third["batch"], by="eng")
    assert sets(ws)["i0"] == '["billing"]' and sets(ws)["i2"] == '["billing","refund"]'
    ws.undo_bulk(second["batch"], by="eng")
    assert [sets(ws)[f"i{k}"] for k in range(4)] == ['["billing"]'] * 3 + [None]
    ws.undo_bulk(first["batch"], by="eng")
    assert_unchanged(before, ws, ignore=NOT_BATCHES)


def test_people_answers_and_gold_are_left_as_they_are(ws):
    item = ws.next_item("ann")
    ws.annotate(item.item_id, "ann", ["bug"])
    done = ws.bulk_label(SearchQuery(), action="add", label="billing", by="eng", override=True)
    assert (done["skipped_labelled"], done["skipped_not_pool"]) == (1, 1)
    assert done["count"] == 7
    assert sets(ws)[item.external_id] == '["bug"]'
    assert sets(ws)["g0"] is None  # a gold item's label is its gold set, not an answer


def test_the_batch_list_and_the_dry_run_say_the_action(ws):
    bulk(ws, ["i0"], "add", "bug")
    counted = ws.bulk_label(REFUND, action="add", label="bug", by="eng", dry_run=True)
    assert counted == {
        "count": 3, "skipped_labelled": 0, "skipped_not_pool": 1, "skipped_unchanged": 1,
    }  # fmt: skip
    bulk(ws, ["i0", "i1"], "set", ["billing", "refund"])
    bulk(ws, ["i1"], "set", [])
    assert [b.label for b in ws.bulk_batches()] == ["set []", "set billing|refund", "add bug"]
    assert ws.undo_bulk(ws.bulk_batches()[0].batch, by="eng")["label"] == "set []"


def test_a_batch_that_changes_nothing_writes_no_answer(ws):
    bulk(ws, ["i0", "i1"], "add", "bug")
    before = fingerprint(ws, ignore=NOT_BATCHES)
    done = bulk(ws, ["i0", "i1", "i5"], "remove", "billing")
    assert (done["count"], done["skipped_unchanged"]) == (0, 3)
    assert_unchanged(before, ws, ignore=NOT_BATCHES)


# --------------------------------------------------------------------------- the audit


def test_the_audit_sample_leaves_out_what_the_action_would_not_change(ws):
    bulk(ws, ["i0", "i1"], "add", "bug")
    sample = ws.bulk_audit_sample(REFUND, n=10, seed=3, action="add", label="bug")
    assert sorted(item.id for item in sample) == ["i2", "i3"]
    sample = ws.bulk_audit_sample(REFUND, n=10, seed=3, action="remove", label="bug")
    assert sorted((item.id, item.current) for item in sample) == [("i0", "bug"), ("i1", "bug")]


def test_the_audit_is_judged_on_what_the_action_changes(ws):
    bulk(ws, ["i0"], "add", "bug")
    before = fingerprint(ws)
    # 3 items would change: 2 of 3 right is precise enough only with an override.
    with pytest.raises(BadInput, match="2 of 3 correct"):
        ws.bulk_label(REFUND, action="add", label="bug", by="eng",
                      audit={"checked": 3, "correct": 2}, expected=3)  # fmt: skip
    with pytest.raises(BadInput, match="the set has changed since its audit: 4 items"):
        ws.bulk_label(REFUND, action="add", label="bug", by="eng",
                      audit={"checked": 3, "correct": 3}, expected=4)  # fmt: skip
    assert_unchanged(before, ws)
    done = ws.bulk_label(REFUND, action="add", label="bug", by="eng",
                         audit={"checked": 3, "correct": 3}, expected=3)  # fmt: skip
    assert done["count"] == 3
    assert ws.bulk_batches()[0].audit == "3 of 3 correct (every item; precision 1.00)"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("options", "error", "fact"),
    [
        ({"label": "bug"}, BadInput, "say what to do to each item's set"),
        ({"action": "toggle", "label": "bug"}, BadInput, "expected one of add, remove, set"),
        ({"action": "add", "label": ["bug"]}, UnknownLabel, "to give a whole set, use"),
        ({"action": "set", "label": "bug"}, UnknownLabel, "expected a set of labels"),
        ({"action": "add", "label": "bugs"}, UnknownLabel, "'bugs' is not one of"),
        ({"action": "set", "label": ["bug", "x"]}, UnknownLabel, "'x' is not one of"),
    ],
)
def test_bad_actions_are_refused_and_write_nothing(ws, options, error, fact):
    before = fingerprint(ws)
    with pytest.raises(error, match=fact):
        ws.bulk_label(REFUND, by="eng", override=True, **options)
    assert_unchanged(before, ws)


def test_a_single_label_workspace_refuses_an_action(tmp_path):
    ws = Workspace.create(tmp_path / "single", labels=["a", "b"])
    with ws, pytest.raises(BadInput, match="single-label, where a bulk label gives each item"):
        ws.bulk_label(item_ids=[], action="add", label="a", by="x")


# --------------------------------------------------------------------------- kept apart


def test_bulk_sets_never_count_as_people_answers(ws):
    bulk(ws, [f"i{k}" for k in range(8)], "set", ["refund"])
    item = ws.next_item("ann")  # overlap 2: the item waits for a person's answer
    ws.annotate(item.item_id, "ann", ["billing"])
    with ws._read() as session:
        eng = session.exec(select(Annotator).where(Annotator.name == "eng")).one()
        assert my_label_counts(session, eng) == (0, 0)
        # What LF analysis and the label model measure LFs against: people's sets only.
        assert list(human_labels(session, ws.labels, bulk=False).values()) == ['["billing"]']
        assert session.exec(select(BulkBatch.count)).one() == 8
    assert ws.annotator_stats("eng")["labels"] == 0
    status = ws.status()
    assert (status["annotations"], status["bulk_labels"]) == (1, 8)
    assert sets(ws)[item.external_id] == '["billing"]'  # the person's set decides
