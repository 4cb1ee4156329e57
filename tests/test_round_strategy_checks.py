"""A round's strategy is checked before any work: unknown names, and strategies made for label
sets in a single-label workspace, are refused with the option or key that named them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from labeling import Workspace
from labeling.config import write_config
from labeling.errors import BadInput


def _single_label(tmp_path, strategy: str = "") -> Workspace:
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"])
    if strategy:
        write_config(ws.root, replace(ws.config, strategy=strategy))
        ws.close()
        ws = Workspace.open(tmp_path / "ws")
    return ws


def test_a_set_strategy_on_the_command_line_is_refused_in_a_single_label_workspace(tmp_path):
    ws = _single_label(tmp_path)
    with pytest.raises(BadInput) as caught:
        ws.retrain(strategy="max_label_uncertainty")
    message = str(caught.value)
    assert message.startswith("option '--strategy': 'max_label_uncertainty' ranks label sets")
    assert "single-label" in message and "least_confidence" in message
    assert ws.rounds() == []  # refused before a round was queued
    ws.close()


def test_a_set_strategy_in_the_toml_fails_the_round_naming_the_key(tmp_path):
    ws = _single_label(tmp_path, strategy="cardinality_inconsistency")
    round_ = ws.retrain()
    assert round_.status == "failed"
    assert "labelloop.toml: key 'strategy': 'cardinality_inconsistency' ranks label sets" in (
        round_.error or ""
    )
    ws.close()


def test_an_unknown_strategy_in_the_toml_names_the_key_and_the_known_ones(tmp_path):
    ws = _single_label(tmp_path, strategy="nope")
    round_ = ws.retrain()
    assert round_.status == "failed"
    assert "labelloop.toml: key 'strategy': unknown strategy 'nope'" in (round_.error or "")
    assert "random" in (round_.error or "")
    ws.close()


def test_a_set_strategy_is_accepted_in_a_multi_label_workspace(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"], task="multi-label")
    source = tmp_path / "items.csv"
    source.write_text("id,text\n" + "".join(f"{i},text number {i}\n" for i in range(6)))
    ws.import_file(source)
    round_ = ws.retrain(strategy="max_label_uncertainty")
    assert round_.status == "succeeded", round_.error  # a cold start: no labels yet
    ws.close()
