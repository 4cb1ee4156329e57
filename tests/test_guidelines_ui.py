"""The Guidelines page (edit, save a version, read an old one) and the overlay on the Label page,
through AppTest; ``?`` in a real browser is in tests/test_browser_guidelines.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from labeling.config import write_config
from labeling.store import labelsets
from labeling.ui.views.pin import first_label
from tests.appsession import TIMEOUT, open_page
from tests.browser import one_item_page


@pytest.fixture
def served(tmp_path, monkeypatch):
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], name="guides")
    one_item_page(ws)
    path = tmp_path / "pool.csv"
    path.write_text("id,text\nc1,buy cheap pills now\nc2,see you at lunch\nc3,click my link\n")
    ws.import_file(path, id_field="id")
    for name, role in (("ann", "annotator"), ("eng", "engineer")):
        ws.add_user(name, role=role)
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def test_an_engineer_saves_versions_on_the_page(served):
    at = open_page("guidelines", "eng")
    assert not at.exception
    at.text_area(key="ll_g_definition_0_v0").input("Ads, offers and links to follow.")
    at.text_area(key="ll_g_exclude_0_v0").input("Fan mail is ham.")
    at.text_input(key="ll_g_examples_0_v0").input("c1, c3")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception and not at.error
    found = served.guidelines()
    assert found.version == 1 and found.author == "eng"
    assert found.labels["spam"].definition == "Ads, offers and links to follow."
    assert found.labels["spam"].examples == ("c1", "c3")
    # a pinned id that no item has is refused on the page, and nothing is saved
    at.text_input(key="ll_g_examples_1_v1").input("nope")
    at.button[0].click().run()
    assert any("no item has the id 'nope'" in e.value.replace("\\", "") for e in at.error)
    assert served.guidelines().version == 1
    # the history lists the version; an old one can be read
    assert at.dataframe and list(at.dataframe[0].value["version"]) == [1]


def test_a_save_on_a_form_drawn_before_someone_else_s_save_is_not_recorded(served):
    at = open_page("guidelines", "eng")
    served.edit_guidelines({"labels": {"ham": {"definition": "Talk."}}}, by="eng")
    at.text_area(key="ll_g_definition_0_v0").input("Ads.")
    at.button[0].click().run()
    assert not at.exception
    assert any("Version 1 was saved while you edited version 0" in e.value for e in at.error)
    assert served.guidelines().version == 1  # the other save stands, nothing overwritten
    assert at.text_area(key="ll_g_definition_1_v1").value == "Talk."
    at.text_area(key="ll_g_definition_0_v1").input("Ads.")
    at.button[0].click().run()
    found = served.guidelines()
    assert found.version == 2 and found.labels["ham"].definition == "Talk."
    assert found.labels["spam"].definition == "Ads."


def test_annotators_do_not_edit(served):
    at = open_page("guidelines", "ann")
    at.text_area(key="ll_g_definition_0_v0").input("mine now")
    at.button[0].click().run()
    assert any("needs the engineer role" in e.value for e in at.exception) or any(
        "needs the engineer role" in e.value for e in at.error
    )
    assert served.guidelines().version == 0


def test_the_label_page_opens_the_guidelines_over_the_item(served):
    served.edit_guidelines(
        {"overview": "Mark comments.", "labels": {"spam": {"definition": "Ads and links."}}},
        by="eng",
    )
    served.pin_example("spam", "c3", by="eng")
    at = open_page("label", "ann")
    item = at.session_state["ll_item"]
    at.button(key="ll_guidelines").click().run()
    assert not at.exception
    shown = [t.value for t in at.text]
    assert "Mark comments." in shown and "Ads and links." in shown
    assert "c3: click my link" in shown
    assert at.session_state["ll_item"].item_id == item.item_id  # nothing answered


# ---------------------------------------------------------------- hints and pins (both backends)


@pytest.fixture
def answered(tmp_path, monkeypatch, db_url):
    """Overlap 2: ann and bob disagree on c1 (spam, ham) and agree on c2 (ham) and c3 (spam);
    c4, imported after, is open."""
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], name="guides", db_url=db_url)
    one_item_page(ws)
    path = tmp_path / "pool.csv"
    path.write_text("id,text\nc1,buy cheap pills now\nc2,see you at lunch\nc3,click my link\n")
    ws.import_file(path, id_field="id")
    ws.config = replace(ws.config, overlap=2, gold_rate=0.0)
    write_config(ws.root, ws.config)
    for name, role in (("ann", "annotator"), ("bob", "annotator"), ("eng", "engineer")):
        ws.add_user(name, role=role)
    ws.add_user("lee", role="lead")
    answers = {"ann": {"c1": "spam", "c2": "ham", "c3": "spam"}}
    answers["bob"] = answers["ann"] | {"c1": "ham"}
    for name, mine in answers.items():
        while (item := ws.next_item(name)) is not None:
            ws.annotate(item.item_id, name, mine[item.external_id])
    (tmp_path / "more.csv").write_text("id,text\nc4,lunch at noon\n")
    ws.import_file(tmp_path / "more.csv", id_field="id")
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    if db_url:
        monkeypatch.setenv("LABELLOOP_DB", db_url)
    else:
        monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def _plain(values) -> list[str]:
    return [v.value.replace("\\", "") for v in values]


def test_the_page_suggests_confused_pairs_and_opens_that_label_s_form(answered):
    at = open_page("guidelines", "eng")
    assert not at.exception
    assert "spam / ham: confused 1 time (gold 0, people 1, model 0)" in _plain(at.text)
    assert any("No exclude note of either label names the other" in c for c in _plain(at.caption))
    at.button(key="ll_g_hint_0").click().run()  # "Edit spam"
    assert not at.exception
    at.text_area(key="ll_g_one_exclude_0_v0").input("Fan mail is ham.")
    save = [b for b in at.button if b.label == "Save as a new version"]
    assert len(save) == 2  # the label's own form first, then the whole form
    save[0].click().run()
    assert not at.exception and not at.error
    found = answered.guidelines()
    assert found.version == 1 and found.labels["spam"].exclude == "Fan mail is ham."
    assert answered.guidelines_history()[0]["note"] == "exclude note: spam vs ham"
    assert "Saved version 1." in _plain(at.success)
    assert any("Already named in the exclude note of spam" in c for c in _plain(at.caption))
    # the label's form closed, and the whole form shows the saved note, not its old text
    assert len([b for b in at.button if b.label == "Save as a new version"]) == 1
    assert at.text_area(key="ll_g_exclude_0_v1").value == "Fan mail is ham."
    # saving the whole form now keeps the note
    at.text_area(key="ll_g_definition_1_v1").input("Talk between people.")
    (save,) = [b for b in at.button if b.label == "Save as a new version"]
    save.click().run()
    assert answered.guidelines().labels["spam"].exclude == "Fan mail is ham."
    assert answered.guidelines().labels["ham"].definition == "Talk between people."


def test_annotators_see_no_hint(answered):
    at = open_page("guidelines", "ann")  # not in their navigation; the history refuses them too
    assert not [t for t in _plain(at.text) if "confused" in t]


def _item_page(external_id: str, user: str = "eng") -> AppTest:
    return open_page("data", user, item=external_id)


def test_the_item_page_pins_the_item_for_its_label_and_unpins_it(answered):
    at = _item_page("c2")
    assert not at.exception
    assert at.selectbox(key="ll_pin_label_item_c2").value == "ham"  # its label now
    assert "Not pinned as an example of any label." in _plain(at.caption)
    at.button(key="ll_pin_item_c2").click().run()
    assert not at.exception
    assert answered.guidelines().labels["ham"].examples == ("c2",)
    assert "Item c2 pinned as an example of ham: guidelines version 1." in _plain(at.success)
    assert _plain(at.caption).count("Pinned as an example of ham.") == 2  # summary and tab
    at.button(key="ll_unpin_item_c2").click().run()  # pinned: the button unpins
    assert not at.exception
    assert answered.guidelines().labels["ham"].examples == ()
    at.selectbox(key="ll_pin_label_item_c2").set_value("spam").run()
    at.button(key="ll_pin_item_c2").click().run()
    assert answered.guidelines().labels["spam"].examples == ("c2",)
    assert [h["note"] for h in answered.guidelines_history()] == [
        "pinned c2",
        "unpinned c2",
        "pinned c2",
    ]


def test_review_pins_the_item_under_review_and_the_overlay_shows_it(answered):
    at = open_page("review", "lee")
    assert not at.exception
    assert at.selectbox(key="ll_pin_label_review_c1").value == "spam"  # c1's label now
    at.selectbox(key="ll_pin_label_review_c1").set_value("ham").run()
    at.button(key="ll_pin_review_c1").click().run()
    assert not at.exception
    assert answered.guidelines().labels["ham"].examples == ("c1",)
    assert "Item c1 pinned as an example of ham: guidelines version 1." in _plain(at.success)
    assert at.button(key="ll_unpin_review_c1")
    # the Label page's overlay shows the newly pinned example's text
    label = open_page("label", "ann")
    label.button(key="ll_guidelines").click().run()
    assert not label.exception
    assert "c1: buy cheap pills now" in [t.value for t in label.text]


def test_people_below_engineer_get_no_pin_control(answered):
    script = (
        "from labeling.ui.views import common, pin\n"
        "pin.pin_control(common.require_user(), 'c1', 'spam', where='x')\n"
    )
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    at.session_state["ll_user"] = "ann"
    at.run()
    assert not at.exception and not at.button and not at.selectbox
    at.session_state["ll_user"] = "eng"
    at.run()
    assert at.button(key="ll_pin_x_c1")


def test_the_pin_picker_starts_on_the_item_s_label_or_a_set_s_first_label():
    labels = ("billing", "refund", "account")
    assert first_label("refund", labels, False) == "refund"
    assert first_label(None, labels, False) == "billing"  # not labelled: the first label
    both = labelsets.encode(["account", "refund"], labels)
    assert first_label(both, labels, True) == "refund"  # in label order
    assert first_label(labelsets.encode([], labels), labels, True) == "billing"
