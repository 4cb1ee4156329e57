"""The pages of a multi-label workspace through AppTest, on SQLite and PostgreSQL: the Label
page's toggles, Submit and None of these, undo bringing the set back; the item page's and the
Review page's choice of a set; sets shown as names, never as JSON.

The keyboard (digits toggling, Enter, 0, the picker) is driven in a real browser in
test_browser_multilabel.py.
"""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from labeling.store import labelsets
from labeling.store.models import Annotation
from labeling.ui.views.common import label_text, set_text
from labeling.ui.views.label_keys import button_key, keys_help
from tests.appsession import TIMEOUT, open_page
from tests.browser import one_item_page

LABELS = ("billing", "refund", "bug", "praise")


def stored(*names: str) -> str:
    return labelsets.encode(names, LABELS)


@pytest.fixture
def served(tmp_path, monkeypatch, db_url):
    """A multi-label workspace with 6 items, an annotator, an engineer and a lead."""
    ws = Workspace.create(
        tmp_path / "ws", labels=list(LABELS), name="sets", task="multi-label", db_url=db_url
    )
    one_item_page(ws)
    path = tmp_path / "pool.csv"
    path.write_text("id,text\n" + "".join(f"t{k},ticket {k}\n" for k in range(6)))
    ws.import_file(path, id_field="id")
    for name, role in (("ann", "annotator"), ("eng", "engineer"), ("lead", "lead")):
        ws.add_user(name, role=role)
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    if db_url:
        monkeypatch.setenv("LABELLOOP_DB", db_url)
    else:
        monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def _current(ws: Workspace) -> dict[int, list[str | None]]:
    """Current answers by item id (a list, to catch an item answered twice)."""
    with Session(ws.engine) as session:
        rows = session.exec(
            select(Annotation)
            .where(col(Annotation.superseded_by).is_(None))
            .order_by(col(Annotation.id))
        ).all()
    found: dict[int, list[str | None]] = {}
    for row in rows:
        found.setdefault(row.item_id, []).append(row.label)
    return found


def _chosen_line(at: AppTest) -> str:
    said = " ".join(m.value for m in at.markdown if "hosen" in m.value)
    return said.replace("\\", "").replace("**", "")


def _warnings(at: AppTest) -> list[str]:
    return [w.value.replace("\\", "") for w in at.warning]


def test_a_set_shows_as_names_and_the_empty_set_as_none():
    assert label_text(stored("refund", "billing"), True) == "billing, refund"
    assert label_text(stored(), True) == "(none)"
    assert label_text(None, True, missing="skipped") == "skipped"
    assert label_text("billing", False) == "billing"  # single-label: as it is
    assert label_text("not json", True) == "not json"  # never breaks a page
    assert set_text([]) == "(none)"
    assert keys_help(4, multilabel=True) == (
        "Keys: 1-4 toggle (the number pad too) · Enter submit · 0 none of these · S skip · U undo"
        " · ? guidelines"
    )


def test_toggles_mark_the_chosen_labels_and_submit_stores_the_set(served):
    ws = served
    at = open_page("label", "ann")
    assert not at.exception
    item = at.session_state["ll_item"]
    assert "Nothing chosen yet" in _chosen_line(at)
    assert at.button(key=f"submit_{item.item_id}").disabled  # Enter needs a set
    assert at.button(key=f"submit_{item.item_id}").proto.shortcut == "enter"
    assert at.button(key=f"none_{item.item_id}").proto.shortcut == "0"
    for number in (1, 3, 4):  # billing, bug, praise on; then praise off again
        at.button(key=button_key(number, item.item_id)).click().run()
    at.button(key=button_key(4, item.item_id)).click().run()
    assert not at.exception
    assert at.session_state["ll_item"].item_id == item.item_id  # toggles answer nothing
    assert _current(ws) == {}
    assert _chosen_line(at) == "Chosen: billing, bug"
    kinds = {b.key: b.proto.type for b in at.button if str(b.key).startswith("label_")}
    assert kinds == {
        button_key(n, item.item_id): ("primary" if n in (1, 3) else "secondary")
        for n in range(1, 5)
    }
    icons = [b.proto.icon for b in at.button if str(b.key).startswith("label_")]
    assert icons[0] == ":material/check_box:" and icons[1] == ":material/check_box_outline_blank:"
    assert at.button(key=f"none_{item.item_id}").disabled  # 0 needs nothing chosen
    at.button(key=f"submit_{item.item_id}").click().run()
    assert not at.exception
    assert _current(ws) == {item.item_id: [stored("billing", "bug")]}
    assert any(c.value.replace("\\", "") == f"Saved: {item.external_id} → billing, bug"
               for c in at.caption)  # fmt: skip
    following = at.session_state["ll_item"]
    assert following.item_id != item.item_id
    assert "Nothing chosen yet" in _chosen_line(at)  # the next item starts with none


