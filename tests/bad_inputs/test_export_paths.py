"""Exports that cannot be written: a clear message, no file (whole or partial) left at the
target or beside it, and the store as it was."""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labeling import Workspace
from labeling.errors import ExportFailed
from tests.bad_inputs.store import assert_message, assert_unchanged, fingerprint


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """600 items of 512 hex digits each: an export of about 300 KB (150 KB compressed)."""
    workspace = Workspace.create(tmp_path / "ws", labels=["spam", "ham"])
    path = tmp_path / "items.csv"
    texts = [hashlib.sha512(str(i).encode()).hexdigest() * 4 for i in range(600)]
    rows = "".join(f"e{i},{text}\n" for i, text in enumerate(texts))
    path.write_text("id,text\n" + rows, encoding="utf-8")
    workspace.import_file(path, id_field="id")
    yield workspace
    workspace.close()


def refused(ws: Workspace, out: Path, *facts: str, **options: object) -> str:
    before = fingerprint(ws)
    folder = out.parent if out.parent.is_dir() else None
    listing = sorted(os.listdir(folder)) if folder is not None else None
    with pytest.raises(ExportFailed) as caught:
        ws.export(out, **options)  # type: ignore[arg-type]
    message = str(caught.value)
    assert_message(message, str(out), *facts)
    if folder is not None:
        assert sorted(os.listdir(folder)) == listing, "the export left a file behind"
    assert_unchanged(before, ws)
    return message


def test_folder_does_not_exist(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "labels.csv"
    refused(ws, out, "the folder", "does not exist")
    assert not out.parent.exists()


def test_target_is_a_folder(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "a_folder.csv"
    out.mkdir()
    refused(ws, out, "is a folder", "expected a file path")
    assert out.is_dir() and not any(out.iterdir())


def test_parent_is_a_file(ws: Workspace, tmp_path: Path) -> None:
    parent = tmp_path / "notes.txt"
    parent.write_text("keep me", encoding="utf-8")
    refused(ws, parent / "labels.csv", "is a file, not a folder")
    assert parent.read_text(encoding="utf-8") == "keep me"


def test_unknown_extension(ws: Workspace, tmp_path: Path) -> None:
    refused(ws, tmp_path / "labels.xlsx", "cannot tell the format", "--format")


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in.

    chmod is enough for an ordinary user; root ignores it, so as root take a system folder
    that refuses new files even to root (sysfs, in a container), or skip.
    """
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    for candidate in (Path("/sys"), Path("/proc")):
        try:
            probe = candidate / ".labelloop-probe"
            probe.touch()
        except OSError:
            return candidate
        probe.unlink()
    pytest.skip("running as root with no read-only folder to write to")


def test_read_only_folder(ws: Workspace, tmp_path: Path) -> None:
    folder = _read_only_folder(tmp_path)
    try:
        refused(ws, folder / "labels.csv", "cannot write there")
    finally:
        if folder.is_relative_to(tmp_path):
            folder.chmod(0o755)


def _limit_file_size() -> None:
    # Files may grow to 64 KB: the export's temporary file fails mid-way with EFBIG (the
    # signal that would kill the process instead is ignored).
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_write_that_fails_half_way_leaves_no_partial_file(
    ws: Workspace, tmp_path: Path, fmt: str
) -> None:
    """A real failure in the middle of writing (file size limit), through the CLI."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / f"labels.{fmt}"
    before = fingerprint(ws)
    done = subprocess.run(
        [sys.executable, "-m", "labeling.cli", "export", str(out), "-w", str(ws.root)],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert_message(done.stderr, "error: ", str(out), "cannot write there", "File too large")
    assert list(out_dir.iterdir()) == [], "a partial export was left behind"
    assert_unchanged(before, ws)
