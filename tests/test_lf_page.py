"""The LFs page edits and deletes rules, and says when weak labels are stale (issue 18, #7)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from labeling.store.models import LFVote

TIMEOUT = 30


@pytest.fixture
def served(tmp_path, monkeypatch):
    """12 items, an engineer, one applied keyword rule and fitted weak labels."""
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], name="lfpage")
    path = tmp_path / "pool.csv"
    path.write_text(
        "id,text,channel\n" + "\n".join(f"i{k},message {k},web" for k in range(12)) + "\n"
    )
    ws.import_file(path, id_field="id")
    ws.add_user("engineer", role="engineer")
    ws.add_rule({"kind": "keyword", "name": "kw_low", "label": "spam", "keywords": ["1"]})
    ws.apply_lfs()
    ws.fit_weak_labels()
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def _page() -> AppTest:
    script = "from labeling.ui.views import common, lfs\ncommon.apply_style()\nlfs.render()\n"
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    at.session_state["ll_user"] = "engineer"
    return at.run()


def _votes(ws: Workspace) -> int:
    with Session(ws.engine) as session:
        return session.exec(select(func.count()).select_from(LFVote)).one()


def test_edit_a_rule_then_apply_moves_its_votes(served):
    ws = served
    at = _page()
    assert not at.exception
    assert not any("out of date" in w.value for w in at.warning)
    assert _votes(ws) == 1  # whole words: "message 1", not "message 10"
    at.text_input(key="ll_edit_kw_low_keywords").set_value("1, 2, 3").run()
    at.checkbox(key="ll_edit_kw_low_whole").uncheck().run()
    at.selectbox(key="ll_edit_kw_low_label").set_value("ham").run()
    at.button(key="ll_edit_kw_low_save").click().run()
    assert not at.exception
    assert any("Saved kw\\_low" in s.value for s in at.success)
    (rule,) = ws.list_lfs()
    assert rule["spec"]["keywords"] == ["1", "2", "3"] and rule["label"] == "ham"
    assert not rule["spec"]["whole_word"] and not rule["applied"] and rule["votes"] == 0
    assert any("out of date" in w.value for w in at.warning)
    at.button(key="ll_lf_apply").click().run()
    assert not at.exception
    (rule,) = ws.list_lfs()
    # Substrings 1, 2, 3: message 1, 2, 3, 10, 11 vote ham now.
    assert rule["applied"] and rule["votes"] == 5 == _votes(ws)
    assert rule["polarity"] == ["ham"]


def test_delete_a_rule_needs_a_confirmation_and_takes_its_votes(served):
    ws = served
    at = _page()
    assert _votes(ws) > 0
    delete = at.button(key="ll_delete_kw_low")
    assert delete.disabled  # not before the box is ticked
    at.checkbox(key="ll_delete_kw_low_confirm").check().run()
    at.button(key="ll_delete_kw_low").click().run()
    assert not at.exception
    assert any("Deleted kw\\_low and its 1 vote\\." in s.value for s in at.success)
    assert ws.list_lfs() == [] and _votes(ws) == 0
    assert any("out of date" in w.value for w in at.warning)
    assert ws.weak_labels_stale()
    at.button(key="ll_lf_label").click().run()  # no LFs left: a message, not a crash
    assert not at.exception and at.error
