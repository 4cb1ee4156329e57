"""The HTTP API (issue 25) against a real server on loopback, driven with httpx: auth and roles,
idempotent pushes checked as imports are, the labels feed followed while people label, the
queue and answers of a labelling client, body limits, rounds and status; SQLite and PostgreSQL.
"""

from __future__ import annotations

import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from labeling import Workspace
from labeling.rounds import predictions
from labeling.service.server import announce
from labeling.store.answers import final_labels
from labeling.store.models import ImportBatch, Item
from tests.bad_inputs.store import assert_unchanged, fingerprint
from tests.test_predict import pool_texts, youtube
from tests.test_webhooks import SECRET, SECRET_ENV, Receiver, hook, hooked_workspace

LABELS = ["ham", "spam"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def api_server(root: Path, db_url: str | None) -> Iterator[str]:
    """``labelloop api`` in its own process on a free loopback port; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "labeling.cli", "api", "-w", str(root), "--port", str(port)]
    if db_url:
        command += ["--db", db_url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    out = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"the API did not start: {out}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def served(tmp_path, db_url) -> Iterator[tuple[Path, str, dict[str, str]]]:
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, db_url=db_url)
    tokens = {
        "eng": ws.add_user("eng", role="engineer")[1],
        "ann": ws.add_user("ann")[1],
        "bob": ws.add_user("bob")[1],
    }
    ws.update_settings(overlap=1, gold_rate=0.0, lease_seconds=600)
    ws.close()
    with api_server(tmp_path / "ws", db_url) as url:
        yield tmp_path / "ws", url, tokens


def client(url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def items(start: int, n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": f"m{k}", "text": f"message number {k} about things", **extra} for k in
            range(start, start + n)]  # fmt: skip


def test_tokens_and_roles_decide_who_may_do_what(served):
    root, url, tokens = served
    anonymous = client(url, None).post("/items", json={"items": items(0, 1)})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in anonymous.json()["error"]
    wrong = client(url, "ll_nothing_wrongsecret").get("/labels")
    assert wrong.status_code == 401
    assert "ll_nothing" not in wrong.text  # the token is never echoed
    annotator = client(url, tokens["ann"])
    refused = annotator.post("/items", json={"items": items(0, 1)})
    assert refused.status_code == 403
    assert refused.json()["error"] == (
        "pushing items needs the role engineer or above; ann is annotator"
    )
    for path in ("/labels", "/status", "/rounds", "/items/m0"):
        assert annotator.get(path).status_code == 403, path
    engineer = client(url, tokens["eng"])
    assert engineer.post("/items", json={"items": items(0, 3)}).status_code == 200
    assert annotator.get("/queue/next").status_code == 200  # their own queue
    # A deactivated person, and a replaced token, are refused at once (no stale cache).
    with Workspace.open(root) as ws:
        ws.deactivate_user("ann")
        _, new_token = ws.new_user_token("eng")
    assert annotator.get("/queue/next").status_code == 401
    assert engineer.get("/labels").status_code == 401
    assert client(url, new_token).get("/labels").status_code == 200


def test_pushes_are_checked_as_imports_and_a_resend_adds_nothing(served):
    root, url, tokens = served
    engineer = client(url, tokens["eng"])
    first = engineer.post("/items", json={"items": items(0, 5)}).json()
    assert first["created"] == 5 and first["existing"] == 0
    again = engineer.post("/items", json={"items": items(0, 7)}).json()
    assert again["created"] == 2 and again["existing"] == 5
    resent = engineer.post("/items", json={"items": items(0, 7)}).json()
    assert resent["created"] == 0 and resent["existing"] == 7
    assert resent["batch"] is None  # a resend leaves no empty import batch behind
    gold = [{"id": "g1", "text": "a gold message", "label": "spam"}]
    assert engineer.post("/items", json={"items": gold, "split": "gold"}).json()["created"] == 1
    with Workspace.open(root) as ws:
        before = fingerprint(ws)
    bad_cases = [
        ({"items": items(10, 2) + [{"id": "x"}]}, "items: item 2, field 'text': missing"),
        ({"items": [{"id": "y", "text": "t", "label": "eggs"}], "label_field": "label"},
         "'eggs'"),
        ({"items": [{"id": "z", "text": "t"}], "split": "gold"}, "field 'label'"),
        ({"items": [7]}, "items[0]: Input should be a valid dictionary"),
        ({"items": [], "split": "test"}, "split: Input should be 'pool' or 'gold'"),
        ({"items": []}, "items: expected at least one item"),
        ({"itemz": []}, "itemz: Extra inputs are not permitted"),
    ]  # fmt: skip
    for body, expected in bad_cases:
        reply = engineer.post("/items", json=body)
        assert reply.status_code == 400, body
        assert expected in reply.json()["error"], reply.json()
    too_many = engineer.post("/items", json={"items": items(0, 10_001)})
    assert too_many.status_code == 400
    assert "items: List should have at most 10000 items" in too_many.json()["error"]
    huge = engineer.post("/items", content=b'{"items": ["' + b"x" * (33 * 1024 * 1024) + b'"]}')
    assert huge.status_code == 413
    assert huge.json()["error"] == "request body too large: at most 32 MiB"
    # Never cached: neither this reply (sent before the app's middleware) nor the others.
    assert huge.headers["cache-control"] == "no-store"
    assert too_many.headers["cache-control"] == "no-store"
    not_json = engineer.post(
        "/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    with Workspace.open(root) as ws:
        assert_unchanged(before, ws)
        assert ws.status()["items"]["pool"] == 7
        assert [b.imported for b in ws.import_batches()] == [5, 2, 1]


def test_an_item_reads_as_on_its_item_page(served):
    _root, url, tokens = served
    engineer = client(url, tokens["eng"])
    engineer.post("/items", json={"items": [{"id": "a/b 1", "text": "hello", "lang": "en"}]})
    found = engineer.get("/items/a%2Fb%201")
    assert found.status_code == 200
    story = found.json()
    assert story["id"] == "a/b 1" and story["text"] == "hello"
    assert story["source"]["lang"] == "en"
    assert story["answers"] == [] and story["label"] is None
    missing = engineer.get("/items/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "no item with id 'nope'"


def test_a_labelling_client_answers_each_item_once(served):
    root, url, tokens = served
    client(url, tokens["eng"]).post("/items", json={"items": items(0, 6)})
    ann = client(url, tokens["ann"])
    shown = ann.get("/queue/next", params={"n": 2}).json()["items"]
    assert len(shown) == 2
    first = shown[0]["id"]
    body = {"answers": [{"id": "cid-00000001", "item": first, "label": "spam"}], "next": 2}
    reply = ann.post("/answers", json=body).json()
    assert reply["results"] == [
        {"id": "cid-00000001", "ok": True, "duplicate": False, "error": None, "item": None}
    ]
    assert first not in [item["id"] for item in reply["items"]]
    resent = ann.post("/answers", json=body).json()  # the reply was lost: sent again
    assert resent["results"][0]["duplicate"] is True
    bad = ann.post("/answers", json={"answers": [{"id": "cid-00000002", "item": first,
                                                  "label": "eggs"}]})  # fmt: skip
    assert bad.status_code == 400
    assert (
        bad.json()["error"]
        == "answers[0].label: expected a label name, one of ham, spam; or skip true"
    )
    skip = {"answers": [{"id": "cid-00000003", "item": shown[1]["id"], "skip": True}]}
    assert ann.post("/answers", json=skip).json()["results"][0]["ok"] is True
    not_held = ann.post(
        "/answers", json={"answers": [{"id": "cid-00000004", "item": "m5", "label": "ham"}]}
    ).json()["results"][0]
    assert not_held["ok"] is False and "m5" in not_held["error"]
    with Workspace.open(root) as ws, ws._read() as session:
        labels = final_labels(session, ws.labels)
    assert list(labels.values()) == ["spam"]


def test_a_follower_of_labels_misses_nothing_while_people_label(served):
    root, url, tokens = served
    engineer = client(url, tokens["eng"])
    engineer.post("/items", json={"items": items(0, 40)})
    stop = threading.Event()
    errors: list[BaseException] = []

    def label(person: str) -> None:
        me = client(url, tokens[person])
        n = 0
        try:
            while not stop.is_set():
                shown = me.get("/queue/next").json()["items"]
                if not shown:
                    return
                n += 1
                answer = {"id": f"{person}-{n:08d}", "item": shown[0]["id"],
                          "label": LABELS[n % 2]}  # fmt: skip
                me.post("/answers", json={"answers": [answer]})
        except BaseException as exc:  # noqa: BLE001  reported below
            errors.append(exc)

    people = [threading.Thread(target=label, args=(p,)) for p in ("ann", "bob")]
    for thread in people:
        thread.start()
    copy: dict[str, Any] = {}
    cursor = None
    seen_cursors = []
    deadline = time.monotonic() + 120
    while any(t.is_alive() for t in people) and time.monotonic() < deadline:
        page = engineer.get("/labels", params={"since": cursor, "limit": 3} if cursor else
                            {"limit": 3}).json()  # fmt: skip
        for change in page["labels"]:
            copy[change["id"]] = change["label"]
        cursor = page["next"]
        seen_cursors.append(int(cursor))
    stop.set()
    for thread in people:
        thread.join()
    assert not errors, errors
    while True:  # the rest after the last answer
        page = engineer.get("/labels", params={"since": cursor, "limit": 7}).json()
        if not page["labels"]:
            break
        for change in page["labels"]:
            copy[change["id"]] = change["label"]
        cursor = page["next"]
    assert seen_cursors == sorted(seen_cursors)
    with Workspace.open(root) as ws, ws._read() as session:
        truth = {f"m{k}": None for k in range(40)}
        names = dict(session.exec(select(Item.id, Item.external_id)).all())
        for item_id, label in final_labels(session, ws.labels).items():
            truth[names[item_id]] = label
    assert {k: v for k, v in copy.items() if v is not None} == {
        k: v for k, v in truth.items() if v is not None
    }
    assert len(copy) == 40  # every item was labelled once (overlap 1), each read
    bad = engineer.get("/labels", params={"since": "x1"})
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("since: expected a cursor")
    assert engineer.get("/labels", params={"limit": 0}).status_code == 400


def test_rounds_and_status(served):
    _root, url, tokens = served
    engineer = client(url, tokens["eng"])
    assert engineer.get("/rounds").json() == {"rounds": []}
    queued = engineer.post("/rounds", json={"strategy": "margin"})
    assert queued.status_code == 202
    assert queued.json()["status"] == "queued" and queued.json()["strategy"] == "margin"
    again = engineer.post("/rounds").json()
    assert again["round"] == queued.json()["round"]  # one queued round is reused
    bad = engineer.post("/rounds", json={"strategy": "psychic"})
    assert bad.status_code == 400 and "strategy: expected one of" in bad.json()["error"]
    assert [r["status"] for r in engineer.get("/rounds").json()["rounds"]] == ["queued"]
    reply = engineer.get("/status")
    assert reply.headers["cache-control"] == "no-store"
    status = reply.json()
    assert status["items"]["pool"] == 0 and "quality" in status
    page = httpx.get(f"{url}/docs").text  # Swagger UI from packaged files, no CDN
    assert "/docs-static/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert httpx.get(f"{url}/docs-static/swagger-ui-bundle.js").status_code == 200
    schema = json.loads(httpx.get(f"{url}/openapi.json").text)
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    for path in ("/items", "/items/{item_id}", "/labels", "/predict", "/status", "/rounds",
                 "/queue/next", "/answers"):  # fmt: skip
        assert path in schema["paths"], path


def test_the_api_refuses_a_taken_port_and_warns_off_loopback(tmp_path):
    Workspace.create(tmp_path / "ws", labels=LABELS).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "labeling.cli", "api", "-w", str(tmp_path / "ws"),
             "--port", str(port)],
            capture_output=True, text=True, timeout=60, env={**os.environ},
        )  # fmt: skip
    assert done.returncode != 0
    assert f"option '--port': cannot listen on 127.0.0.1:{port}" in done.stderr
    said: list[str] = []
    announce("0.0.0.0", 8000, tmp_path / "ws", said.append)
    assert said[0].startswith("warning: the API listens on 0.0.0.0, reachable from other machines")
    said.clear()
    announce("127.0.0.1", 8000, tmp_path / "ws", said.append)
    assert not any(line.startswith("warning") for line in said)


def test_pushed_batches_are_checked_for_drift_behind_the_replies(served):
    root, url, tokens = served
    engineer = client(url, tokens["eng"])
    first = engineer.post("/items", json={"items": items(0, 60)}).json()
    odd = [{"id": f"z{k}", "text": f"zz qq xx {k} vv ww"} for k in range(40)]
    second = engineer.post("/items", json={"items": odd}).json()
    assert first["drift"] is None and second["drift"] is None  # not checked in the request
    deadline = time.monotonic() + 120
    with Workspace.open(root) as ws:
        while ws.unchecked_pushes() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ws.unchecked_pushes() == []
        with ws._read() as session:
            drift = dict(session.exec(select(ImportBatch.id, ImportBatch.drift)).all())
    checked = json.loads(drift[second["batch"]])
    assert checked["items"] == 40 and checked["auc"] is not None
    assert json.loads(drift[first["batch"]])["items"] == 60


def test_predict_over_http_gives_what_the_round_stored(tmp_path, db_url):
    ws = youtube(tmp_path / "yt", db_url)
    token = ws.add_user("eng", role="engineer")[1]
    ids, texts = pool_texts(ws)
    stored = predictions.load(ws, 1).lookup(ids)
    ws.close()
    with api_server(tmp_path / "yt", db_url) as url:
        engineer = client(url, token)
        reply = engineer.post("/predict", json={"texts": texts})
        assert reply.status_code == 200
        found = reply.json()
        assert found["round"] == 1
        assert [p["label"] for p in found["predictions"]] == [stored[i][0] for i in ids.tolist()]
        for prediction, item_id in zip(found["predictions"], ids.tolist(), strict=True):
            assert set(prediction["probabilities"]) == {"0", "1"}
            best = max(prediction["probabilities"].values())
            assert abs(best - stored[item_id][1]) < 1e-5
        missing = engineer.post("/predict", json={"texts": ["x"], "round": 9})
        assert missing.status_code == 404
        too_many = engineer.post("/predict", json={"texts": ["x"] * 10_001})
        assert too_many.status_code == 400
        assert "texts: List should have at most 10000 items" in too_many.json()["error"]


def test_predict_without_a_promoted_round_says_so(served):
    _root, url, tokens = served
    reply = client(url, tokens["eng"]).post("/predict", json={"texts": ["hello"]})
    assert reply.status_code == 409
    assert "round" in reply.json()["error"]


def test_a_push_tells_the_webhooks_and_the_api_sends_them(tmp_path, monkeypatch):
    receiver = Receiver()
    try:
        ws = hooked_workspace(tmp_path / "ws", None, hook(receiver.url, events=["import.done"]))
        token = ws.add_user("eng", role="engineer")[1]
        ws.close()
        monkeypatch.setenv(SECRET_ENV, SECRET)
        with api_server(tmp_path / "ws", None) as url:
            pushed = client(url, token).post("/items", json={"items": items(0, 3)}).json()
            assert receiver.arrived.wait(60), "no delivery from the API's sender"
    finally:
        receiver.close()
    delivered = receiver.requests[0]
    body = json.loads(delivered["body"])
    assert body["event"] == "import.done"
    assert body["data"]["batch"] == pushed["batch"]
    stamp = delivered["headers"]["X-Labelloop-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{stamp}.{delivered['body']}".encode(), "sha256")
    assert delivered["headers"]["X-Labelloop-Signature"] == "sha256=" + expected.hexdigest()
