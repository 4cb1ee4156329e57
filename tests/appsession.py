"""Signing a person in for Streamlit's AppTest, which cannot carry the session cookie."""

from __future__ import annotations

from sqlmodel import Session

from labeling import Workspace
from labeling.annotation import users
from labeling.ui import web_auth
from labeling.ui.views import common


def signed_in(monkeypatch, ws: Workspace, name: str) -> str:
    """Open a browser session for ``name`` as the sign-in route does, and have app.py read its
    key as the session cookie: AppTest cannot carry cookies (the HTTP side has its own tests
    here and in test_browser.py)."""
    with Session(ws.engine) as session:
        person = users.get_annotator(session, name)
    assert person.id is not None
    key = web_auth.SESSIONS.open(name=name, annotator_id=person.id, token_id=person.token_id)
    monkeypatch.setattr(common, "session_cookie", lambda: key)
    return key
