"""Every page through Streamlit's AppTest: widgets found by key, no exception after any run."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, col, select
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from labeling.config import load_config
from labeling.store.models import Annotation
from tests.appsession import signed_in
from tests.browser import one_item_page

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 30


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A workspace with 12 items, an admin, an engineer and an annotator, served to AppTest."""
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], name="apptest")
    one_item_page(ws)
    path = tmp_path / "pool.csv"
    rows = [f"i{k},message {k},web" for k in range(12)]
    path.write_text("id,text,channel\n" + "\n".join(rows) + "\n")
    ws.import_file(path, id_field="id")
    tokens = {role: ws.add_user(role, role=role)[1] for role in ("admin", "engineer", "annotator")}
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws, tokens
    ws.close()


def _page(module: str, user: str) -> AppTest:
    script = f"from labeling.ui.views import common, {module}\n"
    script += f"common.apply_style()\n{module}.render()\n"
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    at.session_state["ll_user"] = user
    return at.run()


def _buttons(at: AppTest) -> dict[str, object]:
    return {b.key: b for b in at.button if b.key}


def _answers(ws: Workspace) -> list[tuple[str | None, bool]]:
    with Session(ws.engine) as session:
        rows = session.exec(select(Annotation).order_by(col(Annotation.id))).all()
        return [(r.label, r.superseded_by is not None) for r in rows]


# Sign-in (the form, links, the session cookie, sign-out) is tested in test_security.py and,
# in a real browser, test_browser.py: the cookie is set over HTTP, which AppTest does not run.


def test_label_page_labels_skips_and_undoes(served):
    ws, _ = served
    at = _page("label", "annotator")
    assert not at.exception
    first = at.session_state["ll_item"]
    keys = _buttons(at)
    assert f"label_1_{first.item_id}" in keys and f"skip_{first.item_id}" in keys
    # The text is shown as plain text, with the display field hidden unless configured.
    assert any(t.value == first.text for t in at.text)
    at.button(key=f"label_2_{first.item_id}").click().run()
    assert not at.exception
    second = at.session_state["ll_item"]
    assert second.item_id != first.item_id
    at.button(key=f"skip_{second.item_id}").click().run()
    third = at.session_state["ll_item"]
    at.button(key=f"undo_{third.item_id}").click().run()
    assert not at.exception
    back = at.session_state["ll_item"]
    assert back.item_id == second.item_id and back.is_undo
    assert any("earlier answer" in i.value for i in at.info)
    at.button(key=f"label_1_{back.item_id}").click().run()
    assert not at.exception
    assert _answers(ws) == [("ham", False), (None, True), ("spam", False)]


def test_an_annotator_flags_the_item_on_screen_with_a_note(served):
    ws, _ = served
    at = _page("label", "annotator")
    shown = at.session_state["ll_item"]
    at.text_area(key=f"ll_flag_note_{shown.item_id}").set_value("two requests in one")
    at.button(key=f"ll_flag_{shown.item_id}").click().run()
    assert not at.exception
    assert any("for the leads' review" in c.value for c in at.caption)
    [flag] = ws.flags()
    assert (flag["item"], flag["note"], flag["who"]) == (
        shown.external_id,
        "two requests in one",
        "annotator",
    )
    assert at.session_state["ll_item"].item_id == shown.item_id  # still to be answered
    assert _answers(ws) == []


def test_label_page_hint_toggle_and_progress(served):
    at = _page("label", "annotator")
    assert at.session_state["ll_hint"] is False  # off by default
    at.toggle(key="ll_hint").set_value(True).run()
    assert not at.exception
    assert any("no model has scored" in c.value for c in at.caption)
    assert "0 of 12 labelled" in at.get("progress")[0].proto.text


def test_label_page_says_why_the_queue_is_empty(served):
    ws, _ = served
    at = _page("label", "annotator")
    for _ in range(12):
        item = at.session_state["ll_item"]
        at.button(key=f"label_1_{item.item_id}").click().run()
    assert not at.exception
    assert at.session_state["ll_item"] is None
    assert any("All 12 items are labelled" in m.value for m in at.markdown)
    assert "ll_check_again" in _buttons(at) and "undo_empty" in _buttons(at)


