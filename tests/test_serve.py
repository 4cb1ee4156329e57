"""``labelloop serve`` and ``labelloop demo`` as processes: link, health, worker, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from sqlmodel import Session, func, select

from labeling import Workspace
from labeling.models import SignInLink
from tests.browser import serve


def test_demo_builds_and_serves_then_stops_cleanly(tmp_path):
    root = tmp_path / "demo"
    command = [sys.executable, "-m", "labeling.cli", "demo", str(root)]
    with serve(root, command=command, timeout=120) as server:
        assert "Created the demo workspace" in "".join(server.output)
        with urllib.request.urlopen(server.sign_in_url, timeout=10) as reply:
            assert reply.status == 200
        with Workspace.open(root) as ws, Session(ws.engine) as session:
            assert session.exec(select(func.count()).select_from(SignInLink)).one() == 1
            assert ws.config.display_fields == ("channel",)
        # The background round worker runs beside the UI.
        workers = subprocess.run(
            ["pgrep", "-f", f"labeling.worker --workspace {root.resolve()}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert workers.stdout.strip(), "no round worker process"
        process = server.process
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    # The launch link was revoked on the way out.
    with Workspace.open(root) as ws, Session(ws.engine) as session:
        assert session.exec(select(func.count()).select_from(SignInLink)).one() == 0


def test_serve_refuses_a_port_in_use(tmp_path):
    Workspace.create(tmp_path / "ws", labels=["a", "b"]).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "labeling.cli", "serve", "-w", str(tmp_path / "ws")]
            + ["--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert f"127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert time.monotonic() - started < 60


def test_serve_outside_a_workspace_is_a_clear_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "labeling.cli", "serve", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "not a labelloop workspace" in done.stderr
