"""Annotators and tokens: hashed, shown once, revocable; roles, reactivation, new tokens."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.annotation import users
from labeling.annotation.users import hash_secret, verify_secret
from labeling.cli.main import app
from labeling.errors import BadInput, UnknownAnnotator
from labeling.store import db
from labeling.store.models import Annotator, Lease, SignInLink
from labeling.ui import web_auth
from labeling.ui.views import admin


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.create(tmp_path / "w", labels=["a", "b"])
    yield ws
    ws.close()


def test_token_signs_in_and_is_stored_hashed(ws):
    annotator, token = ws.add_user("alice", role="engineer")
    assert annotator.role == "engineer"
    assert ws.sign_in(token).name == "alice"
    with Session(ws.engine) as session:
        row = session.exec(select(Annotator).where(Annotator.name == "alice")).one()
    secret = token.split("_", 2)[2]
    assert secret not in (row.token_hash or "")
    assert token not in repr(row.model_dump())
    assert row.token_hash.startswith("scrypt$")


def test_wrong_and_revoked_tokens(ws):
    _, token = ws.add_user("bob")
    with pytest.raises(UnknownAnnotator, match="wrong or has been revoked"):
        ws.sign_in(token[:-1] + ("x" if token[-1] != "x" else "y"))
    with pytest.raises(UnknownAnnotator):
        ws.sign_in("garbage")
    with pytest.raises(UnknownAnnotator):
        ws.sign_in("ll_000000000000_nothing")
    ws.deactivate_user("bob")
    with pytest.raises(UnknownAnnotator):
        ws.sign_in(token)


def test_names_and_roles_validated(ws):
    ws.add_user("carol")
    with pytest.raises(BadInput, match="already exists"):
        ws.add_user("carol")
    with pytest.raises(BadInput, match="expected one of annotator, engineer, lead, admin"):
        ws.add_user("dan", role="boss")
    with pytest.raises(BadInput, match="reserved"):
        ws.add_user("import")
    with pytest.raises(BadInput, match="non-empty"):
        ws.add_user("  ")


def test_hash_is_salted():
    assert hash_secret("same") != hash_secret("same")
    assert verify_secret("same", hash_secret("same"))
    assert not verify_secret("other", hash_secret("same"))
    assert not verify_secret("same", "not-a-hash")


def test_list_users_hides_system(ws, tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("text,label\nhello,a\n")
    ws.import_file(path, label_field="label")
    ws.add_user("erin", role="admin")
    assert [(a.name, a.role) for a in ws.list_users()] == [("erin", "admin")]


# ---------------------------------------------------------------- managing people


@pytest.fixture
def team(tmp_path, db_url):
    """A workspace on SQLite or PostgreSQL (``--backend``) with an admin and an annotator."""
    ws = Workspace.create(tmp_path / "team", labels=["a", "b"], db_url=db_url)
    tokens = {name: ws.add_user(name, role=role)[1] for name, role in
              (("boss", "admin"), ("ann", "annotator"))}  # fmt: skip
    yield ws, tokens
    ws.close()


def _links(ws: Workspace) -> int:
    with Session(ws.engine) as session:
        return len(session.exec(select(SignInLink)).all())


def test_role_changes_and_the_last_admin_keeps_theirs(team):
    ws, tokens = team
    assert ws.set_user_role("ann", "lead").role == "lead"
    assert ws.sign_in(tokens["ann"]).role == "lead"  # same token, new role
    with pytest.raises(BadInput, match="expected one of annotator, engineer, lead, admin"):
        ws.set_user_role("ann", "boss")
    with pytest.raises(BadInput, match="only active admin"):
        ws.set_user_role("boss", "annotator")
    ws.set_user_role("ann", "admin")
    assert ws.set_user_role("boss", "engineer").role == "engineer"  # another admin remains
    with pytest.raises(UnknownAnnotator):
        ws.set_user_role("nobody", "admin")
    assert {a.name: a.role for a in ws.list_users()} == {"boss": "engineer", "ann": "admin"}


def test_a_new_token_revokes_the_old_one_and_the_persons_links(team):
    ws, tokens = team
    with db.write_session(ws.engine) as session:
        ann = users.get_annotator(session, "ann")
        link = users.issue_sign_in_link(session, annotator=ann)
    assert ws.sign_in(link).name == "ann"
    _, new = ws.new_user_token("ann")
    assert new != tokens["ann"] and ws.sign_in(new).name == "ann"
    for old in (tokens["ann"], link):
        with pytest.raises(UnknownAnnotator):
            ws.sign_in(old)
    assert _links(ws) == 0
    assert ws.sign_in(tokens["boss"]).name == "boss"  # nobody else's token changed


def test_reactivation_gives_a_new_token_and_the_old_one_stays_revoked(team):
    ws, tokens = team
    with pytest.raises(BadInput, match="active already"):
        ws.reactivate_user("ann")
    ws.deactivate_user("ann")
    with pytest.raises(BadInput, match="deactivated; reactivate"):
        ws.new_user_token("ann")
    annotator, new = ws.reactivate_user("ann")
    assert annotator.active and ws.sign_in(new).name == "ann"
    with pytest.raises(UnknownAnnotator):
        ws.sign_in(tokens["ann"])


def test_cli_changes_roles_reactivates_and_issues_tokens(team):
    ws, tokens = team
    base = ["-w", str(ws.root)] + (
        ["--db", ws.db_url] if ws.db_url.startswith("postgresql") else []
    )
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [*args, *base])

    done = run("user", "role", "ann", "engineer")
    assert done.exit_code == 0 and "'ann' is now engineer" in done.output
    done = run("user", "role", "ann", "boss")
    assert done.exit_code == 2 and "expected one of" in done.output
    done = run("user", "role", "boss", "annotator")
    assert done.exit_code == 2 and "only active admin" in done.output
    done = run("user", "new-token", "ann", "--json")
    assert done.exit_code == 0
    new = json.loads(done.stdout)["token"]
    assert ws.sign_in(new).name == "ann"
    with pytest.raises(UnknownAnnotator):
        ws.sign_in(tokens["ann"])
    assert run("user", "deactivate", "ann").exit_code == 0
    done = run("user", "reactivate", "ann")
    assert done.exit_code == 0 and "Reactivated 'ann'" in done.output
    newest = done.output.strip().splitlines()[-1]
    assert ws.sign_in(newest).name == "ann"
    with pytest.raises(UnknownAnnotator):
        ws.sign_in(new)
    done = run("user", "reactivate", "nobody")
    assert done.exit_code != 0 and "no annotator named 'nobody'" in done.output


# ---------------------------------------------------------------- the Team page


def _team_page(ws: Workspace, monkeypatch, user: str = "boss") -> AppTest:
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    if ws.db_url.startswith("postgresql"):
        monkeypatch.setenv("LABELLOOP_DB", ws.db_url)
    else:
        monkeypatch.delenv("LABELLOOP_DB", raising=False)
    monkeypatch.setenv(web_auth.SERVER_URL_ENV, "http://127.0.0.1:8599/")
    script = "from labeling.ui.views import admin, common\ncommon.apply_style()\nadmin.render()\n"
    at = AppTest.from_string(script, default_timeout=30)
    at.session_state["ll_user"] = user
    return at.run()


def _table(at: AppTest) -> dict[str, tuple[str, bool]]:
    frame = at.dataframe[0].value
    return {row["name"]: (row["role"], bool(row["active"])) for _, row in frame.iterrows()}


def test_team_page_adds_once_on_a_double_click_with_a_server_built_link(team, monkeypatch):
    ws, _ = team
    at = _team_page(ws, monkeypatch)
    assert not at.exception
    # The second submit of a double click carries the same values, or (once the form has
    # cleared itself) an empty name; test_browser.py double-clicks in a real browser.
    for typed in ("newbie", "newbie", ""):
        at.text_input(key="ll_new_name").set_value(typed)
        at.selectbox(key="ll_new_role").set_value("engineer")
        [b for b in at.button if b.label == "Add"][0].click().run()
        assert not at.exception and not at.error
    assert _table(at)["newbie"] == ("engineer", True)  # the table, without a reload
    assert [a.name for a in ws.list_users()].count("newbie") == 1
    name, token, link_token = at.session_state["ll_new_token"]
    shown = [c.value for c in at.code]
    assert name == "newbie" and token in shown
    assert f"http://127.0.0.1:8599/?token={link_token}" in shown  # the server's own address
    assert ws.sign_in(link_token).name == "newbie" and ws.sign_in(token).name == "newbie"
    # Adding an existing name on purpose, later than a double click, is still refused.
    at.button(key="ll_hide_token").click().run()
    assert "ll_new_token" not in at.session_state
    monkeypatch.setattr(admin, "DOUBLE_CLICK_SECONDS", 0.0)
    at.text_input(key="ll_new_name").set_value("newbie")
    [b for b in at.button if b.label == "Add"][0].click().run()
    assert any("already exists" in e.value for e in at.error)


def test_team_page_changes_roles_and_asks_before_deactivating(team, monkeypatch):
    ws, tokens = team
    at = _team_page(ws, monkeypatch)
    at.selectbox(key="ll_person").set_value("ann").run()
    assert at.selectbox(key="ll_role_of_ann").value == "annotator"
    at.selectbox(key="ll_role_of_ann").set_value("lead")
    at.button(key="ll_change_role").click().run()
    assert not at.exception and _table(at)["ann"] == ("lead", True)
    assert at.selectbox(key="ll_person").value == "ann"
    with Session(ws.engine) as session:
        ann = users.get_annotator(session, "ann")
    key = web_auth.SESSIONS.open(name="ann", annotator_id=ann.id, token_id=ann.token_id)
    at.button(key="ll_deactivate").click().run()
    assert any("Deactivate ann?" in w.value for w in at.warning)
    assert _table(at)["ann"] == ("lead", True)  # nothing yet: asked first
    at.button(key="ll_deactivate_cancel").click().run()
    assert "ll_deactivate_confirm" not in [b.key for b in at.button]
    at.button(key="ll_deactivate").click().run()
    at.button(key="ll_deactivate_confirm").click().run()
    assert not at.exception
    assert _table(at)["ann"] == ("lead", False)
    assert at.selectbox(key="ll_person").value == "ann"  # the picker stays on the person
    assert web_auth.SESSIONS.lookup(key) is None  # signed out at once
    with pytest.raises(UnknownAnnotator):
        ws.sign_in(tokens["ann"])
    at.button(key="ll_reactivate").click().run()
    assert not at.exception and _table(at)["ann"] == ("lead", True)
    _, new, _link = at.session_state["ll_new_token"]
    assert ws.sign_in(new).name == "ann"
    at.button(key="ll_new_token_button").click().run()
    _, newer, _link = at.session_state["ll_new_token"]
    assert newer != new and ws.sign_in(newer).name == "ann"
    at.button(key="ll_new_token_button").click().run()  # a double click issues one token
    assert at.session_state["ll_new_token"][1] == newer and ws.sign_in(newer).name == "ann"
    assert not at.error
    with pytest.raises(UnknownAnnotator):
        ws.sign_in(new)
    # An admin does not demote or deactivate themselves from here.
    at.selectbox(key="ll_person").set_value("boss").run()
    assert at.selectbox(key="ll_role_of_boss").value == "admin"  # the chosen person's role
    assert at.button(key="ll_change_role").disabled
    assert "ll_deactivate" not in [b.key for b in at.button]


def test_engineers_see_the_team_but_change_nothing(team, monkeypatch):
    ws, _ = team
    ws.add_user("eng", role="engineer")
    at = _team_page(ws, monkeypatch, user="eng")
    assert not at.exception and set(_table(at)) == {"boss", "ann", "eng"}
    assert not [b for b in at.button if b.key and b.key.startswith("ll_")]
    assert "ll_person" not in [s.key for s in at.selectbox]


def test_cli_deactivation_hands_back_the_items_the_person_holds(team, tmp_path):
    # One definition of deactivating (Workspace.deactivate_user): the CLI, like the Team page,
    # hands the person's held items back at once instead of leaving them leased.
    ws, _tokens = team
    data = tmp_path / "items.csv"
    data.write_text("id,text\nx1,first\nx2,second\n", encoding="utf-8")
    ws.import_file(data, id_field="id")
    held = ws.next_item("ann")
    assert held is not None
    base = ["-w", str(ws.root)] + (
        ["--db", ws.db_url] if ws.db_url.startswith("postgresql") else []
    )
    done = CliRunner().invoke(app, ["user", "deactivate", "ann", *base])
    assert done.exit_code == 0, done.output
    ws.add_user("bob")
    first = ws.next_item("bob")
    second = ws.next_item("bob")  # the same lease again: bob holds one item at a time
    assert first is not None and second is not None and first.item_id == second.item_id
    with Session(ws.engine) as session:
        leases = session.exec(select(Lease)).all()
    assert [lease.annotator_id for lease in leases] == [ws.person("bob").id]
