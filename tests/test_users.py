"""Annotators and tokens: hashed, shown once, revocable."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from labeling import Workspace
from labeling.errors import BadInput, UnknownAnnotator
from labeling.models import Annotator
from labeling.users import hash_secret, verify_secret


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
