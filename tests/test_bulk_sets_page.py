"""The Data page's bulk panel in a multi-label workspace, through Streamlit's AppTest: the
action and label pickers, the audit that asks the action's question, the batch and its undo
(labeling.ui.views.bulk)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from tests.appsession import open_page
from tests.test_bulk import item_labels

LABELS = ("billing", "refund", "bug")


@pytest.fixture
def served(tmp_path, monkeypatch, db_url):
    """Six items, i0-i2 about refunds; i0 already bulk-labelled {refund}, by an API batch."""
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label", db_url=db_url)
    path = tmp_path / "pool.csv"
    rows = [f"i{k},{'refund' if k < 3 else 'parcel'} message {k}" for k in range(6)]
    path.write_text("id,text\n" + "\n".join(rows) + "\n")
    ws.import_file(path, id_field="id")
    ws.add_user("eng", role="engineer")
    ws.bulk_label(item_ids=["i0"], action="set", label=["refund"], by="eng", override=True)
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    if db_url:
        monkeypatch.setenv("LABELLOOP_DB", db_url)
    else:
        monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def _page() -> AppTest:
    at = open_page("data", "eng")
    assert not at.exception
    at.text_input(key="ll_q_text").set_value("refund").run()
    assert not at.exception
    return at


def _shown(text: str) -> str:
    """A widget's text without the backslashes that escape Markdown (common.plain)."""
    return text.replace("\\", "")


def _answer_every_sample_item(
    at: AppTest, *, right: bool, sets: list[str] | None = None
) -> list[str]:
    """Press Y (or N) on each sample item in turn; returns the Y buttons' words seen, and
    adds each item's "labels now" line to ``sets``."""
    seen = []
    while True:
        yes = [b for b in at.button if b.key and b.key.startswith("ll_audit_yes_")]
        if not yes:
            return seen
        seen.append(_shown(yes[0].label))
        if sets is not None:
            sets.extend(_shown(c.value) for c in at.caption if c.value.startswith("Its labels now"))
        key = yes[0].key if right else yes[0].key.replace("_yes_", "_no_")
        at.button(key=key).click().run()
        assert not at.exception


def test_the_panel_adds_a_label_to_each_set_after_an_audit_and_undoes_it(served):
    at = _page()
    assert at.selectbox(key="ll_bulk_action_search").options == [
        "Add a label",
        "Remove a label",
        "Set the whole set",
    ]
    at.selectbox(key="ll_bulk_action_search").set_value("add").run()
    at.selectbox(key="ll_bulk_label_search").set_value("billing").run()
    start = at.button(key="ll_bulk_start_search")
    assert _shown(start.label) == "Add billing to these 3..."
    start.click().run()
    assert not at.exception
    assert any("does 'billing' apply?" in _shown(m.value) for m in at.markdown)
    sets: list[str] = []
    seen = _answer_every_sample_item(at, right=True, sets=sets)
    assert seen == ["Yes, billing applies"] * 3
    assert sorted(sets) == ["Its labels now: no set yet"] * 2 + ["Its labels now: refund"]
    confirm = at.button(key="ll_audit_confirm")
    assert not confirm.disabled
    confirm.click().run()
    assert not at.exception
    assert any("Changed the set of 3 items (add billing)" in _shown(s.value) for s in at.success)
    assert item_labels(served)["i0"] == ('["billing","refund"]', 1)
    assert item_labels(served)["i1"] == ('["billing"]', 1)
    undo = [b for b in at.button if b.key and b.key.startswith("ll_bulk_undo_bulk-")]
    undo[0].click().run()
    assert not at.exception
    assert item_labels(served)["i0"] == ('["refund"]', 1)  # the set from before
    assert item_labels(served)["i1"] == (None, 0)


def test_setting_the_empty_set_is_named_and_a_weak_audit_is_held_back(served):
    at = _page()
    at.selectbox(key="ll_bulk_action_search").set_value("set").run()
    start = at.button(key="ll_bulk_start_search")
    assert _shown(start.label) == "Set these 3 to (none)..."
    start.click().run()
    assert any("none of the labels apply" in _shown(m.value) for m in at.markdown)
    seen = _answer_every_sample_item(at, right=False)
    assert seen == ["Yes, exactly (none)"] * 3
    assert at.button(key="ll_audit_confirm").disabled  # 0 of 3: below the threshold
    assert item_labels(served)["i1"] == (None, 0)


def test_remove_leaves_items_without_a_set_out_of_the_batch(served):
    at = _page()
    at.selectbox(key="ll_bulk_action_search").set_value("remove").run()
    at.selectbox(key="ll_bulk_label_search").set_value("refund").run()
    at.button(key="ll_bulk_start_search").click().run()
    assert any("2 items of the 3 are left out" in _shown(c.value) for c in at.caption)
    assert _answer_every_sample_item(at, right=True) == ["Yes, not refund"]
    at.button(key="ll_audit_confirm").click().run()
    assert not at.exception
    assert item_labels(served)["i0"] == ("[]", 1)
