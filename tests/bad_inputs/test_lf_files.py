"""Bad labelling functions: files that do not compile or import, LFs that raise, hang, or return
something that is not a vote. Each is reported naming the file and line, or the LF and the
item; a hang stops the apply with nothing stored.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.config import write_config
from labeling.errors import BadInput
from labeling.weak.apply import BrokenLFs
from tests.bad_inputs.store import assert_message, assert_unchanged, fingerprint

runner = CliRunner()
HEAD = "import re, time\nfrom weak_supervision import ABSTAIN, labeling_function\n\n"
TEXTS = ["hello there", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "third text", "fourth one"]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """Four items (ids t0..t3), LF calls limited to 1 s, no LF yet."""
    workspace = Workspace.create(tmp_path / "ws", labels=["spam", "ham"])
    path = tmp_path / "items.csv"
    path.write_text(
        "id,text\n" + "".join(f"t{i},{text}\n" for i, text in enumerate(TEXTS)), encoding="utf-8"
    )
    workspace.import_file(path, id_field="id")
    workspace.config = replace(workspace.config, lf_timeout=1.0)
    write_config(workspace.root, workspace.config)
    yield workspace
    workspace.close()


def lf_file(ws: Workspace, name: str, body: str) -> Path:
    path = ws.lfs_dir / name
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(needle) + 1


# --------------------------------------------------------------------------- files that do not load

BROKEN_FILES = {
    "syntax-error": ("@labeling_function()\ndef oops(row)\n    return ABSTAIN\n", "def oops(row)"),
    "indentation-error": (
        "@labeling_function()\ndef oops(row):\nreturn ABSTAIN\n",
        "return ABSTAIN",
    ),
    "raises-at-import": ("LIMIT = 1 / 0\n", "LIMIT = 1 / 0"),
    "missing-module": ("import a_module_nobody_has\n", "import a_module_nobody_has"),
    "unknown-label-literal": (
        "@labeling_function()\ndef typo(row):\n    return 'spma' if row.text else ABSTAIN\n",
        "@labeling_function()",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_lf_file_that_does_not_load(ws: Workspace, case: str) -> None:
    body, bad_line = BROKEN_FILES[case]
    path = lf_file(ws, "broken.py", body)
    line = line_of(path, bad_line)
    before = fingerprint(ws)
    # Refused by default (`lf apply` exits 2), naming the file and line; nothing written.
    with pytest.raises(BrokenLFs) as refused:
        ws.apply_lfs()
    assert f"broken.py:{line}" in str(refused.value)
    done = runner.invoke(app, ["lf", "apply", "-w", str(ws.root)])
    assert done.exit_code == 2 and f"broken.py:{line}" in done.output, done.output
    assert_unchanged(before, ws)
    report = ws.apply_lfs(skip_broken=True)
    assert report.lfs == []
    assert len(report.errors) == 1
    expected = {
        "syntax-error": "syntax error",
        "indentation-error": "syntax error",
        "raises-at-import": "ZeroDivisionError",
        "missing-module": "ModuleNotFoundError",
        "unknown-label-literal": "uses label 'spma', expected one of ['spam', 'ham']",
    }[case]
    assert_message(report.errors[0], f"broken.py:{line}", expected)
    assert_unchanged(before, ws)
    listed = runner.invoke(app, ["lf", "list", "-w", str(ws.root)])
    assert f"broken.py:{line}" in listed.output


# --------------------------------------------------------------------------- LFs that raise or
# return something that is not a vote: faults on those items, by design (they abstain there and
# the others still run); the message names the LF, the item and what was wrong.

FAULTY = {
    "raises": ("raise RuntimeError('boom on ' + row.text[:5])", "RuntimeError: boom on hello"),
    "returns-float": ("return 0.5", "returned float 0.5; expected a label name from"),
    "returns-int": ("return 3", "returned the integer 3; return a label name from"),
    "returns-list": ("return ['spam']", "returned list ['spam']; expected a label name from"),
    "returns-unknown-name": (
        "return row.text.split()[0]",
        "returned 'hello', expected one of ['spam', 'ham'] or ABSTAIN",
    ),
    "returns-bool-without-label": ("return True", "returned a bool; give the LF a label="),
}


@pytest.mark.parametrize("case", list(FAULTY))
def test_lf_that_faults_names_the_lf_and_the_item(ws: Workspace, case: str) -> None:
    statement, fact = FAULTY[case]
    lf_file(ws, "faulty.py", f"@labeling_function()\ndef faulty(row):\n    {statement}\n")
    before = fingerprint(ws)
    report = ws.apply_lfs()
    (row,) = report.lfs
    assert row["lf"] == "faulty" and row["faults"] == len(TEXTS) and row["new_votes"] == 0
    assert_message(row["first_fault"], "item 't0'", fact)
    # Items, annotations and votes are untouched; only the LF's record (with its fault count)
    # is new, which is how faults are reported, and the votes state that tells weak labels
    # fitted before this apply that they are stale.
    assert_unchanged(before, ws, ignore={"labelingfunction", "schemainfo"})
    done = runner.invoke(app, ["lf", "apply", "-w", str(ws.root)])
    assert done.exit_code == 0, done.output


def test_none_is_allowed_and_abstains(ws: Workspace) -> None:
    lf_file(ws, "quiet.py", "@labeling_function()\ndef quiet(row):\n    return None\n")
    (row,) = ws.apply_lfs().lfs
    assert row["faults"] == 0 and row["new_votes"] == 0


# --------------------------------------------------------------------------- LFs that hang

HANGS = {
    "busy-loop": "while True:\n            pass",
    "sleep": "time.sleep(3600)",
    "catastrophic-re": "re.match(r'(a+)+$', row.text)",
}


@pytest.mark.parametrize("case", list(HANGS))
def test_hanging_lf_is_stopped_naming_lf_and_item(ws: Workspace, case: str) -> None:
    lf_file(ws, "a_fine.py", "@labeling_function()\ndef fine(row):\n    return 'ham'\n")
    path = lf_file(
        ws,
        "slow.py",
        "@labeling_function()\ndef stuck(row):\n"
        "    if row.text.startswith('aaa'):\n"
        f"        {HANGS[case]}\n"
        "    return ABSTAIN\n",
    )
    assert path.exists()
    before = fingerprint(ws)
    with pytest.raises(BadInput) as caught:
        ws.apply_lfs()
    assert_message(
        str(caught.value),
        "LF 'stuck' (slow.py)",
        "did not return within 1 s",
        "on item 't1'",
        "lf_timeout",
        "nothing was stored",
    )
    # Not even the fine LF's votes or the LF records: the apply is one transaction.
    assert_unchanged(before, ws)


def test_hang_is_stopped_from_a_thread_and_through_the_cli(ws: Workspace) -> None:
    """The UI applies LFs in a Streamlit script thread, the CLI in the main thread."""
    lf_file(ws, "slow.py", "@labeling_function()\ndef stuck(row):\n    time.sleep(3600)\n")
    before = fingerprint(ws)
    caught: list[BaseException] = []

    def run() -> None:
        try:
            ws.apply_lfs()
        except BadInput as exc:
            caught.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(60)
    assert not worker.is_alive() and len(caught) == 1
    assert_message(str(caught[0]), "LF 'stuck'", "on item 't0'")
    done = runner.invoke(app, ["lf", "apply", "-w", str(ws.root)])
    assert done.exit_code == 2, done.output
    assert_message(done.stderr, "error: LF 'stuck'", "item 't0'", "lf_timeout")
    assert_unchanged(before, ws)


def test_lf_that_ends_its_process(ws: Workspace) -> None:
    lf_file(ws, "exits.py", "import os\n\n@labeling_function()\ndef bye(row):\n    os._exit(3)\n")
    before = fingerprint(ws)
    with pytest.raises(BadInput) as caught:
        ws.apply_lfs()
    assert_message(str(caught.value), "exit code 3", "LF 'bye'", "no votes were kept")
    assert_unchanged(before, ws)


def test_slow_but_finishing_lf_runs_under_the_limit(ws: Workspace) -> None:
    lf_file(
        ws,
        "slowish.py",
        "@labeling_function()\ndef slowish(row):\n    time.sleep(0.05)\n    return 'spam'\n",
    )
    (row,) = ws.apply_lfs().lfs
    assert row["new_votes"] == len(TEXTS) and row["faults"] == 0


def test_the_limit_is_per_call_not_per_apply(ws: Workspace) -> None:
    """Four calls of 0.4 s (1.6 s in all) under a 1 s limit: each call is within it.

    Also: the apply leaves the caller's garbage collector as it found it (it is frozen and
    paused only while the child process is forked).
    """
    lf_file(
        ws,
        "steady.py",
        "@labeling_function()\ndef steady(row):\n    time.sleep(0.4)\n    return 'ham'\n",
    )
    gc.collect()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    (row,) = ws.apply_lfs().lfs
    assert row["new_votes"] == len(TEXTS) and row["faults"] == 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
