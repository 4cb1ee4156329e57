"""The README's quick start is true: its commands and its Python run as written."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys

from labeling import Workspace
from tests.conftest import REPO


def _blocks(language: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    quick = text[text.index("## Quick start") :]
    return re.findall(rf"```{language}\n(.*?)```", quick, flags=re.S)


def test_quick_start_runs_as_written(tmp_path):
    shutil.copytree(REPO / "datasets" / "demo", tmp_path / "datasets" / "demo")
    commands = [
        line
        for line in _blocks("bash")[0].splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[0].startswith("labelloop init")
    for command in commands:
        done = subprocess.run(
            shlex.split(command), cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{command}: {done.stderr}"
    assert (tmp_path / "labels.csv").is_file()

    code = _blocks("python")[0]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    with Workspace.open(tmp_path / "support") as ws:
        status = ws.status()
    # alice's item is a pool item, or (gold_rate 5%) a hidden gold check. The pool file's 24
    # repeated texts (datasets/demo/README.md) are skipped by the import.
    assert status["items"] | {"labelled": 0} == {
        "total": 2576,
        "pool": 2376,
        "gold": 200,
        "labelled": 0,
        "removed": 0,
    }
    assert status["items"]["labelled"] in (0, 1) and status["annotations"] == 1
    assert status["annotations_by_label"]["technical"] == 1
    assert status["annotation_log_rows"] == 2


def test_setup_commands_match_ci():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    setup = text[text.index("## Set up") : text.index("## Quick start")]
    blocks = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)
    assert [b.strip() for b in blocks] == ["bash .ci/setup && labelloop demo", "python -m pytest"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash .ci/setup" in ci and "\npython -m pytest\n" in ci
