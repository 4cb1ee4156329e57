"""The webhooks' sender against real receivers on loopback: signed deliveries, retries with
backoff, no delivery lost when a sender is killed mid-request, a dead endpoint that holds up
nothing, and ``labelloop webhooks`` (both backends)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labeling.cli.main import app
from labeling.service import webhooks
from labeling.service.webhooks import Backoff
from labeling.store.models import utcnow
from tests.test_webhooks import (
    SECRET,
    SECRET_ENV,
    Receiver,
    hook,
    hooked_workspace,
    rows,
    trainable,
    write_items,
)

runner = CliRunner()
# Backoff for tests: tenths of a second instead of 10 s, 30 s, 90 s...
QUICK = Backoff(first=0.2, factor=2.0, cap=1.0, jitter=0.1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return SECRET


def _cli(ws, *args: str):
    base = ["-w", str(ws.root)] + (["--db", ws.db_url] if "postgresql" in ws.db_url else [])
    return runner.invoke(app, [*args, *base])


def _drain(ws, *, seconds: float = 10.0, backoff: Backoff = QUICK) -> None:
    """Send until nothing is pending, as the worker's loop would."""
    deadline = time.monotonic() + seconds
    while any(row.state == "pending" for row in rows(ws)):
        assert time.monotonic() < deadline, [(r.state, r.last_error) for r in rows(ws)]
        webhooks.send_due(ws, backoff=backoff)
        time.sleep(0.05)


