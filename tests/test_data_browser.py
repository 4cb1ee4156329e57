"""The Data page's browser and item page through Streamlit's AppTest: server-side pages, the
filters, a search saved as a rule (or refused with the reason), correct and flag.

The real-browser path (clicking a row, the audit dialog's keys) is in test_browser_data.py.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from labeling.annotation.session import UserSession
from labeling.errors import Forbidden
from tests.appsession import open_page

N_ITEMS = 60


@pytest.fixture
def served(tmp_path, monkeypatch, db_url):
    """60 items (every other one says "refund", the rest "parcel") and an engineer, on each
    backend: the page's search runs in the store's own full-text index."""
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], name="browser", db_url=db_url)
    path = tmp_path / "pool.csv"
    rows = [f"i{k:02d},{'refund' if k % 2 else 'parcel'} message {k}" for k in range(N_ITEMS)]
    path.write_text("id,text\n" + "\n".join(rows) + "\n")
    ws.import_file(path, id_field="id")
    ws.add_user("eng", role="engineer")
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    if db_url:
        monkeypatch.setenv("LABELLOOP_DB", db_url)
    else:
        monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def _page() -> AppTest:
    return open_page("data", "eng")


def _captions(at: AppTest) -> list[str]:
    return [c.value.replace("\\", "") for c in at.caption]


def test_results_come_in_pages_of_50_and_a_new_search_starts_at_the_first(served):
    at = _page()
    assert not at.exception
    assert "Items 1-50 of 60" in _captions(at)
    at.button(key="ll_page_next").click().run()
    assert "Items 51-60 of 60" in _captions(at)
    assert at.button(key="ll_page_next").disabled
    at.text_input(key="ll_q_text").set_value("refund").run()
    assert not at.exception
    assert "Items 1-30 of 30" in _captions(at)
    at.selectbox(key="ll_f_label").set_value("(none)").run()
    assert "Items 1-30 of 30" in _captions(at)
    at.selectbox(key="ll_f_label").set_value("spam").run()
    assert any("No items match" in i.value for i in at.info)


def test_a_search_of_alternatives_is_saved_as_a_rule_and_two_words_are_refused(served):
    at = _page()
    at.text_input(key="ll_q_text").set_value("refund message").run()
    assert at.button(key="ll_rule_save").disabled
    assert any("cannot be saved as a rule" in c for c in _captions(at))
    at.text_input(key="ll_q_text").set_value("refund OR parcel").run()
    save = at.button(key="ll_rule_save")
    assert not save.disabled
    at.selectbox(key="ll_rule_label").set_value("ham")
    save.click().run()
    assert not at.exception
    rules = {lf["name"]: lf for lf in served.list_lfs()}
    assert rules["kw_refund_or_parcel"]["spec"]["keywords"] == ["refund", "parcel"]
    assert rules["kw_refund_or_parcel"]["label"] == "ham"


def test_the_item_page_corrects_and_flags_naming_the_item(served):
    at = _page()
    at.text_input(key="ll_open_id").set_value("i07").run()
    assert not at.exception
    assert "Item i07" in _captions(at)
    at.selectbox(key="ll_correct_label_i07").set_value("ham")
    at.text_input(key="ll_correct_note_i07").set_value("clearly fine")
    (correct,) = [b for b in at.button if b.label == "Correct the label"]
    correct.click().run()
    assert not at.exception
    assert any("Item i07: label corrected to ham" in s.value.replace("\\", "") for s in at.success)
    story = served.item("i07")
    assert story["label"] == "ham" and story["decided_by"] == "correction"
    at.text_area(key="ll_flag_note_i07").set_value("two tickets in one")
    (flag,) = [b for b in at.button if b.label == "Flag"]
    flag.click().run()
    assert not at.exception
    assert [f["note"] for f in served.flags()] == ["two tickets in one"]
    assert at.query_params["item"] == "i07"  # the address links to the item page
    at.button(key="ll_item_back").click().run()
    assert "Items 1-50 of 60" in _captions(at)
    assert "item" not in at.query_params


def test_an_item_page_opens_from_its_address(served):
    at = open_page("data", "eng", item="i12")
    assert not at.exception
    assert "Item i12" in _captions(at)
    assert any(t.value == "parcel message 12" for t in at.text)
    at.button(key="ll_item_back").click().run()
    assert "Items 1-50 of 60" in _captions(at)


def test_an_unknown_item_id_is_named_in_the_message(served):
    at = _page()
    at.text_input(key="ll_open_id").set_value("nope").run()
    assert not at.exception
    assert any("nope" in e.value for e in at.error)


def test_an_annotator_may_not_search_find_similar_or_save_a_search_as_a_rule(served):
    served.add_user("ann")
    ann = UserSession(served, "ann")
    for call in (
        lambda: ann.search("refund"),
        lambda: ann.similar("i01"),
        lambda: ann.rule_from_search("kw_refund", "refund", "spam"),
    ):
        with pytest.raises(Forbidden):
            call()
    assert UserSession(served, "eng").search("refund", limit=5)["total"] == N_ITEMS // 2


def test_items_like_a_typed_text_are_listed_most_similar_first(served):
    at = _page()
    at.text_area(key="ll_like_text").set_value("refund message")
    at.button(key="ll_like_find").click().run()
    assert not at.exception
    (table,) = [d for d in at.dataframe if "similarity" in d.value.columns]
    found = table.value
    assert len(found) == 20 and list(found["similarity"]) == sorted(found["similarity"])[::-1]
    assert all(text.startswith("refund") for text in found["text"][:10])
    assert any(b.key == "ll_bulk_start_like_text" for b in at.button)