def test_stats_page(served):
    at = _page("stats", "annotator")
    assert not at.exception
    assert at.metric[0].label == "Current labels"
    at = _page("label", "annotator")
    item = at.session_state["ll_item"]
    at.button(key=f"label_1_{item.item_id}").click().run()
    at = _page("stats", "annotator")
    assert not at.exception and at.metric[0].value == "1"


def test_data_page_exports_for_engineers_and_refuses_annotators(served):
    at = _page("data", "annotator")
    assert not at.exception
    assert any("engineers and admins" in e.value for e in at.error)
    at = _page("data", "engineer")
    assert not at.exception
    assert at.metric[0].value == "12"
    at.selectbox(key="ll_export_format").set_value("JSON Lines").run()
    at.button(key="ll_export_prepare").click().run()
    assert not at.exception
    fmt, log, payload = at.session_state["ll_export"]
    assert (fmt, log) == ("jsonl", False) and payload.count(b"\n") == 12


def test_team_page_adds_and_deactivates_people_and_saves_settings(served):
    ws, _ = served
    at = _page("admin", "engineer")
    assert not at.exception
    # Engineers see the team, without the admin forms; the settings are read-only.
    assert "ll_new_name" not in [t.key for t in at.text_input]
    assert at.number_input(key="ll_overlap").disabled
    at = _page("admin", "admin")
    at.text_input(key="ll_new_name").set_value("newbie")
    at.selectbox(key="ll_new_role").set_value("annotator")
    at.button[0].click().run()  # the form's Add button
    assert not at.exception
    name, token, _link = at.session_state["ll_new_token"]
    assert name == "newbie" and any(c.value == token for c in at.code)
    at.selectbox(key="ll_person").set_value("annotator").run()
    at.button(key="ll_deactivate").click().run()
    at.button(key="ll_deactivate_confirm").click().run()  # asked first (tests/test_users.py)
    assert not at.exception
    assert [u.name for u in ws.list_users() if not u.active] == ["annotator"]
    at.number_input(key="ll_overlap").set_value(2)
    at.number_input(key="ll_lease_minutes").set_value(5)
    at.number_input(key="ll_gold_percent").set_value(10.0)
    submit = [b for b in at.button if b.label == "Save settings"][0]
    submit.click().run()
    assert not at.exception
    config = load_config(ws.root)
    assert (config.overlap, config.lease_seconds, config.gold_rate) == (2, 300, 0.1)


def test_a_deactivated_person_is_stopped_with_a_message(served):
    ws, _ = served
    at = _page("label", "annotator")
    ws.deactivate_user("annotator")
    at.run()
    assert not at.exception
    assert any("deactivated" in e.value for e in at.error)


def test_model_page_queues_rounds_and_shows_them(served):
    ws, _ = served
    at = _page("model", "annotator")
    assert not at.exception
    assert any("engineers and admins" in e.value for e in at.error)
    done = ws.retrain()
    assert done.status == "succeeded", done.error
    at = _page("model", "engineer")
    assert not at.exception
    assert at.metric[1].value == f"round {done.id}"
    at.button(key="ll_retrain").click().run()
    assert not at.exception
    assert [r.status for r in ws.rounds()] == ["succeeded", "queued"]
    at.button(key="ll_rollback").click().run()
    assert not at.exception
    assert any("nothing to roll back" in e.value or "only promoted" in e.value for e in at.error)


def test_lf_page_rule_builder_apply_and_analysis(served):
    ws, _ = served
    at = _page("lfs", "annotator")
    assert not at.exception and any("engineers and admins" in e.value for e in at.error)
    at = _page("lfs", "engineer")
    assert not at.exception
    assert any("No applied LFs" in i.value for i in at.info)
    at.text_input(key="ll_rule_keywords").set_value("message 1, message 2").run()
    assert not at.exception
    assert at.metric[0].value == "2"  # whole words: "message 1" does not match "message 10"
    at.text_input(key="ll_rule_name").set_value("kw_low").run()
    at.button(key="ll_rule_save").click().run()
    assert not at.exception
    assert [r["name"] for r in ws.list_lfs()] == ["kw_low"]
    at.button(key="ll_lf_apply").click().run()
    assert not at.exception
    assert len(at.dataframe) == 1
    assert {m.label: m.value for m in at.metric}["Covered by LFs"] == "16.7%"  # 2 of 12
    at.button(key="ll_lf_label").click().run()
    assert not at.exception
    assert any("majority" in i.value for i in at.info)
    at.radio(key="ll_rule_kind").set_value("regex").run()
    at.text_input(key="ll_rule_pattern").set_value("(unclosed").run()
    assert not at.exception and at.error  # a bad pattern is a message, not a crash


