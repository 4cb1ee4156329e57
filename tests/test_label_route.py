"""``POST /label/batch`` (labeling/ui/label_route.py) on a real ``labelloop serve`` on
loopback: only a signed-in page of this server may use it, a bad body is refused naming the
field, a big one with 413, and a batch answers, acknowledges a resend as applied once, and
refills the tab's buffer. The body checks also run without a server, through ``parse``."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
from sqlmodel import Session, select

from labeling import Workspace
from labeling.config import write_config
from labeling.store.models import Lease
from labeling.ui import label_route
from tests.browser import NO_REDIRECTS, serve, session_cookie, tfidf_only


def _workspace(tmp_path, *, prefetch: int = 3, task: str = "single-label") -> Workspace:
    ws = Workspace.create(tmp_path / "route", labels=["ham", "spam"], task=task)
    path = tmp_path / "pool.csv"
    path.write_text("id,text,channel\n" + "".join(f"r{k},text {k},ch{k}\n" for k in range(12)))
    ws.import_file(path, id_field="id")
    write_config(
        ws.root, replace(ws.config, prefetch=prefetch, gold_rate=0.0, display_fields=("channel",))
    )
    tfidf_only(ws.root)
    return ws


def _post(base: str, body: bytes, *, cookie: str | None, origin: str | None) -> tuple[int, dict]:
    request = urllib.request.Request(base + label_route.PATH, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if cookie:
        request.add_header("Cookie", cookie)
    if origin:
        request.add_header("Origin", origin)
    try:
        with NO_REDIRECTS.open(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_a_signed_in_page_answers_and_refills_and_others_are_refused(tmp_path):
    ws = _workspace(tmp_path)
    ws.close()
    with serve(ws.root) as server:
        base = server.url.rstrip("/")
        cookie = session_cookie(server.sign_in_url)

        def post(data, *, cookie=cookie, origin=base):
            body = data if isinstance(data, bytes) else json.dumps(data).encode()
            return _post(base, body, cookie=cookie, origin=origin)

        start = {"tab": "tab-test-01", "ops": [], "keep": [], "want": 9, "progress": True}
        assert post(start, origin=None)[0] == 403
        assert post(start, origin="http://evil.example")[0] == 403
        status, reply = post(start, cookie=None)
        assert status == 401 and reply["error"].startswith("signed out")
        status, reply = post(b"x" * (label_route.MAX_BODY + 1))
        assert status == 413
        status, reply = post({**start, "ops": [{"cid": "cid-000001", "op": "answer"}]})
        assert status == 400 and reply["error"] == "ops[0].item: expected the item's id"

        status, reply = post(start)
        assert status == 200 and len(reply["items"]) == 4  # capped at 1 + prefetch
        first = reply["items"][0]
        assert first["fields"] == [["channel", "ch" + first["id"][1:]]]
        assert first["undo"] is False and first["suggestion"] is None
        assert reply["progress"]["text"].startswith("0 of 12 labelled")
        ids = [item["id"] for item in reply["items"]]
        answer = {"cid": "cid-000001", "op": "answer", "item": ids[0], "label": "spam", "ms": 900}
        batch = {"tab": "tab-test-01", "ops": [answer], "keep": ids[1:], "want": 4}
        status, reply = post(batch)
        assert status == 200 and reply["acks"] == [{"cid": "cid-000001", "ok": True}]
        assert len(reply["items"]) == 1 and reply["items"][0]["id"] not in ids
        # Not asked for, the counts come with the answer: the progress line moves with it.
        assert "you today: 1" in reply["progress"]["text"]
        status, again = post({**batch, "keep": [*ids[1:], reply["items"][0]["id"]]})
        assert again["acks"] == [{"cid": "cid-000001", "ok": True, "dup": True}]
        assert again["items"] == [] and again["dropped"] == []
        # The page closes: a release (no item) after what it had not seen acknowledged.
        release = {"cid": "cid-000002", "op": "release"}
        closing = {"tab": "tab-test-01", "ops": [answer, release], "keep": [], "want": 0}
        status, gone = post(closing)
        assert status == 200 and gone["items"] == [] and gone["dropped"] == []
        assert gone["acks"][1] == {"cid": "cid-000002", "ok": True}
        status, gone = post(closing)
        assert gone["acks"][1] == {"cid": "cid-000002", "ok": True, "dup": True}
    with Workspace.open(ws.root) as ws:
        story = ws.item(ids[0])
        assert story["label"] == "spam" and [a["label"] for a in story["answers"]] == ["spam"]
        with Session(ws.engine) as session:
            assert session.exec(select(Lease)).all() == []  # the closed tab holds nothing


def test_a_batch_after_prefetch_went_to_zero_is_applied_and_hands_the_items_back(tmp_path):
    ws = _workspace(tmp_path)
    ws.close()
    with serve(ws.root) as server:
        base = server.url.rstrip("/")
        cookie = session_cookie(server.sign_in_url)
        start = json.dumps({"tab": "tab-test-01", "ops": [], "keep": [], "want": 4}).encode()
        ids = [item["id"] for item in _post(base, start, cookie=cookie, origin=base)[1]["items"]]
        toml = ws.root / "labelloop.toml"  # an admin sets the one-item page meanwhile
        toml.write_text(toml.read_text().replace("prefetch = 3", "prefetch = 0"))
        served = server.process  # the server reads the toml when it opens the workspace: restart
    with serve(ws.root) as server:
        base = server.url.rstrip("/")
        cookie = session_cookie(server.sign_in_url)
        answer = {"cid": "cid-000001", "op": "answer", "item": ids[0], "label": "ham"}
        body = {"tab": "tab-test-01", "ops": [answer], "keep": ids[1:], "want": 4}
        status, reply = _post(base, json.dumps(body).encode(), cookie=cookie, origin=base)
        assert served.returncode is not None
        assert status == 200 and reply["one_item_page"] is True
        assert reply["acks"] == [{"cid": "cid-000001", "ok": True}] and reply["items"] == []
    with Workspace.open(ws.root) as ws:
        assert ws.item(ids[0])["label"] == "ham"
        with Session(ws.engine) as session:
            assert session.exec(select(Lease)).all() == []  # nothing left held for the tab


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "request body: expected JSON"),
        (b"[]", "request body: expected a JSON object"),
        (b'{"tab": "x"}', "tab: expected 8-64 letters, digits, - or _"),
        (b'{"tab": "tab-test-01", "want": "4"}', "want: expected a whole number"),
        (b'{"tab": "tab-test-01", "keep": [1]}', "keep: expected a list"),
        (b'{"tab": "tab-test-01", "hints": 1}', "hints: expected true or false"),
        (b'{"tab": "tab-test-01", "ops": [7]}', "ops[0]: expected an object"),
        (b'{"tab": "tab-test-01", "ops": [{"cid": "c", "op": "skip"}]}', "ops[0].cid: expected"),
        (
            b'{"tab": "tab-test-01", "ops": [{"cid": "cid-000001", "op": "delete"}]}',
            "ops[0].op: expected one of answer, skip, undo, flag, release, found 'delete'",
        ),
        (
            b'{"tab": "tab-test-01", "ops": [{"cid": "cid-000001", "op": "answer", "item": "r1",'
            b' "label": 3}]}',
            "ops[0].label: expected a label name, one of ham, spam",
        ),
        (
            b'{"tab": "tab-test-01", "ops": [{"cid": "cid-000001", "op": "skip", "item": "r1",'
            b' "ms": -1}]}',
            "ops[0].ms: expected a whole number of milliseconds",
        ),
        (
            b'{"tab": "tab-test-01", "ops": [{"cid": "cid-000001", "op": "undo", "of": "x"}]}',
            "ops[0].of: expected the cid of an answer of this tab",
        ),
        (
            b'{"tab": "tab-test-01", "ops": [{"cid": "cid-000001", "op": "skip", "item": "r1",'
            b' "suggestion": {"source": "oracle"}}]}',
            "ops[0].suggestion.source: expected one of model, llm, weak",
        ),
        (
            b'{"tab": "tab-test-01", "ops": [{"cid": "cid-000001", "op": "skip", "item": "r1",'
            b' "suggestion": {"source": "model", "value": "eggs"}}]}',
            "ops[0].suggestion.value: label 'eggs' is not one of: ham, spam",
        ),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(tmp_path, body, message):
    ws = _workspace(tmp_path)
    with pytest.raises(label_route.BadBatch) as raised:
        label_route.parse(body, ws)
    assert str(raised.value).startswith(message)
    ws.close()


def test_multi_label_bodies_take_lists(tmp_path):
    ws = _workspace(tmp_path, task="multi-label")
    parsed = label_route.parse(
        b'{"tab": "tab-test-01", "ops": [{"cid": "cid-000001", "op": "answer", "item": "r1",'
        b' "label": ["spam"], "suggestion": {"source": "model", "value": ["ham", "spam"]}}]}',
        ws,
    )
    assert parsed["ops"][0].label == ["spam"]
    assert parsed["ops"][0].suggestion.value == '["ham","spam"]'
    with pytest.raises(label_route.BadBatch, match=r"ops\[0\].label: expected a list"):
        label_route.parse(
            b'{"tab": "tab-test-01", "ops": [{"cid": "cid-000001", "op": "answer", "item": "r1",'
            b' "label": "spam"}]}',
            ws,
        )
    ws.close()


def test_the_server_turns_nagle_off_on_the_connections_it_accepts():
    """Streamlit's listening socket has protocol 0, so asyncio would leave Nagle on for every
    connection it accepts and each keep-alive reply would wait ~40 ms for a delayed ACK
    (labeling/ui/web_app.py). After the app module is loaded, a connection like those gets
    TCP_NODELAY from the hook asyncio calls for it."""
    script = (
        "import socket\n"
        "from asyncio import base_events\n"
        "import labeling.ui.web_app\n"
        "sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "assert sock.proto == 0\n"
        "base_events._set_nodelay(sock)\n"
        "print(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
