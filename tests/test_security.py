"""The security promises of docs/security.md, one test (or more) per promise.

Tokens: slow salted hash, constant-time comparison, revocation. Roles: enforced in the service
layer and in the page registry, whatever the address asks for. Data is never HTML. LF code
comes only from the workspace's ``lfs/``. ``serve`` stays on loopback unless told otherwise.
"""

from __future__ import annotations

import ast
import hmac
import itertools
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import streamlit as st
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st_h
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from labeling.annotation import users
from labeling.annotation.session import UserSession
from labeling.errors import BadInput, Forbidden, UnknownAnnotator
from labeling.store import db
from labeling.store.models import Annotator, LabelingFunction
from labeling.ui import server, web_auth
from tests.appsession import signed_in
from tests.browser import serve

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.create(tmp_path / "sec", labels=["spam", "ham"])
    path = tmp_path / "pool.csv"
    path.write_text("id,text\n" + "".join(f"i{k},message {k} refund\n" for k in range(12)))
    ws.import_file(path, id_field="id")
    yield ws
    ws.close()


def _tokens(ws: Workspace) -> dict[str, str]:
    return {role: ws.add_user(role, role=role)[1] for role in ("annotator", "engineer", "admin")}


# ---------------------------------------------------------------- tokens


def test_tokens_are_stored_as_slow_salted_scrypt_hashes(ws):
    _, token = ws.add_user("ann")
    with Session(ws.engine) as session:
        stored = session.exec(select(Annotator.token_hash).where(Annotator.name == "ann")).one()
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest)) == 32
    assert token.split("_", 2)[2] not in stored


def test_secrets_are_compared_in_constant_time(ws, monkeypatch):
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(users.hmac, "compare_digest", spy)
    _, token = ws.add_user("ann")
    assert ws.sign_in(token).name == "ann"
    with pytest.raises(UnknownAnnotator):
        ws.sign_in(token[:-2] + "zz")
    assert len(calls) == 2
    # An unknown token id costs a full hash too, so ids cannot be told apart by timing.
    with pytest.raises(UnknownAnnotator):
        ws.sign_in("ll_ffffffffffff_" + token.split("_", 2)[2])
    assert len(calls) == 3


def test_revocation_deactivation_and_sign_in_links(ws):
    tokens = _tokens(ws)
    ann = UserSession.sign_in(ws, tokens["annotator"])
    ws.deactivate_user("annotator")
    with pytest.raises(UnknownAnnotator):
        UserSession.sign_in(ws, tokens["annotator"])
    with pytest.raises(UnknownAnnotator):  # an open session ends at its next call
        ann.current_item()
    launch = server.prepare(ws, host="127.0.0.1", port=8501, link_hours=1)
    assert UserSession.sign_in(ws, launch.token).can("admin")
    with db.write_session(ws.engine) as session:
        users.revoke_sign_in_link(session, launch.token)  # what serve does when it stops
    with pytest.raises(UnknownAnnotator):
        UserSession.sign_in(ws, launch.token)


# ---------------------------------------------------------------- roles in the service layer


def test_an_annotator_cannot_run_rounds_edit_lfs_export_or_see_people(ws):
    tokens = _tokens(ws)
    ann = UserSession.sign_in(ws, tokens["annotator"])
    rule = {"kind": "keyword", "name": "kw_refund", "label": "spam", "keywords": ["refund"]}
    refused = {
        "trigger a round": lambda: ann.request_round(),
        "promote a round": lambda: ann.promote_round(1),
        "roll back": lambda: ann.rollback_round(),
        "list rounds": lambda: ann.rounds(),
        "add a rule": lambda: ann.add_rule(rule),
        "switch a rule": lambda: ann.set_rule_active("kw_refund", False),
        "apply LFs": lambda: ann.apply_lfs(),
        "fit weak labels": lambda: ann.fit_weak_labels(),
        "read LF analysis": lambda: ann.lf_analysis(),
        "export": lambda: ann.export_bytes("csv"),
        "list people": lambda: ann.list_users(),
        "add a person": lambda: ann.add_user("mallory", role="admin"),
        "read metrics": lambda: ann.metrics(),
        "review": lambda: ann.review(),
        "adjudicate": lambda: ann.adjudicate(1, "spam"),
    }
    for action, call in refused.items():
        with pytest.raises(Forbidden):
            call()
            pytest.fail(f"an annotator could {action}")
    with Session(ws.engine) as session:
        assert session.exec(select(LabelingFunction)).all() == []
    assert ws.rounds() == []


