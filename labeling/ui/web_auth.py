"""Browser sign-in for ``labelloop serve``: a sign-in token in, a session cookie out.

A token reaches the server in two ways: a link ``http://HOST:PORT/?token=...`` (any page's
address with ``?token=``) or the sign-in form, a plain HTML form posted to ``/auth/sign-in``.
Both are handled here, over HTTP and before Streamlit sees the request: the token is checked,
a new random session key is set as an HttpOnly, SameSite=Strict cookie, and the browser is
sent on (303) to the same address without the token. No address ever carries a secret after
that, so a copied address signs nobody in. The Streamlit script reads the cookie
(``st.context.cookies``, sent with the page's websocket) and looks the key up in
:data:`SESSIONS`.

Sessions live in the server process's memory: they end on sign-out, after
:data:`SESSION_HOURS`, and with the server. Each one is tied to the person's current token id,
so deactivating a person, or giving them a new token, ends every session they have at their
next request, whichever process made the change (the CLI included).
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from labeling.annotation import users
from labeling.errors import UnknownAnnotator
from labeling.store import db
from labeling.workspace import Workspace

WORKSPACE_ENV = "LABELLOOP_WORKSPACE"
DB_ENV = "LABELLOOP_DB"
# The server's own address (``http://HOST:PORT/``), set by ``serve`` for the sign-in links the
# Team page shows: never taken from the address a browser asked for.
SERVER_URL_ENV = "LABELLOOP_SERVER_URL"
COOKIE = "labelloop_session"
SESSION_HOURS = 12
SIGN_IN_PATH = "/auth/sign-in"
TOKEN_PARAM = "token"
# Added to the address after a refused token, so the sign-in form can say so; holds no secret.
FAILED_PARAM = "sign_in"
FAILED_VALUE = "failed"
# Streamlit's own endpoints: a ``token`` parameter there is not a sign-in link.
_STREAMLIT_PREFIXES = ("/_stcore/", "/static/", "/media/", "/component/", "/auth/")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class BrowserSession:
    """Who a session key signs in, and with which of their tokens (``token_id``)."""

    name: str
    annotator_id: int
    token_id: str | None
    expires: float


class SessionStore:
    """The browser sessions of one server process, keyed by a hash of the cookie's key."""

    def __init__(self, *, hours: float = SESSION_HOURS) -> None:
        self._lock = threading.Lock()
        self._hours = hours
        self._by_key: dict[str, BrowserSession] = {}

    @staticmethod
    def _digest(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def open(self, *, name: str, annotator_id: int, token_id: str | None) -> str:
        """A new session key (a fresh one on every sign-in, so a key planted in a browser
        before sign-in never becomes a signed-in one)."""
        key = secrets.token_urlsafe(32)
        session = BrowserSession(name, annotator_id, token_id, time.time() + self._hours * 3600)
        with self._lock:
            self._drop_expired()
            self._by_key[self._digest(key)] = session
        return key

    def lookup(self, key: str | None) -> BrowserSession | None:
        if not key:
            return None
        digest = self._digest(key)
        with self._lock:
            found = self._by_key.get(digest)
            if found is not None and found.expires < time.time():
                del self._by_key[digest]
                return None
            return found

    def close(self, key: str | None) -> None:
        if key:
            with self._lock:
                self._by_key.pop(self._digest(key), None)

    def close_for(self, annotator_id: int) -> int:
        """End every session of one person; returns how many there were."""
        with self._lock:
            ended = [k for k, s in self._by_key.items() if s.annotator_id == annotator_id]
            for digest in ended:
                del self._by_key[digest]
        return len(ended)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)

    def _drop_expired(self) -> None:
        now = time.time()
        for digest in [k for k, s in self._by_key.items() if s.expires < now]:
            del self._by_key[digest]


# One per server process: the sign-in routes write it, the Streamlit script reads it.
SESSIONS = SessionStore()


@functools.cache
def _open_workspace(root: str, db_url: str | None) -> Workspace:
    return Workspace.open(Path(root), db_url=db_url)


def served_workspace() -> Workspace:
    """The workspace ``serve`` named in the environment (opened once per process)."""
    root = os.environ.get(WORKSPACE_ENV, ".")
    return _open_workspace(str(Path(root).resolve()), os.environ.get(DB_ENV) or None)


def server_url() -> str | None:
    """The address ``serve`` listens on, ``http://HOST:PORT/`` (None outside ``serve``)."""
    url = os.environ.get(SERVER_URL_ENV)
    return url if url else None


def sign_in_link(token: str) -> str | None:
    base = server_url()
    return f"{base}?{urlencode({TOKEN_PARAM: token})}" if base else None