def test_model_page_asks_before_rolling_back_and_shows_why_a_round_is_not_promoted(served):
    ws, _ = served
    first, second = ws.retrain(), ws.retrain()
    assert first.status == second.status == "succeeded"
    at = _page("model", "engineer")
    assert not at.exception
    # The confirmation says what rolling back does before anything happens.
    assert any(f"Round {second.id} orders the queue now" in m.value for m in at.markdown)
    assert any(f"in place of round {second.id}" in m.value for m in at.markdown)
    assert [r.id for r in ws.rounds() if r.promoted] == [second.id]
    at.button(key="ll_rollback").click().run()
    assert not at.exception
    assert [r.id for r in ws.rounds() if r.promoted] == [first.id]
    at = _page("model", "engineer")
    # Above the table, not in its last column: why the newest round is not the promoted one.
    assert any(f"Round {second.id} is not the promoted round" in w.value for w in at.warning)
    table = at.dataframe[0].value
    assert list(table.columns[:2]) == ["round", "why"]
    assert table["why"].str.len().min() > 0


def _leases(ws: Workspace) -> dict[str, int]:
    """Leases held now, by person."""
    from labeling.store.models import Annotator, Lease

    with Session(ws.engine) as session:
        rows = session.exec(
            select(Annotator.name).join(Lease, col(Lease.annotator_id) == col(Annotator.id))
        ).all()
    return {name: rows.count(name) for name in set(rows)}


@pytest.mark.parametrize(
    ("role", "landing"), [("lead", "Review"), ("admin", "Metrics"), ("engineer", "Metrics")]
)
def test_people_who_are_not_annotators_land_on_their_page_holding_no_lease(
    served, monkeypatch, role, landing
):
    ws, tokens = served
    if role not in tokens:
        ws.add_user(role, role=role)
    signed_in(monkeypatch, ws, role)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert at.session_state["ll_user"] == role
    assert [t.value for t in at.title] == [landing]
    assert "ll_item" not in at.session_state
    assert _leases(ws) == {}


def test_an_annotator_lands_on_label_holding_one_lease(served, monkeypatch):
    ws, _ = served
    signed_in(monkeypatch, ws, "annotator")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert at.session_state["ll_item"] is not None
    assert _leases(ws) == {"annotator": 1}


def test_a_lead_leases_only_after_start_labelling_and_hands_back_on_stop(served):
    ws, _ = served
    ws.add_user("lead", role="lead")
    at = _page("label", "lead")
    assert not at.exception
    assert _leases(ws) == {}
    assert not [k for k in _buttons(at) if k.startswith("label_")]
    at.button(key="ll_start_labelling").click().run()
    assert not at.exception
    item = at.session_state["ll_item"]
    assert item is not None and _leases(ws) == {"lead": 1}
    at.button(key=f"label_1_{item.item_id}").click().run()
    assert not at.exception
    assert _answers(ws) == [("spam", False)] and _leases(ws) == {"lead": 1}  # the next item
    at.button(key="ll_stop_labelling").click().run()
    assert not at.exception
    assert _leases(ws) == {}
    assert "ll_start_labelling" in _buttons(at)


def _disagree(ws: Workspace, n: int = 12) -> None:
    """Overlap 2: ``a`` says spam to every item, ``b`` says ham to every other one."""
    from dataclasses import replace

    from labeling.config import write_config

    ws.config = replace(ws.config, overlap=2)
    write_config(ws.root, ws.config)
    for name in ("a", "b"):
        ws.add_user(name)
    for k in range(n):
        for name in ("a", "b"):
            item = ws.next_item(name)
            assert item is not None
            label = "ham" if name == "b" and k % 2 == 0 else "spam"
            ws.annotate(item.item_id, name, label)


def _under_review(at: AppTest) -> tuple[int, int]:
    """The item the picker shows and the item the card shows (by its decision buttons)."""
    [picker] = [s for s in at.selectbox if str(s.key).startswith("ll_review_pick_")]
    decide = [str(b.key) for b in at.button if str(b.key).startswith("ll_decide_")]
    cards = {int(key.split("_")[2]) for key in decide}
    assert len(cards) == 1
    return int(picker.value), cards.pop()


