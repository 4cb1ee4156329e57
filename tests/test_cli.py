"""The command line through Typer's runner and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.errors import UnknownAnnotator
from labeling.ui import server
from tests.conftest import YOUTUBE

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def ws_dir(tmp_path):
    result = run("init", str(tmp_path / "w"), "--labels", "0,1")
    assert result.exit_code == 0, result.output
    return tmp_path / "w"


def test_help_explains_every_command():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("init", "import", "export", "status", "user", "demo", "serve", "retrain"):
        assert command in result.output
    for command in (["init"], ["import"], ["export"], ["status"], ["user", "add"], ["demo"]):
        sub = run(*command, "--help")
        assert sub.exit_code == 0, sub.output
        assert "--workspace" in sub.output or command in (["init"], ["demo"])
        assert "--db" in sub.output


def test_init_import_status_export(ws_dir, tmp_path):
    result = run(
        "import",
        str(YOUTUBE / "Youtube04-Eminem.csv"),
        "-w",
        str(ws_dir),
        "--text-field",
        "CONTENT",
        "--id-field",
        "COMMENT_ID",
        "--label-field",
        "CLASS",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # 2 repeated ids, and 34 comments whose text an earlier row already has under another id.
    assert (report["rows_read"], report["imported"], report["duplicates"]) == (448, 412, 2)
    assert (report["duplicate_texts"], report["duplicate_texts_in_file"]) == (34, 34)
    assert "warning: skipped 34 rows whose text is already there" in result.stderr

    status = json.loads(run("status", "-w", str(ws_dir), "--json").stdout)
    assert status["items"] == {"total": 412, "pool": 412, "gold": 0, "labelled": 412, "removed": 0}
    assert isinstance(status["annotations"], int)
    assert {"coverage", "quality", "annotators", "rounds"} <= set(status)

    out = tmp_path / "labels.jsonl"
    result = run("export", str(out), "-w", str(ws_dir), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 412
    first = json.loads(out.read_text().splitlines()[0])
    assert first["label"] in {"0", "1"} and first["n_annotations"] == 1


def test_bad_input_is_one_line_exit_2(ws_dir, tmp_path):
    result = run("import", str(tmp_path / "missing.csv"), "-w", str(ws_dir))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "missing.csv: no such file" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_not_a_workspace(tmp_path):
    result = run("status", "-w", str(tmp_path))
    assert result.exit_code == 2
    assert "not a labelloop workspace" in result.stderr


def test_init_with_bad_labels(tmp_path):
    result = run("init", str(tmp_path / "x"), "--labels", "a,a")
    assert result.exit_code == 2
    assert "option '--labels': label 'a' appears more than once" in result.stderr
    assert not (tmp_path / "x").exists()


def test_user_add_prints_token_once(ws_dir):
    result = run("user", "add", "alice", "--role", "admin", "-w", str(ws_dir), "--json")
    assert result.exit_code == 0, result.output
    token = json.loads(result.stdout)["token"]
    assert token.startswith("ll_")
    listing = run("user", "list", "-w", str(ws_dir))
    assert "alice\tadmin" in listing.stdout and token not in listing.stdout
    bad = run("user", "add", "bob", "--role", "king", "-w", str(ws_dir))
    assert bad.exit_code == 2 and "--role" in bad.stderr


def test_json_output_is_only_json(ws_dir):
    result = run("status", "-w", str(ws_dir), "--json")
    json.loads(result.stdout)


def test_subprocess_end_to_end(tmp_path):
    """The installed console script, as a user runs it."""
    exe = [sys.executable, "-m", "labeling.cli"]
    ws = tmp_path / "sub"
    data = tmp_path / "d.csv"
    data.write_text("text,label\nhello there,0\nbuy my stuff,1\n")
    done = subprocess.run(
        [*exe, "init", str(ws), "--labels", "0,1"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [*exe, "import", str(data), "-w", str(ws), "--label-field", "label", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["imported"] == 2
    bad = subprocess.run(
        [*exe, "import", str(data), "-w", str(ws), "--text-field", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "no field 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
    status = subprocess.run(
        ["labelloop", "status", "-w", str(ws), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["items"]["labelled"] == 2


def test_init_in_an_impossible_place_is_a_clean_error(tmp_path):
    blocker = tmp_path / "h.csv"
    blocker.write_text("x")
    result = run("init", str(blocker / "sub"), "--labels", "a,b")
    assert result.exit_code == 2
    assert "cannot create the workspace there" in result.stderr
    assert "Traceback" not in result.output


def test_user_revoke_links_revokes_every_launch_link_of_every_host(ws_dir):
    with Workspace.open(ws_dir) as ws:
        launches = [server.prepare(ws, host="127.0.0.1", port=8501, link_hours=1) for _ in "ab"]
        _, token = ws.add_user("alice")
    elsewhere = json.loads(launches[1].run_file.read_text())
    launches[1].run_file.write_text(json.dumps({**elsewhere, "host": "another-machine"}))
    result = run("user", "revoke-links", "-w", str(ws_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Revoked 2 sign-in link(s)."
    with Workspace.open(ws_dir) as ws:
        for launch in launches:
            with pytest.raises(UnknownAnnotator, match="wrong or has been revoked"):
                ws.sign_in(launch.token)
        assert ws.sign_in(token).name == "alice"  # people's own tokens are not links
    assert run("user", "revoke-links", "-w", str(ws_dir)).stdout.strip() == (
        "Revoked 0 sign-in link(s)."
    )


def test_user_revoke_links_outside_a_workspace_is_one_line_exit_2(tmp_path):
    result = run("user", "revoke-links", "-w", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and "not a labelloop workspace" in result.stderr