def start_session(ws: Workspace, token: str, *, store: SessionStore = SESSIONS) -> str | None:
    """Check ``token`` and open a session for its person; the new key, or None if refused.

    Only a refused token gives None: a store that cannot be read raises, rather than telling
    the person their token is wrong.
    """
    try:
        with db.read_session(ws.engine) as session:
            annotator = users.authenticate(session, token)
    except UnknownAnnotator:
        return None
    assert annotator.id is not None
    return store.open(name=annotator.name, annotator_id=annotator.id, token_id=annotator.token_id)


def current_session(
    ws: Workspace, key: str | None, *, store: SessionStore = SESSIONS
) -> BrowserSession | None:
    """The live session for a cookie's key, checked against the store: a person deactivated
    or given a new token since has their session ended here."""
    found = store.lookup(key)
    if found is None:
        return None
    with db.read_session(ws.engine) as session:
        current = users.current_token_id(session, found.annotator_id)
    if current is None or current != found.token_id:
        store.close(key)
        return None
    return found


def end_sessions(ws: Workspace, name: str, *, store: SessionStore = SESSIONS) -> int:
    """End every session of ``name`` in this process; returns how many there were."""
    with db.read_session(ws.engine) as session:
        annotator = users.get_annotator(session, name, active_only=False)
    return store.close_for(annotator.id) if annotator.id is not None else 0


def _redirect(location: str, *, key: str | None, secure: bool) -> Response:
    response = RedirectResponse(location, status_code=303)
    # Neither the address with the token nor the answer should be kept or passed on.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    if key is not None:
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict", secure=secure, path="/")
    return response


def _location(path: str, query: list[tuple[str, str]], *, failed: bool) -> str:
    """Where to send the browser: this server's same page, never another site (a path such as
    ``//evil.example`` or ``/\\evil.example`` would be read as another host)."""
    path = "/" + path.lstrip("/")
    if "\\" in path:
        path = "/"
    kept = [(k, v) for k, v in query if k not in (TOKEN_PARAM, FAILED_PARAM)]
    if failed:
        kept.append((FAILED_PARAM, FAILED_VALUE))
    return path + (f"?{urlencode(kept)}" if kept else "")


async def _exchange(token: str) -> str | None:
    # scrypt takes tens of milliseconds of CPU: keep it off the event loop.
    return await run_in_threadpool(start_session, served_workspace(), token)


class SignInLinkMiddleware:
    """Exchange a sign-in link's ``?token=`` for the session cookie, then redirect to the same
    address without it (or with ``?sign_in=failed`` when the token is refused)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "/"))
        raw = scope.get("query_string", b"").decode("utf-8", "replace")
        query = parse_qsl(raw, keep_blank_values=True)
        tokens = [v for k, v in query if k == TOKEN_PARAM]
        if not tokens or path.startswith(_STREAMLIT_PREFIXES):
            await self.app(scope, receive, send)
            return
        key = await _exchange(tokens[0])
        response = _redirect(
            _location(path, query, failed=key is None),
            key=key,
            secure=_secure(scope.get("scheme")),
        )
        await response(scope, receive, send)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def same_origin(request: Request) -> bool:
    """Whether a POST comes from a page of this server (cross-site request forgery check):
    its Origin is the address it was sent to, or the public address ``serve`` was given."""
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    allowed = {f"{request.url.scheme}://{host}"} if host else set()
    public = server_url()
    if public:
        allowed.add(_origin_of(public))
    return bool(origin) and origin in allowed


def _secure(scheme: object) -> bool:
    """Whether the cookie gets ``Secure``: served over HTTPS, here or at the public address."""
    return scheme == "https" or (server_url() or "").startswith("https://")


async def sign_in_form_post(request: Request) -> Response:
    """The sign-in form's target: a typed token in, the session cookie out."""
    if not same_origin(request):
        return PlainTextResponse(
            "sign-in refused: expected the form of this server's own sign-in page "
            f"(Origin {request.url.scheme}://{request.headers.get('host')}), "
            f"found Origin {request.headers.get('origin') or 'missing'}",
            status_code=403,
        )
    form = await request.form()
    token = form.get(TOKEN_PARAM)
    key = await _exchange(token) if isinstance(token, str) and token.strip() else None
    return _redirect(
        "/" if key is not None else f"/?{FAILED_PARAM}={FAILED_VALUE}",
        key=key,
        secure=_secure(request.url.scheme),
    )


def routes() -> list[Route]:
    return [Route(SIGN_IN_PATH, sign_in_form_post, methods=["POST"])]
