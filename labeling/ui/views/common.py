"""What every page shares: the workspace, the signed-in person, sign-in and sign-out.

``labelloop serve`` passes the workspace folder (and a database URL given with ``--db``) to the
Streamlit process in the environment variables below. The workspace is opened once per server
process and shared by every browser session; each session keeps only the signed-in name.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable

import streamlit as st

from labeling.annotation import roles
from labeling.annotation.session import UserSession
from labeling.errors import LabelloopError, UnknownAnnotator
from labeling.store import labelsets
from labeling.ui import web_auth
from labeling.workspace import Workspace

WORKSPACE_ENV = web_auth.WORKSPACE_ENV
DB_ENV = web_auth.DB_ENV
USER_KEY = "ll_user"

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

# The sign-in form: plain HTML, posted to the sign-in route (labeling/ui/web_auth.py), which
# answers with the session cookie. A constant: no data goes through HTML.
SIGN_IN_FORM = """
<form method="post" action="/auth/sign-in" class="ll-sign-in">
  <label for="ll_token">Sign-in token</label>
  <input id="ll_token" name="token" type="password" autocomplete="off" required
         spellcheck="false" placeholder="ll_...">
  <button type="submit">Sign in</button>
</form>
<style>
.ll-sign-in { display: flex; flex-direction: column; gap: 0.5rem; max-width: 28rem;
  padding: 1rem; border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 0.5rem; }
.ll-sign-in input { font: inherit; padding: 0.45rem 0.6rem; border-radius: 0.4rem;
  border: 1px solid rgba(49, 51, 63, 0.3); }
.ll-sign-in button { font: inherit; align-self: flex-start; padding: 0.4rem 1rem;
  border: none; border-radius: 0.5rem; background: #ff4b4b; color: white; cursor: pointer; }
</style>
"""


def workspace() -> Workspace:
    """The served workspace: one object per server process, the same that the sign-in routes
    and the Label page's batch route use, so a setting saved on a page (overlap, lease time,
    ``prefetch``) counts for their next request too."""
    return web_auth.served_workspace()


def session_cookie() -> str | None:
    """The session key the browser sent with this page's websocket (HttpOnly: no script on
    the page can read it)."""
    key = st.context.cookies.get(web_auth.COOKIE)
    return key if isinstance(key, str) and key else None  # AppTest's client has no cookies


def restore_session() -> None:
    """Sign the browser in from its session cookie, or out when it has none that is live.

    Run at the top of every run of ``app.py``: sign-out in another tab, deactivation and a new
    token end a session here, before anything is shown.
    """
    key = session_cookie()
    found = web_auth.current_session(workspace(), key) if key else None
    if found is None:
        _forget_person()
        return
    if st.session_state.get(USER_KEY) != found.name:
        _forget_person()
    st.session_state[USER_KEY] = found.name


def _forget_person() -> None:
    for key in [k for k in st.session_state if str(k).startswith("ll_")]:
        del st.session_state[key]


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


NO_LABELS = "(none)"  # how a page shows the empty set of a multi-label answer


def set_text(names: Iterable[str]) -> str:
    """A set of labels as pages show it: ``billing, refund``, or ``(none)`` for the empty set
    (names in the order given: pass them in label order)."""
    shown = ", ".join(names)
    return shown if shown else NO_LABELS


def label_text(value: str | None, multilabel: bool, *, missing: str = "") -> str:
    """A stored label as pages show it: in a single-label workspace the label itself; in a
    multi-label one the set's names (:func:`set_text`), never its JSON; ``missing`` for no
    label. A value that is not a stored set (say, from a part not built for sets) is shown as
    it is rather than breaking the page."""
    if value is None:
        return missing
    if not multilabel:
        return value
    try:
        return set_text(labelsets.decode_ordered(value))
    except ValueError:  # json's errors are ValueErrors too
        return value


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


def require_engineer(page: str) -> UserSession | None:
    """The signed-in person when their role sees ``page`` (engineers, leads and admins);
    otherwise the page says whom it is for and the caller returns."""
    user = require_user()
    if not user.can(roles.ENGINEER):
        st.error(f"The {page} page is for engineers and admins.")
        return None
    return user


def sign_in_form() -> None:
    """The sign-in page: a plain HTML form posted to the server's sign-in route, which sets
    the session cookie (a Streamlit widget could not) and comes back here."""
    st.title("labelloop")
    st.write("Sign in with the token your lead gave you (`labelloop user add` prints it).")
    if st.query_params.get(web_auth.FAILED_PARAM) == web_auth.FAILED_VALUE:
        st.error("That sign-in token is wrong, has expired or has been revoked.")
    st.html(SIGN_IN_FORM)


def end_sessions(name: str) -> None:
    """End the browser sessions of ``name`` in this server at once (after deactivation or a
    new token; other servers end theirs at the person's next request)."""
    web_auth.end_sessions(workspace(), name)


def sign_out() -> None:
    """End this browser's session in the server (its cookie no longer works) and hand back
    the items the person holds."""
    user = current_user()
    web_auth.SESSIONS.close(session_cookie())
    _forget_person()
    if user is not None:
        with contextlib.suppress(LabelloopError):
            user.sign_out()
