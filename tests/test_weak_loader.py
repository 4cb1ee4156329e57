"""Loading a workspace's lfs/ folder: one broken file never stops the others."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from weak_supervision import apply_lfs, load_lf_dir

LABELS = ("ham", "spam")

GOOD = """
from weak_supervision import ABSTAIN, labeling_function

LINK = "http"

@labeling_function()
def has_link(row):
    return "spam" if LINK in row.text else ABSTAIN

@labeling_function(label="ham")
def short(row):
    return len(row.text) < 10
"""

SYNTAX_ERROR = """
from weak_supervision import ABSTAIN, labeling_function

@labeling_function()
def broken(row)
    return ABSTAIN
"""

IMPORT_ERROR = """
from weak_supervision import labeling_function
import a_module_that_does_not_exist_anywhere
"""

RAISES = """
from weak_supervision import ABSTAIN, labeling_function

@labeling_function()
def divides(row):
    return "spam" if 1 / len(row.text) > 0.5 else ABSTAIN
"""

UNKNOWN_LABEL = """
from weak_supervision import ABSTAIN, labeling_function

@labeling_function()
def fine(row):
    return "ham" if "thanks" in row.text else ABSTAIN


@labeling_function()
def typo(row):
    return "spma" if "$$$" in row.text else ABSTAIN
"""


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    return path


@pytest.fixture
def lfs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "lfs"
    folder.mkdir()
    write(folder, "a_good.py", GOOD)
    write(folder, "b_syntax.py", SYNTAX_ERROR)
    write(folder, "c_import.py", IMPORT_ERROR)
    write(folder, "d_raises.py", RAISES)
    write(folder, "e_labels.py", UNKNOWN_LABEL)
    write(folder, "_helpers.py", "raise RuntimeError('files starting with _ are not loaded')")
    return folder


def test_each_broken_file_is_reported_with_file_and_line_and_the_rest_load(lfs_dir):
    result = load_lf_dir(lfs_dir, LABELS)
    assert [lf.name for lf in result.lfs] == ["has_link", "short", "divides", "fine"]
    assert result.files["divides"] == "d_raises.py"
    errors = {e.file: e for e in result.errors}
    assert set(errors) == {"b_syntax.py", "c_import.py", "e_labels.py"}
    assert errors["b_syntax.py"].line == 4
    assert "syntax error" in errors["b_syntax.py"].message
    assert errors["c_import.py"].line == 2
    assert "ModuleNotFoundError" in errors["c_import.py"].message
    assert (
        errors["e_labels.py"].line == 8
    )  # the decorator line and errors["e_labels.py"].lf == "typo"
    assert "'typo'" in errors["e_labels.py"].message and "'spma'" in errors["e_labels.py"].message
    assert str(errors["b_syntax.py"]).startswith("b_syntax.py:4: ")


def test_an_lf_that_raises_abstains_and_its_faults_are_counted(lfs_dir):
    result = load_lf_dir(lfs_dir, LABELS)
    frame = pd.DataFrame({"text": ["x", "", "http://spam", "", "thanks a lot"]})
    applied = apply_lfs(result.lfs, frame)
    column = applied.names.index("divides")
    assert applied.L[:, column].tolist() == [1, -1, -1, -1, -1]
    assert applied.faults == {"has_link": 0, "short": 0, "divides": 2, "fine": 0}
    assert applied.first_fault["divides"].startswith("row 1: ZeroDivisionError")
    assert applied.L[:, applied.names.index("has_link")].tolist() == [-1, -1, 1, -1, -1]


def test_lf_files_named_like_packages_do_not_shadow_them(tmp_path):
    folder = tmp_path / "lfs"
    folder.mkdir()
    write(folder, "json.py", GOOD)
    result = load_lf_dir(folder, LABELS)
    assert not result.errors and len(result.lfs) == 2
    import json

    assert json.dumps([1]) == "[1]"
    assert not [name for name in sys.modules if name.startswith("_labelloop_lfs_")]


def test_version_follows_the_file_so_helper_changes_count(tmp_path):
    folder = tmp_path / "lfs"
    folder.mkdir()
    path = write(folder, "rules.py", GOOD)
    before = {lf.name: lf.version for lf in load_lf_dir(folder, LABELS).lfs}
    assert before == {lf.name: lf.version for lf in load_lf_dir(folder, LABELS).lfs}
    path.write_text(path.read_text().replace('LINK = "http"', 'LINK = "www"'))
    after = {lf.name: lf.version for lf in load_lf_dir(folder, LABELS).lfs}
    assert after["has_link"] != before["has_link"]


def test_duplicate_names_across_files_keep_the_first(tmp_path):
    folder = tmp_path / "lfs"
    folder.mkdir()
    write(folder, "one.py", GOOD)
    write(folder, "two.py", GOOD)
    result = load_lf_dir(folder, LABELS)
    assert [lf.name for lf in result.lfs] == ["has_link", "short"]
    assert {e.file for e in result.errors} == {"two.py"}
    assert all("duplicate LF name" in e.message for e in result.errors)


def test_a_missing_folder_has_no_lfs(tmp_path):
    result = load_lf_dir(tmp_path / "nowhere", LABELS)
    assert result.lfs == [] and result.errors == []


def test_a_link_to_a_file_outside_the_folder_is_refused_and_not_run(tmp_path):
    folder = tmp_path / "lfs"
    folder.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    marker = tmp_path / "ran"
    write(outside, "evil.py", GOOD + f"\nopen({str(marker)!r}, 'w').close()\n")
    (folder / "evil.py").symlink_to(outside / "evil.py")
    write(folder, "rules.py", GOOD.replace("has_link", "has_link2").replace("short", "short2"))
    result = load_lf_dir(folder, LABELS)
    assert [lf.name for lf in result.lfs] == ["has_link2", "short2"]
    assert [e.file for e in result.errors] == ["evil.py"]
    assert "outside the LF folder" in result.errors[0].message
    assert not marker.exists()


def test_a_linked_lf_folder_and_links_within_it_load(tmp_path):
    real = tmp_path / "repo" / "lfs"
    real.mkdir(parents=True)
    write(real, "rules.py", GOOD)
    (real / "alias.py").symlink_to(real / "rules.py")
    linked = tmp_path / "lfs"
    linked.symlink_to(real)
    result = load_lf_dir(linked, LABELS)
    assert [lf.name for lf in result.lfs] == ["has_link", "short"]
    # The alias is the same file again: it loads first (sorted by name), so the file it points
    # to repeats its names.
    assert {e.file for e in result.errors} == {"rules.py"}
    assert all("duplicate LF name" in e.message for e in result.errors)