def test_nobody_sees_tokens_not_even_admins(ws):
    tokens = _tokens(ws)
    admin = UserSession.sign_in(ws, tokens["admin"])
    listed = json.dumps(admin.list_users(), default=str)
    for token in tokens.values():
        assert token not in listed and token.split("_", 2)[2] not in listed
    assert "token" not in listed


# ---------------------------------------------------------------- pages


@pytest.fixture
def served(ws, monkeypatch):
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    return ws, _tokens(ws)


def _registered_pages(monkeypatch, ws: Workspace, name: str) -> list[str]:
    """Sign in through app.py and return the url paths it registered with st.navigation."""
    seen: list[str] = []
    real = st.navigation

    def spy(pages, **kwargs):
        seen[:] = [page.url_path for page in pages]
        return real(pages, **kwargs)

    monkeypatch.setattr(st, "navigation", spy)
    signed_in(monkeypatch, ws, name)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    return seen


def test_an_annotator_gets_no_engineer_pages(served, monkeypatch):
    ws, _ = served
    # Streamlit serves only registered pages: any other address falls back to the default
    # page (Label, whose path is "", with a hidden twin at /label), so /lfs or /team by URL
    # shows an annotator nothing new.
    assert _registered_pages(monkeypatch, ws, "annotator") == ["", "stats", "label"]
    engineer = _registered_pages(monkeypatch, ws, "engineer")
    # An engineer's default page is Metrics (path "", twin /metrics); Label is at /label.
    assert {"", "label", "data", "lfs", "model", "team", "metrics"} <= set(engineer)
    assert len(engineer) == len(set(engineer))


@pytest.mark.parametrize("module", ["data", "lfs", "model", "metrics", "admin", "review"])
def test_engineer_pages_refuse_an_annotator_who_reaches_them(served, module):
    """Even rendered directly (as a guessed address would, were it registered), a page calls
    the service layer, which refuses: no data, no working controls."""
    script = f"from labeling.ui.views import common, {module}\ncommon.apply_style()\n"
    script += f"{module}.render()\n"
    at = AppTest.from_string(script, default_timeout=30)
    at.session_state["ll_user"] = "annotator"
    at.run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error) + " ".join(w.value for w in at.warning)
    assert "role" in shown or "engineer" in shown or "lead" in shown or "admin" in shown
    assert not at.dataframe and not at.download_button


# ---------------------------------------------------------------- sessions


def test_without_a_session_cookie_app_shows_the_sign_in_form_and_drops_a_token(served):
    ws, tokens = served
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["token"] = tokens["admin"]  # only the server's sign-in route takes links
    at.run()
    assert not at.exception
    assert "token" not in at.query_params
    assert "ll_user" not in at.session_state
    forms = [e for e in at.get("html") if 'action="/auth/sign-in"' in e.proto.body]
    assert len(forms) == 1 and 'method="post"' in forms[0].proto.body
    assert not at.text_input and not at.button  # nothing to use before signing in


def test_a_refused_token_is_said_on_the_sign_in_form(served):
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params[web_auth.FAILED_PARAM] = web_auth.FAILED_VALUE
    at.run()
    assert not at.exception
    assert any("wrong, has expired or has been revoked" in e.value for e in at.error)


def test_sign_out_ends_the_session_in_the_server(served, monkeypatch):
    ws, _ = served
    key = signed_in(monkeypatch, ws, "engineer")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception and at.session_state["ll_user"] == "engineer"
    at.button(key="ll_sign_out").click().run()
    assert not at.exception
    assert web_auth.SESSIONS.lookup(key) is None  # the old cookie no longer works
    again = AppTest.from_file(APP, default_timeout=30).run()  # a reload with the same cookie
    assert "ll_user" not in again.session_state
    assert [e for e in again.get("html") if "/auth/sign-in" in e.proto.body]


