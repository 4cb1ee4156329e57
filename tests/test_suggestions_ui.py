"""Suggestions on the Label page through AppTest: the guess is pre-selected and said where it
comes from, Accept (Enter) answers with it, a digit answers otherwise, and each answer records
what was shown; a revisit by undo shows no guess. Enter in Chromium: test_browser_guidelines."""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from labeling.config import write_config
from labeling.store import labelsets
from labeling.store.models import Annotation
from tests.browser import one_item_page

TIMEOUT = 30


def _served(tmp_path, monkeypatch, labels, task="single-label") -> Workspace:
    ws = Workspace.create(tmp_path / "ws", labels=labels, name="sugg", task=task)
    one_item_page(ws)
    pool = tmp_path / "pool.csv"
    pool.write_text("id,text\n" + "".join(f"p{i},cheap pills offer {i}\n" for i in range(6)))
    ws.import_file(pool, id_field="id")
    ws.add_rule({"kind": "keyword", "name": "pills", "label": labels[0], "keywords": ["pills"]})
    ws.apply_lfs()
    ws.fit_weak_labels()
    ws.add_user("ann")
    write_config(ws.root, replace(ws.config, suggestions="weak"))
    ws.close()
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    return Workspace.open(tmp_path / "ws")


def _label_page() -> AppTest:
    script = "from labeling.ui.views import common, label\ncommon.apply_style()\nlabel.render()\n"
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    at.session_state["ll_user"] = "ann"
    return at.run()


def _recorded(ws: Workspace) -> list[tuple[str | None, str | None, str | None]]:
    with Session(ws.engine) as session:
        rows = session.exec(select(Annotation).where(Annotation.origin == "human")).all()
        return [(r.label, r.suggestion, r.suggestion_source) for r in rows]


def test_accept_answers_with_the_guess_and_a_digit_corrects_it(tmp_path, monkeypatch):
    ws = _served(tmp_path, monkeypatch, ["spam", "ham"])
    at = _label_page()
    assert any("Suggested by the weak label" in c.value and "spam" in c.value for c in at.caption)
    item = at.session_state["ll_item"]
    assert at.button(key=f"label_1_{item.item_id}").proto.type == "primary"
    at.button(key=f"ll_accept_{item.item_id}").click().run()  # what Enter presses
    following = at.session_state["ll_item"]
    at.button(key=f"label_2_{following.item_id}").click().run()  # a digit: another label
    assert _recorded(ws) == [("spam", "spam", "weak"), ("ham", "spam", "weak")]
    # undo brings back the first item with the person's own answer, and no guess
    at.button(key=f"undo_{at.session_state['ll_item'].item_id}").click().run()
    assert not any("Suggested by" in c.value for c in at.caption)
    assert not any((b.key or "").startswith("ll_accept_") for b in at.button)
    ws.close()


def test_a_suggested_set_starts_chosen_and_enter_submits_it(tmp_path, monkeypatch):
    ws = _served(tmp_path, monkeypatch, ["billing", "refund"], task="multi-label")
    at = _label_page()
    item = at.session_state["ll_item"]
    assert at.session_state["ll_chosen"] == (item.item_id, frozenset({"billing"}))
    assert any("Suggested by the weak label" in c.value for c in at.caption)
    at.button(key=f"label_2_{item.item_id}").click().run()  # add refund to the guess
    at.button(key=f"submit_{item.item_id}").click().run()
    stored = labelsets.encode(["billing", "refund"], ("billing", "refund"))
    guess = labelsets.encode(["billing"], ("billing", "refund"))
    assert _recorded(ws) == [(stored, guess, "weak")]
    ws.close()