def test_review_picker_and_card_show_the_same_item_after_each_decision(served):
    ws, _ = served
    _disagree(ws)
    ws.add_user("lead", role="lead")
    at = _page("review", "lead")
    assert not at.exception
    picked, card = _under_review(at)
    assert picked == card
    order = [s for s in at.selectbox if str(s.key).startswith("ll_review_pick_")][0].options
    assert len(order) == 6
    at.button(key=f"ll_decide_{card}_ham").click().run()
    assert not at.exception
    picked, after = _under_review(at)
    assert picked == after != card
    decided = [s for s in at.selectbox if str(s.key).startswith("ll_review_pick_")][0].options
    assert len(decided) == 5  # the decided item left the list
    # Choosing another item moves the card with the picker.
    [picker] = [s for s in at.selectbox if str(s.key).startswith("ll_review_pick_")]
    picker.select_index(len(picker.options) - 1).run()
    assert not at.exception
    picked, card = _under_review(at)
    assert picked == card != after


def test_a_stale_tab_s_press_gets_a_plain_message(served):
    ws, _ = served
    # Two tabs of one annotator show the item they hold; one answers it.
    first_tab = _page("label", "annotator")
    second_tab = _page("label", "annotator")
    item = first_tab.session_state["ll_item"]
    assert second_tab.session_state["ll_item"].item_id == item.item_id
    second_tab.button(key=f"label_1_{item.item_id}").click().run()
    first_tab.button(key=f"label_2_{item.item_id}").click().run()
    assert not first_tab.exception
    [warning] = [w.value.replace("\\", "") for w in first_tab.warning]
    assert f"item {item.external_id} was already answered in another tab" in warning
    assert "assigned" not in warning and f"item {item.item_id} " not in warning
    assert _answers(ws) == [("spam", False)]  # the stale press changed nothing
    now = first_tab.session_state["ll_item"]
    assert now is not None and now.item_id != item.item_id


def test_a_press_for_an_item_no_longer_on_screen_says_so(served):
    ws, _ = served
    at = _page("label", "annotator")
    old = at.session_state["ll_item"]
    # Two presses on one screen reach the server together (the second before the page has
    # redrawn): the first answers the item, the second must not be applied, nor be silent.
    at.button(key=f"label_1_{old.item_id}").click()
    at.button(key=f"label_2_{old.item_id}").click()
    at.run()
    assert not at.exception
    said = [w.value.replace("\\", "") for w in at.warning]  # shown with Markdown escaped
    assert said == [
        f"Not applied: that press was for item {old.external_id}, which is no longer "
        "on screen; nothing was saved for it."
    ]
    assert _answers(ws) == [("spam", False)]


def test_the_keyboard_script_survives_streamlit_s_sanitizer():
    """st.html runs the listener through DOMPurify, which drops a script whose text has a "<"
    before a letter, "/" or "!" (its mutation-XSS rule): the listener would silently be gone."""
    import re

    from labeling.ui.views.label import KEYS_SCRIPT

    script = KEYS_SCRIPT.read_text(encoding="utf-8")
    assert not re.search(r"<[/\w!]", script)
    assert "window.__labelloopKeys" in script and 'addEventListener("keydown"' in script


def test_review_a_second_press_on_a_decided_item_decides_nothing_more(served):
    from labeling.store.models import Annotation as Answer

    ws, _ = served
    _disagree(ws)
    ws.add_user("lead", role="lead")
    at = _page("review", "lead")
    _, card = _under_review(at)
    # Two presses reach the server together: the first Streamlit runs decides the card's item;
    # the other, made on the same screen, is not applied to the item that follows it.
    at.button(key=f"ll_decide_{card}_ham").click()
    at.button(key=f"ll_decide_{card}_spam").click()
    at.run()
    assert not at.exception
    assert any("no longer under review" in e.value for e in at.error)
    with Session(ws.engine) as session:
        decided = session.exec(select(Answer).where(Answer.origin == "adjudication")).all()
    assert [d.item_id for d in decided] == [card]
    picked, shown = _under_review(at)
    assert picked == shown != card