def test_deactivation_or_a_new_token_ends_sessions_made_elsewhere(ws):
    """The CLI changes the store, not the server's memory: the session is checked against the
    person's row at every request."""
    tokens = _tokens(ws)
    store = web_auth.SessionStore()
    first = web_auth.start_session(ws, tokens["annotator"], store=store)
    second = web_auth.start_session(ws, tokens["annotator"], store=store)
    assert first and second and first != second  # a new key at every sign-in: no fixation
    assert web_auth.current_session(ws, first, store=store).name == "annotator"
    ws.deactivate_user("annotator")
    assert web_auth.current_session(ws, first, store=store) is None
    assert web_auth.start_session(ws, tokens["annotator"], store=store) is None
    _, new = ws.reactivate_user("annotator")
    assert web_auth.current_session(ws, second, store=store) is None  # stays ended
    third = web_auth.start_session(ws, new, store=store)
    assert web_auth.current_session(ws, third, store=store) is not None
    ws.new_user_token("annotator")
    assert web_auth.current_session(ws, third, store=store) is None
    assert web_auth.start_session(ws, new, store=store) is None
    assert web_auth.current_session(ws, "made-up", store=store) is None
    engineer = web_auth.start_session(ws, tokens["engineer"], store=store)
    assert web_auth.current_session(ws, engineer, store=store).name == "engineer"  # untouched


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _http(url: str, *, data: dict | None = None, origin: str | None = None):
    """(status, headers) of one request, redirects not followed."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if origin is not None:
        request.add_header("Origin", origin)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=20) as reply:
            return reply.status, reply.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def test_sign_in_routes_trade_a_token_for_a_strict_http_only_cookie(ws):
    tokens = _tokens(ws)
    ws.close()
    with serve(ws.root) as server:
        base = server.url.rstrip("/")
        keys = []
        for url in (server.sign_in_url, f"{base}/?token={tokens['annotator']}"):
            status, headers = _http(url)
            assert status == 303 and headers["Location"] == "/"
            assert headers["Cache-Control"] == "no-store"
            cookie = headers["Set-Cookie"]
            assert cookie.startswith(f"{web_auth.COOKIE}=")
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
            keys.append(cookie.split(";")[0].split("=", 1)[1])
        assert keys[0] != keys[1] and all(len(k) >= 40 for k in keys)
        # A refused link keeps the rest of the address and says so; no cookie.
        status, headers = _http(f"{base}/team?x=1&token=ll_000000000000_nothing")
        assert status == 303 and headers["Location"] == "/team?x=1&sign_in=failed"
        assert headers.get("Set-Cookie") is None
        for path in ("//evil.example/", "/%5Cevil.example/"):  # never a redirect to another site
            status, headers = _http(f"{base}{path}?token=ll_000000000000_nothing")
            assert status == 303 and headers["Location"].startswith("/")
            assert not headers["Location"].startswith(("//", "/\\"))
        # The form's POST: only from a page of this server (cross-site request forgery).
        form = {"token": tokens["engineer"]}
        for origin in (None, "http://evil.example", "null"):
            status, headers = _http(f"{base}/auth/sign-in", data=form, origin=origin)
            assert status == 403 and headers.get("Set-Cookie") is None
        status, headers = _http(f"{base}/auth/sign-in", data=form, origin=base)
        assert status == 303 and headers["Location"] == "/"
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=strict" in headers["Set-Cookie"]
        status, headers = _http(f"{base}/auth/sign-in", data={"token": "x"}, origin=base)
        assert status == 303 and headers["Location"] == "/?sign_in=failed"
        assert headers.get("Set-Cookie") is None


# ---------------------------------------------------------------- no HTML from data


def _page_sources() -> list[Path]:
    return [REPO / "app.py", *sorted((REPO / "labeling" / "app_pages").glob("*.py"))]


def test_no_page_lets_html_through():
    """No ``unsafe_allow_html=True`` anywhere, and ``st.html`` only with a module constant."""
    for path in _page_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "unsafe_allow_html":
                    value = keyword.value
                    assert isinstance(value, ast.Constant) and value.value is False, (
                        f"{path.name}:{node.lineno}: unsafe_allow_html"
                    )
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "html":
                args = node.args
                assert len(args) == 1 and isinstance(args[0], ast.Name), (
                    f"{path.name}:{node.lineno}: st.html with a computed argument"
                )
                assert args[0].id.isupper(), f"{path.name}:{node.lineno}: st.html({args[0].id})"
            if isinstance(func, ast.Attribute) and func.attr in ("components", "iframe"):
                pytest.fail(f"{path.name}:{node.lineno}: embedded HTML component")


def test_item_text_is_shown_as_plain_text(served, monkeypatch):
    ws, _ = served
    path = ws.root.parent / "evil.csv"
    path.write_text(
        'id,text\nx1,"<img src=x onerror=alert(1)> **bold** [link](http://e.invalid)"\n'
    )
    ws.import_file(path, id_field="id")
    signed_in(monkeypatch, ws, "annotator")
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    markdown = " ".join(m.value for m in at.markdown)
    assert "onerror" not in markdown and "[link]" not in markdown


# ---------------------------------------------------------------- LF code only from lfs/


def test_lf_code_runs_only_from_the_workspace_lfs_folder(ws, tmp_path):
    marker = tmp_path / "ran.txt"
    outside = tmp_path / "outside.py"
    outside.write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('ran')\n"
        "from weak_supervision import ABSTAIN, labeling_function\n\n"
        "@labeling_function()\n"
        "def sneaky(row):\n"
        "    return 'spam'\n"
    )
    # A rule of kind "code" (say, from the UI) is refused: rules are data only.
    with pytest.raises(BadInput):
        ws.add_rule({"kind": "code", "name": "sneaky", "label": "spam",
                     "file": str(outside)})  # fmt: skip
    # A stored row that names a file elsewhere is not loaded from there.
    with db.write_session(ws.engine) as session:
        session.add(
            LabelingFunction(
                name="sneaky",
                kind="code",
                spec=json.dumps({"file": str(outside)}),
                label="spam",
                version="v0",
            )  # fmt: skip
        )
    (ws.lfs_dir / "mine.py").write_text(
        "from weak_supervision import ABSTAIN, labeling_function\n\n"
        "@labeling_function()\n"
        "def mentions_refund(row):\n"
        "    return 'spam' if 'refund' in row.text else ABSTAIN\n"
    )
    loaded = ws.load_lfs()
    assert {lf.name for lf in loaded.lfs} == {"mentions_refund"}
    ws.apply_lfs()
    assert not marker.exists()
    with Session(ws.engine) as session:
        sneaky = session.exec(select(LabelingFunction).where(LabelingFunction.name == "sneaky"))
        assert sneaky.one().active is False


# ---------------------------------------------------------------- serve


def test_serve_binds_loopback_by_default_and_warns_otherwise(ws, monkeypatch):
    import inspect

    from labeling.cli import serving

    assert inspect.signature(serving.serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(serving.demo).parameters["host"].default == "127.0.0.1"
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert server.is_loopback(host)
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        assert not server.is_loopback(host)

    started: list[list[str]] = []

    class FakeProcess:
        def __init__(self, command, **_kwargs):
            started.append(command)

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(server.subprocess, "Popen", FakeProcess)
    monkeypatch.setattr(server, "check_port", lambda host, port: None)
    for host, warned in (("127.0.0.1", False), ("0.0.0.0", True)):
        said: list[str] = []
        started.clear()
        assert server.serve(ws.root, db_url=None, host=host, port=8599, echo=said.append) == 0
        warnings = [line for line in said if line.startswith("warning:")]
        assert bool(warnings) == warned
        if warned:
            assert "0.0.0.0" in warnings[0] and "HTTPS" in warnings[0]
            assert "--public-url" in warnings[1]
        streamlit_command = next(c for c in started if "streamlit" in c)
        assert streamlit_command[streamlit_command.index("--server.address") + 1] == host


def test_links_name_the_public_address_and_its_origin_may_post(ws, monkeypatch):
    from starlette.requests import Request

    launch = server.prepare(ws, host="127.0.0.1", port=8501, link_hours=1)
    assert launch.sign_in_url.startswith("http://127.0.0.1:8501/?token=ls_")
    public = server.check_public_url("https://labels.example.org")
    assert public == "https://labels.example.org/"
    behind = server.prepare(ws, host="127.0.0.1", port=8501, link_hours=1, public_url=public)
    assert behind.sign_in_url.startswith("https://labels.example.org/?token=ls_")
    for bad in ("labels.example.org", "ftp://x/", "https://x/?token=1", "http://"):
        with pytest.raises(BadInput, match="--public-url"):
            server.check_public_url(bad)

    def post(origin: str, host: str = "127.0.0.1:8501") -> Request:
        headers = [(b"host", host.encode()), (b"origin", origin.encode())]
        return Request({"type": "http", "method": "POST", "scheme": "http", "path": "/",
                        "headers": headers, "query_string": b""})  # fmt: skip

    monkeypatch.delenv(web_auth.SERVER_URL_ENV, raising=False)
    assert web_auth.same_origin(post("http://127.0.0.1:8501"))
    assert not web_auth.same_origin(post("https://labels.example.org"))
    assert not web_auth._secure("http")
    # Behind a proxy that does not pass the Host on, the public address's origin may post.
    monkeypatch.setenv(web_auth.SERVER_URL_ENV, public)
    assert web_auth.same_origin(post("https://labels.example.org"))
    assert not web_auth.same_origin(post("https://evil.example"))
    assert web_auth._secure("http")  # the browser talks HTTPS to the proxy
    assert web_auth.sign_in_link("ls_a_b") == "https://labels.example.org/?token=ls_a_b"


_PEOPLE = ("p0", "p1", "p2")
_OPS = st_h.lists(
    st_h.tuples(
        st_h.sampled_from(["sign_in", "sign_out", "deactivate", "reactivate", "new_token"]),
        st_h.integers(min_value=0, max_value=len(_PEOPLE) - 1),
    ),
    max_size=10,
)
_examples = itertools.count()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_OPS)
def test_live_sessions_always_match_a_recomputation_from_the_people(ws, ops):
    """After any sequence of sign-ins, sign-outs, deactivations, reactivations and new tokens,
    a session key works exactly when, recomputed from scratch, it was not signed out and its
    person is active with the token they signed in under."""
    run = next(_examples)
    store = web_auth.SessionStore()
    names = [f"{p}_{run}" for p in _PEOPLE]
    tokens = {name: ws.add_user(name)[1] for name in names}
    active = dict.fromkeys(names, True)
    generation = dict.fromkeys(names, 0)
    sessions: list[tuple[str, str, int]] = []  # key, person, generation at sign-in
    closed: set[str] = set()
    for op, who in ops:
        name = names[who]
        if op == "sign_in":
            key = web_auth.start_session(ws, tokens[name], store=store)
            assert (key is not None) == active[name]
            if key is not None:
                assert key not in {s[0] for s in sessions}
                sessions.append((key, name, generation[name]))
        elif op == "sign_out" and sessions:
            key = sessions[who % len(sessions)][0]
            store.close(key)
            closed.add(key)
        elif op == "deactivate" and active[name]:
            ws.deactivate_user(name)
            active[name] = False
        elif op == "reactivate" and not active[name]:
            tokens[name] = ws.reactivate_user(name)[1]
            active[name], generation[name] = True, generation[name] + 1
        elif op == "new_token" and active[name]:
            tokens[name] = ws.new_user_token(name)[1]
            generation[name] += 1
        for key, person, signed_in_at in sessions:
            live = key not in closed and active[person] and generation[person] == signed_in_at
            found = web_auth.current_session(ws, key, store=store)
            assert (found is not None) == live, (op, person, key in closed)
            assert found is None or found.name == person