def _closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_delivery_is_signed_and_the_secret_is_nowhere(tmp_path, db_url, receiver, secret):
    ws = hooked_workspace(tmp_path / "ws", db_url, hook(receiver.url))
    ws.import_file(write_items(tmp_path / "a.csv", 4), id_field="id", label_field="label")
    done = webhooks.send_due(ws)
    assert (done.tried, done.delivered) == (1, 1)
    (got,) = receiver.requests
    headers, body = got["headers"], got["body"]
    stamp = headers["X-Labelloop-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
    assert headers["X-Labelloop-Signature"] == f"sha256={expected}"
    assert abs(int(stamp) - time.time()) < 60
    document = json.loads(body)
    assert headers["X-Labelloop-Event"] == document["event"] == "import.done"
    assert headers["X-Labelloop-Delivery"] == document["id"]
    assert headers["Content-Type"] == "application/json"
    assert set(document) == {"id", "event", "created_at", "workspace", "data"}
    (row,) = rows(ws)
    assert (row.state, row.attempts, row.last_status) == ("delivered", 1, 200)
    assert row.body == body
    shown = [_cli(ws, "webhooks", "log").output, _cli(ws, "webhooks", "log", "--json").output]
    shown.append(_cli(ws, "webhooks", "test", "rx").output)
    stored = [repr(r) for r in rows(ws)] + [(ws.root / "labelloop.toml").read_text()]
    assert not [text for text in shown + stored if SECRET in text]
    ws.close()


def test_a_missing_secret_is_named_and_setting_it_later_recovers(
    tmp_path, db_url, receiver, monkeypatch
):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    ws = hooked_workspace(tmp_path / "ws", db_url, hook(receiver.url))
    webhooks.ping(ws, "rx")
    webhooks.send_due(ws, backoff=QUICK)
    (row,) = rows(ws)
    assert row.state == "pending" and row.attempts == 1
    assert f"the environment variable {SECRET_ENV} (secret_env of webhook 'rx') is not set" in (
        row.last_error or ""
    )
    assert receiver.requests == []
    monkeypatch.setenv(SECRET_ENV, SECRET)
    _drain(ws)
    assert rows(ws)[0].state == "delivered" and len(receiver.requests) == 1
    ws.close()


def test_a_receiver_failing_twice_then_accepting_gets_three_attempts(tmp_path, db_url, secret):
    flaky = Receiver(statuses=(500, 503))
    try:
        ws = hooked_workspace(tmp_path / "ws", db_url, hook(flaky.url))
        webhooks.ping(ws, "rx")
        _drain(ws)
        (row,) = rows(ws)
        assert (row.state, row.attempts, row.last_status, row.last_error) == (
            "delivered", 3, 200, None,
        )  # fmt: skip
        ids = {r["headers"]["X-Labelloop-Delivery"] for r in flaky.requests}
        assert len(flaky.requests) == 3 and len(ids) == 1
        gaps = [b["at"] - a["at"] for a, b in zip(flaky.requests, flaky.requests[1:], strict=False)]
        # The backoff: 0.2 s, then 0.4 s, each within its 10 % jitter.
        assert gaps[0] >= 0.2 * 0.9 and gaps[1] >= 0.4 * 0.9, gaps
        ws.close()
    finally:
        flaky.close()


def test_no_delivery_is_lost_when_the_sender_is_killed_mid_request(tmp_path, db_url, secret):
    held = Receiver(hold=True)
    try:
        ws = hooked_workspace(tmp_path / "ws", db_url, hook(held.url, timeout_seconds=1))
        webhooks.ping(ws, "rx")
        env = os.environ | {"PYTHONPATH": str(REPO)}
        args = [sys.executable, "-m", "labeling.cli", "webhooks", "send", "-w", str(ws.root)]
        args += ["--db", ws.db_url] if "postgresql" in ws.db_url else []
        sender = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
        assert held.arrived.wait(30), "the sender never reached the receiver"
        sender.kill()
        sender.wait()
        held.release.set()
        (row,) = rows(ws)
        assert (row.state, row.attempts) == ("pending", 1)
        # The killed sender's claim runs out after the hook's timeout (+2 s): due again.
        while rows(ws)[0].due_at > utcnow():
            time.sleep(0.1)
        again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        (row,) = rows(ws)
        assert (row.state, row.attempts, row.last_status) == ("delivered", 2, 200)
        ids = [r["headers"]["X-Labelloop-Delivery"] for r in held.requests]
        assert len(ids) == 2 and ids[0] == ids[1]  # at least once: the receiver dedupes
        ws.close()
    finally:
        held.close()


def test_an_endpoint_that_does_not_answer_in_time_fails_the_attempt(tmp_path, db_url, secret):
    slow = Receiver(hold=True)
    try:
        quick = hook(slow.url, timeout_seconds=0.5, max_attempts=1)
        ws = hooked_workspace(tmp_path / "ws", db_url, quick)
        webhooks.ping(ws, "rx")
        started = time.monotonic()
        assert webhooks.send_due(ws).dead == 1
        assert time.monotonic() - started < 5
        (row,) = rows(ws)
        assert (row.state, row.last_status, row.last_error) == (
            "dead",
            None,
            "no reply within 0.5 s",
        )
        ws.close()
    finally:
        slow.close()


def test_a_dead_endpoint_never_holds_up_a_round_or_an_import(tmp_path, db_url, secret):
    dead = hook(f"http://127.0.0.1:{_closed_port()}/x", max_attempts=3, timeout_seconds=1)
    ws = trainable(tmp_path, db_url, dead)
    stop = threading.Event()
    quick = Backoff(first=0.05, factor=1.0, jitter=0.0)
    sending = threading.Thread(
        target=webhooks.run_sender, args=(ws, stop), kwargs={"poll": 0.05, "backoff": quick}
    )
    sending.start()
    try:
        started = time.monotonic()
        done = ws.retrain()
        ws.import_file(write_items(tmp_path / "more.csv", 10, start=300), id_field="id")
        assert done.status == "succeeded" and time.monotonic() - started < 30
    finally:
        stop.set()
        sending.join(5)
    assert not sending.is_alive()
    _drain(ws, backoff=quick)
    found = rows(ws)
    assert {r.event for r in found} >= {"import.done", "round.promoted"}
    for row in found:
        assert (row.state, row.attempts, row.last_status) == ("dead", 3, None)
        assert "could not connect" in (row.last_error or "") and "refused" in row.last_error
    ws.close()


def test_webhooks_log_lists_deliveries_newest_first_with_filters(tmp_path, db_url, secret):
    failing = Receiver(statuses=(500,) * 10)
    try:
        ws = hooked_workspace(tmp_path / "ws", db_url, hook(failing.url, max_attempts=1))
        ws.import_file(write_items(tmp_path / "a.csv", 4), id_field="id", label_field="label")
        sent = _cli(ws, "webhooks", "test", "rx")
        assert sent.exit_code == 1 and "dead" in sent.output and "HTTP 500" in sent.output
        text = _cli(ws, "webhooks", "log")
        assert text.exit_code == 0, text.output
        lines = text.stdout.splitlines()
        assert len(lines) == 2 and " ping " in lines[0] and " import.done " in lines[1]
        assert "pending" in lines[1] and "tries 0" in lines[1]
        listed = json.loads(_cli(ws, "webhooks", "log", "--json").stdout)["deliveries"]
        assert [d["event"] for d in listed] == ["ping", "import.done"]
        assert listed[0] | {"state": "dead", "attempts": 1, "last_status": 500} == listed[0]
        assert listed[0]["last_error"].startswith("HTTP 500")
        assert set(listed[0]) == {
            "id", "delivery", "event", "hook", "state", "attempts", "last_status",
            "last_error", "created_at", "delivered_at", "next_try",
        }  # fmt: skip
        only = json.loads(_cli(ws, "webhooks", "log", "--state", "pending", "--json").stdout)
        assert [d["event"] for d in only["deliveries"]] == ["import.done"]
        one = json.loads(
            _cli(ws, "webhooks", "log", "--event", "ping", "--limit", "1", "--json").stdout
        )
        assert len(one["deliveries"]) == 1
        bad = _cli(ws, "webhooks", "log", "--state", "lost")
        assert bad.exit_code == 2 and "option '--state': expected one of pending" in bad.output
        unknown = _cli(ws, "webhooks", "test", "nope")
        assert unknown.exit_code == 2 and "no webhook 'nope'" in unknown.output
        assert "configured: rx" in unknown.output
        ws.close()
    finally:
        failing.close()


def test_the_round_worker_sends_deliveries_in_its_thread(tmp_path, db_url, receiver, secret):
    ws = hooked_workspace(tmp_path / "ws", db_url, hook(receiver.url))
    webhooks.ping(ws, "rx")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "labeling.rounds.worker", "--workspace", str(ws.root)]
    args += ["--db", ws.db_url] if "postgresql" in ws.db_url else []
    worker = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
    try:
        assert receiver.arrived.wait(30), "the worker sent nothing"
        deadline = time.monotonic() + 10
        while rows(ws)[0].state != "delivered":
            assert time.monotonic() < deadline, rows(ws)[0]
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
    assert receiver.requests[0]["headers"]["X-Labelloop-Event"] == "ping"
    ws.close()
