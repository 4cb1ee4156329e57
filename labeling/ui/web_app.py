"""The web server ``labelloop serve`` runs: the Streamlit app (``app.py``) plus the sign-in
routes of :mod:`labeling.ui.web_auth`, which turn a token into a session cookie over plain HTTP
before Streamlit sees the request.

``streamlit run labeling/ui/web_app.py`` finds ``app`` below and serves it with Streamlit's own
server. It lives in the package, beside the modules it wires together; ``app.py`` stays the
Streamlit entry at the top of the repository.

``streamlit run`` puts the launcher's folder first on ``sys.path`` and imports this file as a
top-level module. Left there, this package's folder would let ``import queue`` or ``import
config`` anywhere later find labelloop's modules instead of the standard library's, so the
folder comes off the path again as soon as this module is imported (labelloop's modules are
imported as ``labeling.*`` through the installed package).
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import socket  # noqa: E402
from asyncio import base_events  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from labeling.ui import label_route, web_auth  # noqa: E402


def _no_delay_on_accepted_connections() -> None:
    """Turn Nagle's algorithm off on the connections the server accepts, as asyncio means to.

    asyncio sets ``TCP_NODELAY`` on a TCP connection's transport only when the socket's
    protocol number is ``IPPROTO_TCP``; Streamlit binds its listening socket with protocol 0, so
    the connections it accepts keep Nagle on. uvicorn writes a response's headers and its body
    in two sends, and with Nagle on the body waits for the client's delayed ACK: every
    keep-alive request then took 44-48 ms (``/_stcore/health`` and ``POST /label/batch``
    alike), 1-2 ms with this. The websocket's messages to the page are held back the same way.
    """
    kept = base_events._set_nodelay  # type: ignore[attr-defined]  # noqa: SLF001  (the hook)

    def set_nodelay(sock: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            kept(sock)

    base_events._set_nodelay = set_nodelay  # type: ignore[attr-defined]  # noqa: SLF001


_no_delay_on_accepted_connections()

app = st.App(
    Path(__file__).resolve().with_name("main.py"),
    routes=[*web_auth.routes(), *label_route.routes()],
    middleware=[Middleware(web_auth.SignInLinkMiddleware)],
)
