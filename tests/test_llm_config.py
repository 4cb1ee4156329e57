"""``[llm]`` in labelloop.toml: read, checked key by key (naming ``[llm]`` and the key), and
written back after the top-level keys; the key itself never belongs there."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import pytest

from labeling import Workspace
from labeling.config import config_from_mapping, load_config, render_config, write_config
from labeling.config_tables import LLMSettings
from labeling.errors import ConfigError

BASE = {"name": "w", "labels": ["spam", "ham"]}


def test_a_table_is_read_with_defaults_and_written_back(tmp_path):
    config = config_from_mapping(
        BASE
        | {
            "llm": {
                "base_url": "http://127.0.0.1:8080/v1",
                "model": "qwen",
                "api_key_env": "LLM_KEY",
            }
        }
    )
    assert config.llm == LLMSettings("http://127.0.0.1:8080/v1", "qwen", "LLM_KEY")
    text = render_config(replace(config, llm=replace(config.llm, concurrency=8)))
    back = tomllib.loads(text)
    assert back["llm"]["concurrency"] == 8 and back["llm"]["api_key_env"] == "LLM_KEY"
    assert text.index("[llm]") > text.index("suggestion_holdout")  # after every top-level key
    assert config_from_mapping(back).llm == replace(config.llm, concurrency=8)
    assert config_from_mapping(BASE).llm is None
    assert config.llm.few_shot == 0  # no examples unless asked for


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"model": "m"}, "[llm]: key 'base_url': expected a non-empty string"),
        ({"base_url": "ftp://x", "model": "m"}, "key 'base_url': expected an http"),
        ({"base_url": "http://x", "model": "m", "api_key_env": "sk-abc123"}, "not the key itself"),
        (
            {"base_url": "http://x", "model": "m", "concurrency": 0},
            "key 'concurrency': expected an integer from 1 to 64",
        ),
        ({"base_url": "http://x", "model": "m", "timeout_s": 0}, "key 'timeout_s'"),
        (
            {"base_url": "http://x", "model": "m", "few_shot": 51},
            "key 'few_shot': expected an integer from 0 to 50",
        ),
        ({"base_url": "http://x", "model": "m", "temperature": 1}, "unknown key 'temperature'"),
        ("http://x", "[llm]: expected a table"),
    ],
)
def test_mistakes_name_the_key(table, message):
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(BASE | {"llm": table}, source="labelloop.toml")
    assert message in str(caught.value)
    assert "sk-abc123" not in str(caught.value)


def test_a_workspace_keeps_the_table_through_a_settings_change(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"])
    llm = LLMSettings("http://127.0.0.1:8080/v1", "qwen")
    write_config(ws.root, replace(ws.config, llm=llm))
    ws.close()
    ws = Workspace.open(tmp_path / "ws")
    ws.update_settings(overlap=2, lease_seconds=ws.config.lease_seconds)
    assert load_config(ws.root).llm == llm
    ws.close()
