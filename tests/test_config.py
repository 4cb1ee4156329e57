"""labelloop.toml: written by init, validated on every open, errors name the key."""

from __future__ import annotations

import tomllib

import pytest

from labeling import Workspace
from labeling.config import parse_labels_option
from labeling.errors import ConfigError


@pytest.fixture
def root(tmp_path):
    Workspace.create(tmp_path / "w", labels=["spam", "ham"]).close()
    return tmp_path / "w"


def _rewrite(root, old: str, new: str) -> None:
    path = root / "labelloop.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_written_toml_reads_back(root):
    data = tomllib.loads((root / "labelloop.toml").read_text())
    assert data["labels"] == ["spam", "ham"]
    assert data["overlap"] == 1
    with Workspace.open(root) as ws:
        assert ws.labels == ("spam", "ham")


def test_labels_with_quotes_and_unicode_round_trip(tmp_path):
    labels = ['say "hi"', "naïve ✓", "back\\slash"]
    Workspace.create(tmp_path / "u", labels=labels).close()
    with Workspace.open(tmp_path / "u") as ws:
        assert ws.labels == tuple(labels)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("overlap = 1", 'overlap = 1\ncolour = "red"', "unknown key 'colour'"),
        ('labels = ["spam", "ham"]', "labels = []", "key 'labels': expected at least 2 labels"),
        ('labels = ["spam", "ham"]', 'labels = ["spam", "spam"]', "label 'spam' appears more"),
        ('labels = ["spam", "ham"]', 'labels = ["spam", ""]', "label 2 is empty"),
        ('labels = ["spam", "ham"]', 'labels = ["spam", 3]', "label 2 must be a string"),
        ('labels = ["spam", "ham"]', 'labels = "spam,ham"', "expected a list of label names"),
        ("overlap = 1", "overlap = 0", "key 'overlap': expected an integer >= 1, found int 0"),
        ("overlap = 1", 'overlap = "two"', "key 'overlap': expected an integer >= 1"),
        ("lease_seconds = 1800", "lease_seconds = 1", "key 'lease_seconds'"),
        ("overlap = 1", "overlap = true", "key 'overlap'"),
        ('text_field = "text"', "text_field = 5", "key 'text_field': expected a string"),
        ('labels = ["spam", "ham"]', "labels = [", "invalid TOML"),
        ('zero_shot = "off"', 'zero_shot = "yes"', "'zero_shot': expected one of off, auto, on"),
        ("zero_shot_fade = 20.0", "zero_shot_fade = -1", "key 'zero_shot_fade'"),
    ],
)
def test_bad_values_name_the_key(root, old, new, message):
    _rewrite(root, old, new)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Workspace.open(root)


def test_missing_key(root):
    path = root / "labelloop.toml"
    path.write_text(
        "\n".join(line for line in path.read_text().splitlines() if "labels" not in line)
    )
    with pytest.raises(ConfigError, match="key 'labels' is missing"):
        Workspace.open(root)


def test_toml_not_utf8(root):
    (root / "labelloop.toml").write_bytes(b'name = "\xff"\n')
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        Workspace.open(root)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a", "at least 2 labels"),
        ("", "at least 2 labels"),
        ("a,a", "'a' appears more than once"),
        ("a,,b", "label 2 is empty"),
    ],
)
def test_labels_option(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_labels_option(value)


def test_labels_option_strips_spaces():
    assert parse_labels_option(" a , b,c ") == ("a", "b", "c")


def test_upper_bounds(root):
    _rewrite(root, "lease_seconds = 1800", "lease_seconds = 1000000000000")
    with pytest.raises(ConfigError, match="key 'lease_seconds': expected an integer <= 2,592,000"):
        Workspace.open(root)


def test_zero_shot_on_is_refused_for_a_multilabel_workspace(tmp_path):
    Workspace.create(tmp_path / "m", labels=["a", "b"], task="multi-label").close()
    _rewrite(tmp_path / "m", 'zero_shot = "off"', 'zero_shot = "on"')
    with pytest.raises(ConfigError, match="key 'zero_shot': the zero-shot start is single-label"):
        Workspace.open(tmp_path / "m")
