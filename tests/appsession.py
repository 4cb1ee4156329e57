"""Pages under Streamlit's AppTest: opening one for a person, and signing a person in by the
session cookie, which AppTest cannot carry."""

from __future__ import annotations

from sqlmodel import Session
from streamlit.testing.v1 import AppTest

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


# Seconds an AppTest run may take (a page's first run imports pandas, altair, ...).
TIMEOUT = 30


def page_script(module: str, *, style: bool = True) -> str:
    """The script of one page as app.py runs it: the shared style, then the page."""
    script = f"from labeling.ui.views import common, {module}\n"
    return script + ("common.apply_style()\n" if style else "") + f"{module}.render()\n"


def open_page(
    module: str,
    user: str,
    *,
    item: str | None = None,
    style: bool = True,
    timeout: float = TIMEOUT,
) -> AppTest:
    """A page of the app (``labeling.ui.views.<module>``) run once for ``user``, who is
    signed in by the session state; ``item`` opens the Data page's item page by its id."""
    at = AppTest.from_string(page_script(module, style=style), default_timeout=timeout)
    at.session_state["ll_user"] = user
    if item is not None:
        at.query_params["item"] = item
    return at.run()
