"""The web server ``labelloop serve`` runs: the Streamlit app (``app.py``) plus the sign-in
routes of :mod:`labeling.web_auth`, which turn a token into a session cookie over plain HTTP
before Streamlit sees the request.

``streamlit run labeling/web_app.py`` finds ``app`` below and serves it with Streamlit's own
server. It lives in the package, beside the modules it wires together; ``app.py`` stays the
Streamlit entry at the top of the repository.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from labeling import web_auth

app = st.App(
    Path(__file__).resolve().parents[1] / "app.py",
    routes=web_auth.routes(),
    middleware=[Middleware(web_auth.SignInLinkMiddleware)],
)
