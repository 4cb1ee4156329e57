"""The Guidelines page (edit, save a version, read an old one) and the overlay on the Label page,
through AppTest; ``?`` in a real browser is in tests/test_browser_guidelines.py."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from labeling import Workspace

TIMEOUT = 30


@pytest.fixture
def served(tmp_path, monkeypatch):
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], name="guides")
    path = tmp_path / "pool.csv"
    path.write_text("id,text\nc1,buy cheap pills now\nc2,see you at lunch\nc3,click my link\n")
    ws.import_file(path, id_field="id")
    for name, role in (("ann", "annotator"), ("eng", "engineer")):
        ws.add_user(name, role=role)
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def _page(module: str, user: str) -> AppTest:
    script = f"from labeling.ui.views import common, {module}\n"
    script += f"common.apply_style()\n{module}.render()\n"
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    at.session_state["ll_user"] = user
    return at.run()


def test_an_engineer_saves_versions_on_the_page(served):
    at = _page("guidelines", "eng")
    assert not at.exception
    at.text_area(key="ll_g_definition_0").input("Ads, offers and links to follow.")
    at.text_area(key="ll_g_exclude_0").input("Fan mail is ham.")
    at.text_input(key="ll_g_examples_0").input("c1, c3")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception and not at.error
    found = served.guidelines()
    assert found.version == 1 and found.author == "eng"
    assert found.labels["spam"].definition == "Ads, offers and links to follow."
    assert found.labels["spam"].examples == ("c1", "c3")
    # a pinned id that no item has is refused on the page, and nothing is saved
    at.text_input(key="ll_g_examples_1").input("nope")
    at.button[0].click().run()
    assert any("no item has the id 'nope'" in e.value.replace("\\", "") for e in at.error)
    assert served.guidelines().version == 1
    # the history lists the version; an old one can be read
    assert at.dataframe and list(at.dataframe[0].value["version"]) == [1]


def test_annotators_do_not_edit(served):
    at = _page("guidelines", "ann")
    at.text_area(key="ll_g_definition_0").input("mine now")
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
    at = _page("label", "ann")
    item = at.session_state["ll_item"]
    at.button(key="ll_guidelines").click().run()
    assert not at.exception
    shown = [t.value for t in at.text]
    assert "Mark comments." in shown and "Ads and links." in shown
    assert "c3: click my link" in shown
    assert at.session_state["ll_item"].item_id == item.item_id  # nothing answered