def test_none_of_these_stores_the_empty_set_and_neither_submit_sends_the_other(served):
    ws = served
    at = open_page("label", "ann")
    item = at.session_state["ll_item"]
    # Enter needs a set, and 0 needs nothing chosen: each button is disabled otherwise (the
    # browser test presses the keys and reads the notes).
    assert at.button(key=f"submit_{item.item_id}").disabled
    assert not at.button(key=f"none_{item.item_id}").disabled
    at.button(key=button_key(2, item.item_id)).click().run()
    assert at.button(key=f"none_{item.item_id}").disabled
    assert not at.button(key=f"submit_{item.item_id}").disabled
    assert _current(ws) == {}
    at.button(key=button_key(2, item.item_id)).click().run()  # refund off
    at.button(key=f"none_{item.item_id}").click().run()
    assert not at.exception
    assert _current(ws) == {item.item_id: [stored()]}
    assert any(c.value.replace("\\", "") == f"Saved: {item.external_id} → (none)"
               for c in at.caption)  # fmt: skip
    # A skip is still a skip, not the empty set.
    skipped = at.session_state["ll_item"]
    at.button(key=f"skip_{skipped.item_id}").click().run()
    assert _current(ws)[skipped.item_id] == [None]


def test_undo_brings_the_set_back_chosen_and_the_new_set_replaces_it(served):
    ws = served
    at = open_page("label", "ann")
    item = at.session_state["ll_item"]
    for number in (1, 2):
        at.button(key=button_key(number, item.item_id)).click().run()
    at.button(key=f"submit_{item.item_id}").click().run()
    following = at.session_state["ll_item"]
    at.button(key=f"undo_{following.item_id}").click().run()
    assert not at.exception
    back = at.session_state["ll_item"]
    assert back.item_id == item.item_id and back.is_undo
    assert _chosen_line(at) == "Chosen: billing, refund"  # pre-toggled
    assert any("your earlier answer was “billing, refund”" in i.value.replace("\\", "")
               for i in at.info)  # fmt: skip
    at.button(key=button_key(1, item.item_id)).click().run()  # billing off
    at.button(key=button_key(3, item.item_id)).click().run()  # bug on
    at.button(key=f"submit_{item.item_id}").click().run()
    assert not at.exception
    assert _current(ws)[item.item_id] == [stored("refund", "bug")]  # one current answer


def test_a_toggle_for_an_item_no_longer_on_screen_is_not_applied(served):
    ws = served
    # The page, with a way to deliver a toggle as an old screen's button would (after the
    # item it was drawn for has been answered, its button is gone from the page).
    script = (
        "import streamlit as st\n"
        "from labeling.ui.views import common, label\n"
        "late = st.session_state.pop('late_toggle', None)\n"
        "if late is not None:\n"
        "    label._on_toggle(*late)\n"
        "common.apply_style()\nlabel.render()\n"
    )
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    at.session_state["ll_user"] = "ann"
    at.run()
    old = at.session_state["ll_item"]
    at.button(key=button_key(2, old.item_id)).click().run()
    at.button(key=f"submit_{old.item_id}").click().run()
    now = at.session_state["ll_item"]
    assert now.item_id != old.item_id
    at.session_state["late_toggle"] = (old.item_id, "bug", True, old.external_id)
    at.run()
    assert not at.exception
    assert _warnings(at) == [
        f"Not applied: that press was for item {old.external_id}, which is no longer on "
        "screen; nothing was saved for it."
    ]
    assert "Nothing chosen yet" in _chosen_line(at)  # the item on screen got nothing
    assert at.session_state["ll_item"].item_id == now.item_id
    assert _current(ws) == {old.item_id: [stored("refund")]}


def test_presses_made_on_one_screen_apply_to_its_item_in_order(served):
    ws = served
    at = open_page("label", "ann")
    item = at.session_state["ll_item"]
    # A toggle and Enter reach the server together (Enter pressed before the toggle's run):
    # both were made on this item, and both apply to it.
    at.button(key=button_key(2, item.item_id)).click().run()
    at.button(key=button_key(3, item.item_id)).click()
    at.button(key=f"submit_{item.item_id}").click()
    at.run()
    assert not at.exception
    assert _current(ws) == {item.item_id: [stored("refund", "bug")]}


def test_a_second_press_of_a_label_takes_it_off_again(served):
    at = open_page("label", "ann")
    item = at.session_state["ll_item"]
    toggle = at.button(key=button_key(1, item.item_id))
    toggle.click().run()
    assert _chosen_line(at) == "Chosen: billing"
    at.button(key=button_key(1, item.item_id)).click().run()
    assert "Nothing chosen yet" in _chosen_line(at)


