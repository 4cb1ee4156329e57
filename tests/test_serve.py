"""``labelloop serve`` and ``labelloop demo`` as processes: link, health, worker, clean stop;
the run files that let the next ``serve`` revoke the link of a server that was killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from labeling import Workspace
from labeling.errors import LabelloopError, UnknownAnnotator
from labeling.store.models import SignInLink
from labeling.ui import serve_runs, server
from tests.browser import free_port, serve


def test_demo_builds_and_serves_then_stops_cleanly(tmp_path):
    root = tmp_path / "demo"
    command = [sys.executable, "-m", "labeling.cli", "demo", str(root)]
    api_port = free_port()
    # The demo builds its workspace and trains a round first: about 30 s on a quiet machine,
    # over 100 s on a loaded one.
    with serve(root, command=command, timeout=240, api_port=api_port) as server:
        assert "Created the demo workspace" in "".join(server.output)
        with urllib.request.urlopen(server.sign_in_url, timeout=10) as reply:
            assert reply.status == 200
        # The HTTP API runs beside the UI, and wants a token.
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{api_port}/labels", timeout=5)
            except urllib.error.HTTPError as refused:
                assert refused.code == 401
                break
            except OSError:
                assert time.monotonic() < deadline, "the API did not start"
                time.sleep(0.2)
        assert f"The HTTP API is at http://127.0.0.1:{api_port}/" in "".join(server.output)
        with Workspace.open(root) as ws, Session(ws.engine) as session:
            assert session.exec(select(func.count()).select_from(SignInLink)).one() == 1
            assert ws.config.display_fields == ("channel",)
        # The background round worker runs beside the UI.
        workers = subprocess.run(
            ["pgrep", "-f", f"labeling.rounds.worker --workspace {root.resolve()}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert workers.stdout.strip(), "no round worker process"
        process = server.process
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    # The launch link was revoked on the way out, and its run file removed.
    with Workspace.open(root) as ws, Session(ws.engine) as session:
        assert session.exec(select(func.count()).select_from(SignInLink)).one() == 0
    assert list(serve_runs.run_dir(root).iterdir()) == []


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
    with socket.socket() as taken:  # the API's port taken: named, with the way round it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        api_port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "labeling.cli", "serve", "-w", str(tmp_path / "ws")]
            + ["--port", str(free_port()), "--api-port", str(api_port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert f"option '--api-port': cannot listen on 127.0.0.1:{api_port}" in done.stderr
    assert "--no-api" in done.stderr


def test_serve_outside_a_workspace_is_a_clear_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "labeling.cli", "serve", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "not a labelloop workspace" in done.stderr


# ---------------------------------------------------------------- run files and the stale sweep


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"])
    yield ws
    ws.close()


def _launch(ws: Workspace) -> server.Launch:
    return server.prepare(ws, host="127.0.0.1", port=8501, link_hours=1)


def _rewrite(path: Path, **changes: object) -> None:
    """Make a run file say what a server elsewhere, or one that is gone, would have written."""
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _gone_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _revoked(ws: Workspace, token: str) -> bool:
    try:
        ws.sign_in(token)
    except UnknownAnnotator as exc:
        assert "wrong or has been revoked" in str(exc)
        return True
    return False


def test_serve_records_its_link_in_a_run_file_written_whole(ws):
    launch = _launch(ws)
    token_id = launch.token.split("_", 2)[1]
    assert launch.run_file == ws.root / ".serve" / f"{token_id}.json"
    assert json.loads(launch.run_file.read_text()) == {
        "token_id": token_id,
        "pid": os.getpid(),
        "started": serve_runs.process_started(os.getpid()),
        "host": socket.gethostname(),
    }
    assert serve_runs.process_started(os.getpid())  # there is a /proc here
    assert [p.name for p in launch.run_file.parent.iterdir()] == [launch.run_file.name]


def test_the_sweep_revokes_links_of_servers_gone_from_this_host_only(ws):
    killed, reused, running, elsewhere = (_launch(ws) for _ in range(4))
    _rewrite(killed.run_file, pid=_gone_pid())
    # Our pid, but a process that started at another time: the kernel reused the pid.
    _rewrite(reused.run_file, started="another-boot/12345")
    _rewrite(elsewhere.run_file, pid=_gone_pid(), host=f"not-{socket.gethostname()}")
    for launch in (killed, reused, running, elsewhere):
        assert ws.sign_in(launch.token).role == "admin"

    swept = server.sweep_stale_links(ws)

    assert (swept.removed, swept.revoked, swept.unreadable) == (2, 2, [])
    for launch in (killed, reused):
        assert _revoked(ws, launch.token)
        assert not launch.run_file.exists()
    for launch in (running, elsewhere):  # a live server's, and one another host must judge
        assert not _revoked(ws, launch.token)
        assert launch.run_file.exists()
    again = server.sweep_stale_links(ws)
    assert (again.removed, again.revoked) == (0, 0)


def test_the_sweep_removes_a_file_whose_link_is_gone_and_reports_unreadable_ones(ws):
    launch = _launch(ws)
    _rewrite(launch.run_file, pid=_gone_pid())
    assert ws.revoke_sign_in_links() == 1
    junk = launch.run_file.parent / "junk.json"
    junk.write_text("{not json")
    swept = server.sweep_stale_links(ws)
    assert (swept.removed, swept.revoked, swept.unreadable) == (1, 0, [junk])
    assert not launch.run_file.exists() and junk.exists()


def test_a_failed_commit_leaves_no_run_file(ws, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise RuntimeError("the store went away")

    monkeypatch.setattr(server.users, "issue_sign_in_link", refuse)
    with pytest.raises(RuntimeError):
        _launch(ws)
    assert list(serve_runs.run_dir(ws.root).glob("*")) == []


def test_a_serve_killed_with_sigkill_leaves_a_working_link_that_the_next_serve_revokes(ws):
    with serve(ws.root) as first:
        token = first.sign_in_url.split("token=", 1)[1]
        run_file = serve_runs.run_dir(ws.root) / f"{token.split('_', 2)[1]}.json"
        assert json.loads(run_file.read_text())["pid"] == first.process.pid
        os.killpg(first.process.pid, signal.SIGKILL)  # server, UI and worker: no clean-up
        first.process.wait(timeout=20)
    assert ws.sign_in(token).role == "admin"  # nothing revoked it
    assert run_file.exists()
    with serve(ws.root) as second:
        said = "".join(second.output)
        assert "Revoked 1 sign-in link(s) of 1 server(s) on this host" in said
        assert _revoked(ws, token)
        assert not run_file.exists()
        assert len(list(serve_runs.run_dir(ws.root).glob("*.json"))) == 1  # its own
        with urllib.request.urlopen(second.url + "_stcore/health", timeout=10) as reply:
            assert reply.status == 200
    assert list(serve_runs.run_dir(ws.root).iterdir()) == []
    with Session(ws.engine) as session:
        assert session.exec(select(func.count()).select_from(SignInLink)).one() == 0


def test_a_workspace_folder_that_cannot_take_the_run_file_stops_serve_with_a_clear_error(ws):
    serve_runs.run_dir(ws.root).write_text("a file where the folder should be")
    with pytest.raises(LabelloopError, match="cannot write the server's run file"):
        _launch(ws)
    with Session(ws.engine) as session:  # the link was not committed
        assert session.exec(select(func.count()).select_from(SignInLink)).one() == 0
