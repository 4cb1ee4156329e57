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

from pathlib import Path  # noqa: E402

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from labeling.ui import label_route, web_auth  # noqa: E402

app = st.App(
    Path(__file__).resolve().with_name("main.py"),
    routes=[*web_auth.routes(), *label_route.routes()],
    middleware=[Middleware(web_auth.SignInLinkMiddleware)],
)
