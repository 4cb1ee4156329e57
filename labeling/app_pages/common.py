"""What every page shares: the workspace, the signed-in person, sign-in and sign-out.

``labelloop serve`` passes the workspace folder (and a database URL given with ``--db``) to the
Streamlit process in the environment variables below. The workspace is opened once per server
process and shared by every browser session; each session keeps only the signed-in name.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
import time
from pathlib import Path

import streamlit as st

from labeling.errors import LabelloopError, UnknownAnnotator
from labeling.services import UserSession
from labeling.workspace import Workspace

WORKSPACE_ENV = "LABELLOOP_WORKSPACE"
DB_ENV = "LABELLOOP_DB"
USER_KEY = "ll_user"
SESSION_PARAM = "sid"
SESSION_HOURS = 12

# The look: readable text, large label buttons. Our own static CSS; no data goes through HTML.
STYLE = """
<style>
.stMainBlockContainer { padding-top: 2.2rem; max-width: 58rem; }
.st-key-ll_text div[data-testid="stText"] { font-size: 1.22rem; line-height: 1.6; }
.st-key-ll_text div[data-testid="stText"] div { white-space: pre-wrap; }
.st-key-ll_buttons button { min-height: 3.1rem; font-size: 1.08rem; }
.st-key-ll_buttons button p { font-size: 1.08rem; }
</style>
"""


@st.cache_resource(show_spinner=False)
def _open_workspace(root: str, db_url: str | None) -> Workspace:
    return Workspace.open(Path(root), db_url=db_url)


def workspace() -> Workspace:
    """The served workspace (opened once per server process)."""
    root = os.environ.get(WORKSPACE_ENV, ".")
    return _open_workspace(str(Path(root).resolve()), os.environ.get(DB_ENV) or None)


class _Sessions:
    """Browser sessions of this server process, so that a page reload keeps you signed in.

    The key in the address (``?sid=``) is random and maps to a name in memory only: it dies
    with the server, on sign-out and after ``SESSION_HOURS``. Roles are still read from the
    store on every call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, tuple[str, float]] = {}

    def open(self, name: str) -> str:
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._by_key[key] = (name, time.time() + SESSION_HOURS * 3600)
        return key

    def name(self, key: str) -> str | None:
        with self._lock:
            found = self._by_key.get(key)
            if found is None or found[1] < time.time():
                self._by_key.pop(key, None)
                return None
            return found[0]

    def close(self, key: str) -> None:
        with self._lock:
            self._by_key.pop(key, None)


@st.cache_resource(show_spinner=False)
def _sessions() -> _Sessions:
    return _Sessions()


def restore_session() -> None:
    """Sign in again from the ``?sid=`` in the address after a reload; keep it there."""
    key: str | None = st.session_state.get("ll_sid")
    if key is None:
        key = st.query_params.get(SESSION_PARAM)
        name = _sessions().name(key) if key else None
        if key is None or name is None:
            return
        st.session_state[USER_KEY] = name
        st.session_state["ll_sid"] = key
    if st.query_params.get(SESSION_PARAM) != key:
        st.query_params[SESSION_PARAM] = key


def apply_style() -> None:
    st.html(STYLE)


# Characters Markdown (and Streamlit's :color[...] and :icon: directives) give a meaning to.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """``text`` escaped for the widgets that render Markdown (buttons, captions, messages).

    Data (labels, item ids, file names quoted in errors) must show as written: a label named
    ``[x](javascript:...)`` is a label, not a link. Every Markdown character gets a backslash.
    """
    return _MARKDOWN.sub(r"\\\1", str(text))


def current_user() -> UserSession | None:
    name = st.session_state.get(USER_KEY)
    if not name:
        return None
    return UserSession(workspace(), name)


def require_user() -> UserSession:
    """The signed-in person; a page shown without one stops with a plain message."""
    user = current_user()
    if user is None:
        st.warning("Sign in first.")
        st.stop()
    assert user is not None
    try:
        user.role()
    except UnknownAnnotator as exc:
        st.session_state.pop(USER_KEY, None)
        st.error(f"{exc}. Ask your lead for a new sign-in link.")
        st.stop()
    return user


def sign_in(token: str) -> str | None:
    """Sign in with ``token``; returns an error message for people, or None on success."""
    try:
        user = UserSession.sign_in(workspace(), token)
    except UnknownAnnotator:
        return "That sign-in token is wrong, has expired or has been revoked."
    except LabelloopError as exc:
        return str(exc)
    st.session_state[USER_KEY] = user.name
    st.session_state["ll_sid"] = _sessions().open(user.name)
    return None


def sign_out() -> None:
    user = current_user()
    key = st.session_state.get("ll_sid")
    if key:
        _sessions().close(key)
    st.query_params.clear()
    st.session_state.pop(USER_KEY, None)
    for key in [k for k in st.session_state if str(k).startswith("ll_")]:
        del st.session_state[key]
    if user is not None:
        with contextlib.suppress(LabelloopError):
            user.sign_out()
