"""``labelloop bulk-label --action add|remove|set`` in multi-label workspaces: the set written
``a|b`` (``[]`` for none), the audit on stdin asking the action's question, undo, and errors
naming the option (both backends)."""

from __future__ import annotations

import json

import pytest

from labeling import Workspace
from tests.bad_inputs.store import assert_unchanged, fingerprint
from tests.test_bulk_cli import _cli
from tests.test_bulk_sets import sets

LABELS = ("billing", "refund", "bug")


@pytest.fixture
def ws(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label", db_url=db_url)
    pool = tmp_path / "pool.csv"
    pool.write_text(
        "id,text\n"
        + "".join(f"i{k},{'refund please' if k < 4 else 'parcel late'} {k}\n" for k in range(8))
    )
    ws.import_file(pool, id_field="id")
    ws.add_user("eng", role="engineer")
    yield ws
    ws.close()


def test_set_add_and_undo_from_the_command_line(ws):
    done = _cli(ws, "bulk-label", "refund", "--action", "set", "--label", "billing | refund",
                "--as", "eng", "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    first = json.loads(done.stdout)
    assert first["count"] == 4 and first["skipped_unchanged"] == 0
    assert sets(ws)["i0"] == '["billing","refund"]'
    added = _cli(ws, "bulk-label", "", "--action", "add", "--label", "bug", "--as", "eng")
    assert added.exit_code == 0, added.output
    assert "changed 8 items' sets: add bug in batch" in added.stdout
    assert sets(ws)["i0"] == '["billing","refund","bug"]' and sets(ws)["i7"] == '["bug"]'
    listed = json.loads(_cli(ws, "bulk-list", "--json").stdout)["batches"]
    assert [b["label"] for b in listed] == ["add bug", "set billing|refund"]
    undone = _cli(ws, "bulk-undo", listed[0]["batch"], "--as", "eng")
    assert undone.exit_code == 0, undone.output
    assert "removed 8 bulk answers of 'add bug'" in undone.stdout
    assert sets(ws)["i0"] == '["billing","refund"]' and sets(ws)["i7"] is None
    empty = _cli(ws, "bulk-label", "parcel", "--action", "set", "--label", "[]", "--as", "eng")
    assert empty.exit_code == 0, empty.output
    assert sets(ws)["i7"] == "[]"  # the empty set is an answer


def test_the_audit_on_stdin_asks_the_action_s_question(ws):
    _cli(ws, "bulk-label", "refund", "--action", "add", "--label", "bug", "--as", "eng")
    args = ["bulk-label", "", "--action", "remove", "--label", "bug", "--as", "eng"]
    done = _cli(ws, *args, "--audit", "4", stdin="y\ny\ny\ny\n")
    assert done.exit_code == 0, done.output
    assert "is 'bug' wrong for it (does it not apply)? (y/n)" in done.stderr
    assert "[now: bug]" in done.stderr  # only the four items holding bug are sampled
    assert "changed 4 items' sets: remove bug" in done.stdout
    assert "left 4 items whose set it would not change" in done.stdout
    assert "audit: 4 of 4 correct, precision 1.00-1.00" in done.stdout
    assert all(sets(ws)[f"i{k}"] == "[]" for k in range(4))


@pytest.mark.parametrize(
    ("args", "fact"),
    [
        (["--label", "bug"], "option '--action': this workspace is multi-label"),
        (["--action", "set", "--label", "bug|nope"], "'nope' is not one of"),
        (["--action", "add", "--label", "billing|bug"], "--action add takes one label"),
        (["--action", "flip", "--label", "bug"], "expected one of add, remove, set"),
        (["--action", "set", "--label", '["bug", 3]'], "option '--label': expected label names"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(ws, args, fact):
    before = fingerprint(ws)
    result = _cli(ws, "bulk-label", "refund", *args, "--as", "eng")
    assert result.exit_code == 2, result.output
    assert fact in result.stderr
    assert_unchanged(before, ws)


def test_a_single_label_workspace_names_the_option(tmp_path):
    ws = Workspace.create(tmp_path / "single", labels=["a", "b"])
    with ws:
        result = _cli(ws, "bulk-label", "", "--action", "add", "--label", "a", "--as", "x")
    assert result.exit_code == 2
    assert "option '--action': this workspace is single-label" in result.stderr
