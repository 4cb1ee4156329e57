"""A broken ``labelloop.toml`` or ``--labels`` option: a message naming the file, key and line,
and a store nobody wrote to."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.errors import ConfigError
from tests.bad_inputs.store import assert_message, assert_unchanged, fingerprint

runner = CliRunner()
LABELS_LINE = 'labels = ["spam", "ham"]'


@pytest.fixture
def root(tmp_path: Path) -> Path:
    with Workspace.create(tmp_path / "w", labels=["spam", "ham"]) as ws:
        ws.import_file(_pool(tmp_path), id_field="id")
    return tmp_path / "w"


def _pool(tmp_path: Path) -> Path:
    path = tmp_path / "pool.csv"
    path.write_text("id,text\np1,first\np2,second\n", encoding="utf-8")
    return path


def _refused(root: Path, old: str, new: str, *facts: str) -> str:
    """Edit the toml, open the workspace (API and CLI): refused, naming ``facts``; no writes."""
    toml = root / "labelloop.toml"
    text = toml.read_text(encoding="utf-8")
    assert old in text
    toml.write_text(text.replace(old, new, 1), encoding="utf-8")
    return _check_refusal(root, *facts)


def _check_refusal(root: Path, *facts: str) -> str:
    store = create_engine(f"sqlite:///{root / 'labelloop.db'}")
    before = fingerprint(store)
    with pytest.raises(ConfigError) as caught:
        Workspace.open(root)
    message = str(caught.value)
    assert_message(message, "labelloop.toml", *facts)
    done = runner.invoke(app, ["status", "-w", str(root)])
    assert done.exit_code == 2, done.output
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert_unchanged(before, store)
    store.dispose()
    return message


@pytest.mark.parametrize(
    ("labels", "facts"),
    [
        ("[]", ("key 'labels'", "expected at least 2 labels, found 0")),
        ('["spam"]', ("key 'labels'", "expected at least 2 labels, found 1", "'spam'")),
        ('["spam", "ham", "spam"]', ("key 'labels'", "label 'spam' appears more than once")),
        ('["spam", ""]', ("key 'labels'", "label 2 is empty")),
        ('["spam", " ham"]', ("label 2", "leading or trailing whitespace")),
        ('["spam", "h\\u0007m"]', ("label 2", "control character")),
        ('["spam", 1]', ("label 2 must be a string", "found int 1")),
        ('"spam,ham"', ("expected a list of label names", "found str")),
    ],
    ids=[
        "empty-label-set",
        "one-label",
        "duplicate-label",
        "empty-label-name",
        "label-with-spaces",
        "label-with-control-char",
        "label-not-a-string",
        "labels-not-a-list",
    ],
)
def test_bad_label_set(root: Path, labels: str, facts: tuple[str, ...]) -> None:
    _refused(root, LABELS_LINE, f"labels = {labels}", *facts)


@pytest.mark.parametrize(
    ("old", "new", "after"),
    [
        (LABELS_LINE, 'labels = ["spam", "ham"', 1),
        ("overlap = 1", "overlap == 1", 0),
        ('name = "w"', "name = w", 0),
        ("overlap = 1", "overlap = 1\noverlap = 2", 1),
    ],
    ids=["unclosed-array", "double-equals", "bare-string", "key-twice"],
)
def test_invalid_toml_names_file_and_line(root: Path, old: str, new: str, after: int) -> None:
    """``after``: how many lines past the edited one TOML notices the fault."""
    text = (root / "labelloop.toml").read_text(encoding="utf-8")
    line = text[: text.index(old)].count("\n") + 1 + after
    _refused(root, old, new, "invalid TOML", f"at line {line}, column")


def test_toml_not_utf8_names_the_line(root: Path) -> None:
    toml = root / "labelloop.toml"
    text = toml.read_bytes().replace(b'name = "w"', b'name = "w\xe9"')
    toml.write_bytes(text)
    line = text[: text.index(b"\xe9")].count(b"\n") + 1
    _check_refusal(root, "not valid UTF-8", f"line {line}")


@pytest.mark.parametrize(
    ("new", "facts"),
    [
        ("lf_timeout = -1", ("key 'lf_timeout'", "expected a number from 0.0 to 86400.0")),
        ('lf_timeout = "fast"', ("key 'lf_timeout'", "expected a number", "found str")),
    ],
    ids=["lf-timeout-negative", "lf-timeout-not-a-number"],
)
def test_bad_lf_timeout(root: Path, new: str, facts: tuple[str, ...]) -> None:
    _refused(root, "lf_timeout = 30.0", new, *facts)


@pytest.mark.parametrize(
    ("labels", "fact"),
    [("", "expected at least 2 labels"), ("spam,ham,spam", "'spam' appears more than once")],
    ids=["init-empty-labels", "init-duplicate-labels"],
)
def test_init_with_bad_labels_leaves_nothing(tmp_path: Path, labels: str, fact: str) -> None:
    target = tmp_path / "new"
    done = runner.invoke(app, ["init", str(target), "--labels", labels])
    assert done.exit_code == 2, done.output
    assert_message(done.stderr, "error: ", "'--labels'", fact)
    assert not target.exists()
