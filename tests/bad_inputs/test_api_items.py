"""The bad rows of the import corpus, pushed over HTTP (``POST /items``, issue 25): each is
refused with a 400 whose message names the item by its place in the request and the field,
and the store is as it was. The same checks as a file's rows (labeling.data.validation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from labeling import Workspace
from tests.bad_inputs.store import assert_message, assert_unchanged, fingerprint
from tests.test_api import api_server

GOOD = {"id": "fine", "text": "a fine item"}
CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("no text field", {"items": [GOOD, {"id": "x", "body": "hi"}]},
     ["items: item 1, field 'text'", "missing (the text field)", "'body'"]),
    ("text not a string", {"items": [GOOD, {"id": "x", "text": {"a": 1}}]},
     ["item 1, field 'text'", "expected text, found dict"]),
    ("text a number list", {"items": [{"id": "x", "text": [1, 2]}]},
     ["item 0, field 'text'", "expected text, found list"]),
    ("empty text", {"items": [{"id": "x", "text": "   "}]},
     ["item 0, field 'text'", "the text is empty"]),
    ("NUL in text", {"items": [{"id": "x", "text": "a\x00b"}]},
     ["item 0, field 'text'", "NUL"]),
    ("text too long", {"items": [{"id": "x", "text": "w" * 1_000_001}]},
     ["item 0, field 'text'", "1,000,001 characters"]),
    ("no id", {"items": [GOOD, GOOD | {"id": None}]},
     ["item 1, field 'id'"]),
    ("id missing", {"items": [{"text": "no id here"}]},
     ["item 0, field 'id'", "missing (the id field)"]),
    ("empty id", {"items": [{"id": "", "text": "x"}]},
     ["item 0, field 'id'", "expected a non-empty id"]),
    ("id too long", {"items": [{"id": "i" * 513, "text": "x"}]},
     ["item 0, field 'id'", "513 characters"]),
    ("unknown label", {"items": [{"id": "x", "text": "t", "label": "eggs"}],
                       "label_field": "label"},
     ["field 'label'", "'eggs'", "ham, spam"]),
    ("label missing", {"items": [{"id": "x", "text": "t"}], "label_field": "label"},
     ["item 0, field 'label'", "missing (the label field)"]),
    ("gold without labels", {"items": [{"id": "g", "text": "t", "label": ""}], "split": "gold"},
     ["item 0, field 'label'", "every gold item needs its label"]),
    ("not an object", {"items": [GOOD, "just text"]},
     ["items[1]", "valid dictionary"]),
    ("unknown split", {"items": [GOOD], "split": "train"},
     ["split", "'pool' or 'gold'"]),
    ("items not a list", {"items": {"id": "x", "text": "t"}},
     ["items", "valid list"]),
    ("no items", {"items": []}, ["items: expected at least one item"]),
    ("unknown key", {"items": [GOOD], "labels": "x"}, ["labels: Extra inputs"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Path, httpx.Client]]:
    root = tmp_path_factory.mktemp("api") / "ws"
    ws = Workspace.create(root, labels=["ham", "spam"])
    token = ws.add_user("eng", role="engineer")[1]
    ws.push_items([{"id": "s1", "text": "seed one"}, {"id": "s2", "text": "seed two"}])
    ws.close()
    with api_server(root, None) as url:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            yield root, client


@pytest.mark.parametrize(("case", "body", "facts"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_push_is_refused_naming_the_item_and_changes_nothing(served, case, body, facts):
    root, client = served
    with Workspace.open(root) as ws:
        before = fingerprint(ws)
    reply = client.post("/items", json=body)
    assert reply.status_code == 400, (case, reply.text)
    assert_message(reply.json()["error"], *facts)
    with Workspace.open(root) as ws:
        assert_unchanged(before, ws)