def test_the_item_page_corrects_to_a_set_or_to_none_and_shows_sets_as_names(served):
    ws = served
    ws.annotate(ws.next_item("ann").item_id, "ann", ["refund", "billing"])
    [external] = [s["id"] for s in ws.search("", limit=10)["items"] if s["label"]]
    script = "from labeling.ui.views import common, data\ncommon.apply_style()\ndata.render()\n"
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    at.session_state["ll_user"] = "eng"
    at.run()
    at.text_input(key="ll_open_id").set_value(external).run()
    assert not at.exception
    assert _label_now(at) == "billing, refund"
    [answers] = [d.value for d in at.dataframe if "answer" in d.value.columns]
    assert list(answers["answer"]) == ["billing, refund"]  # the history: names, not JSON
    chooser = at.multiselect(key=f"ll_correct_labels_{external}")
    assert chooser.value == ["billing", "refund"]  # the set now
    chooser.set_value(["bug", "praise"])
    [correct] = [b for b in at.button if b.label == "Correct the labels"]
    correct.click().run()
    assert not at.exception
    assert ws.item(external)["label"] == stored("bug", "praise")
    assert any(
        f"Item {external}: labels corrected to bug, praise" in s.value.replace("\\", "")
        for s in at.success
    )
    # An empty choice is not "none of these": it is refused; the button says it on purpose.
    at.multiselect(key=f"ll_correct_labels_{external}").set_value([])
    [correct] = [b for b in at.button if b.label == "Correct the labels"]
    correct.click().run()
    assert any("Choose at least one label" in e.value for e in at.error)
    assert ws.item(external)["label"] == stored("bug", "praise")
    [none] = [b for b in at.button if b.label == "None of these"]
    none.click().run()
    assert not at.exception
    assert ws.item(external)["label"] == stored()
    assert _label_now(at) == "(none)"
    # An item nobody answered is not labelled, which is not the empty set.
    other = next(s["id"] for s in ws.search("", limit=10)["items"] if s["id"] != external)
    at.button(key="ll_item_back").click().run()
    at.text_input(key="ll_open_id").set_value(other).run()
    assert _label_now(at) == "(not labelled)"


def _label_now(at: AppTest) -> str:
    [shown] = [m.value for m in at.metric if m.label == "Label now"]
    return str(shown)


def _disagree(ws: Workspace) -> None:
    """Overlap 2: ``ann`` says {billing} and ``bob`` {billing, refund} on every item."""
    root, url = ws.root, ws.db_url
    toml = root / "labelloop.toml"
    toml.write_text(toml.read_text().replace("overlap = 1", "overlap = 2"))
    ws.add_user("bob")
    ws2 = Workspace.open(root, db_url=url if url.startswith("postgresql") else None)
    try:
        for name, names in (("ann", ["billing"]), ("bob", ["billing", "refund"])):
            while (item := ws2.next_item(name)) is not None:
                ws2.annotate(item.item_id, name, names)
    finally:
        ws2.close()


def test_review_decides_a_set_or_none_and_shows_answers_as_names(served):
    ws = served
    _disagree(ws)
    at = open_page("review", "lead")
    assert not at.exception
    card = next(int(str(b.key).split("_")[2]) for b in at.button
                if str(b.key).startswith("ll_decide_"))  # fmt: skip
    [people] = [t.value for t in at.text if t.value.startswith("People: ")]
    assert sorted(people.removeprefix("People: ").split("; ")) == [
        "ann: billing",
        "bob: billing, refund",
    ]
    chooser = at.multiselect(key=f"ll_decide_labels_{card}")
    assert chooser.value == ["billing", "refund"]  # the set now (label by label, tie included)
    chooser.set_value(["refund", "praise"])
    at.button(key=f"ll_decide_{card}_set").click().run()
    assert not at.exception
    with Session(ws.engine) as session:
        decided = session.exec(select(Annotation).where(Annotation.origin == "adjudication")).all()
    assert [(d.item_id, d.label) for d in decided] == [(card, stored("refund", "praise"))]
    assert any("Decided item" in c.value and "refund, praise" in c.value for c in at.caption)
    following = next(int(str(b.key).split("_")[2]) for b in at.button
                     if str(b.key).startswith("ll_decide_"))  # fmt: skip
    assert following != card
    at.button(key=f"ll_decide_{following}_none").click().run()
    assert not at.exception
    with Session(ws.engine) as session:
        decided = session.exec(select(Annotation).where(Annotation.origin == "adjudication")).all()
    assert sorted((d.item_id, d.label) for d in decided) == sorted(
        [(card, stored("refund", "praise")), (following, stored())]
    )
