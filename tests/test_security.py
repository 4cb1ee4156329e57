"""The security promises of docs/security.md, one test (or more) per promise.

Tokens: slow salted hash, constant-time comparison, revocation. Roles: enforced in the service
layer and in the page registry, whatever the address asks for. Data is never HTML. LF code
comes only from the workspace's ``lfs/``. ``serve`` stays on loopback unless told otherwise.
"""

from __future__ import annotations

import ast
import hmac
import json
from pathlib import Path

import pytest
import streamlit as st
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from labeling import Workspace, db, lfs, server, users
from labeling.errors import BadInput, Forbidden, UnknownAnnotator
from labeling.models import Annotator, LabelingFunction
from labeling.services import UserSession

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
    from labeling import rounds

    assert rounds.list_rounds(ws) == []


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


def _registered_pages(monkeypatch, token: str) -> list[str]:
    """Sign in through app.py and return the url paths it registered with st.navigation."""
    seen: list[str] = []
    real = st.navigation

    def spy(pages, **kwargs):
        seen[:] = [page.url_path for page in pages]
        return real(pages, **kwargs)

    monkeypatch.setattr(st, "navigation", spy)
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["token"] = token
    at.run()
    assert not at.exception
    return seen


def test_an_annotator_gets_no_engineer_pages(served, monkeypatch):
    _, tokens = served
    # Streamlit serves only registered pages: any other address falls back to the default
    # page (Label, whose path is ""), so /lfs or /team by URL shows an annotator nothing new.
    assert _registered_pages(monkeypatch, tokens["annotator"]) == ["", "stats"]
    engineer = _registered_pages(monkeypatch, tokens["engineer"])
    # An engineer's default page is Metrics (path ""); Label is then at /label.
    assert {"", "label", "data", "lfs", "model", "team"} <= set(engineer)


@pytest.mark.parametrize("module", ["data", "lfs", "model", "metrics", "admin", "review"])
def test_engineer_pages_refuse_an_annotator_who_reaches_them(served, module):
    """Even rendered directly (as a guessed address would, were it registered), a page calls
    the service layer, which refuses: no data, no working controls."""
    script = f"from labeling.app_pages import common, {module}\ncommon.apply_style()\n"
    script += f"{module}.render()\n"
    at = AppTest.from_string(script, default_timeout=30)
    at.session_state["ll_user"] = "annotator"
    at.run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error) + " ".join(w.value for w in at.warning)
    assert "role" in shown or "engineer" in shown or "lead" in shown or "admin" in shown
    assert not at.dataframe and not at.download_button


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


def test_item_text_is_shown_as_plain_text(served):
    ws, tokens = served
    path = ws.root.parent / "evil.csv"
    path.write_text(
        'id,text\nx1,"<img src=x onerror=alert(1)> **bold** [link](http://e.invalid)"\n'
    )
    ws.import_file(path, id_field="id")
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["token"] = tokens["annotator"]
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
        lfs.add_rule(ws, {"kind": "code", "name": "sneaky", "label": "spam",
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
    loaded = lfs.load(ws)
    assert {lf.name for lf in loaded.lfs} == {"mentions_refund"}
    lfs.apply(ws)
    assert not marker.exists()
    with Session(ws.engine) as session:
        sneaky = session.exec(select(LabelingFunction).where(LabelingFunction.name == "sneaky"))
        assert sneaky.one().active is False


# ---------------------------------------------------------------- serve


def test_serve_binds_loopback_by_default_and_warns_otherwise(ws, monkeypatch):
    import inspect

    from labeling import cli

    assert inspect.signature(cli.serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(cli.demo).parameters["host"].default == "127.0.0.1"
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
        streamlit_command = next(c for c in started if "streamlit" in c)
        assert streamlit_command[streamlit_command.index("--server.address") + 1] == host
