"""``labelloop bulk-label``, ``bulk-undo`` and ``bulk-list``: the JSON contract, the audit on
stdin, the unaudited record, and errors that write nothing (both backends)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from tests.bad_inputs.store import assert_unchanged, fingerprint
from tests.test_bulk import N_ITEMS, answer_next, import_pool, item_labels

runner = CliRunner()


@pytest.fixture
def ws(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "bulk", labels=["a", "b", "c"], db_url=db_url)
    import_pool(ws, tmp_path)
    ws.add_user("eng", role="engineer")
    ws.add_user("ann")
    # No gold checks in between: the tests answer the queue's pool items.
    ws.update_settings(overlap=1, lease_seconds=ws.config.lease_seconds, gold_rate=0.0)
    yield ws
    ws.close()


def _cli(ws: Workspace, *args: str, stdin: str | None = None):
    where = ["-w", str(ws.root), *(["--db", ws.db_url] if "postgresql" in ws.db_url else [])]
    return runner.invoke(app, [*args, *where], input=stdin)


def test_bulk_label_json_then_undo(ws):
    labelled = answer_next(ws, "ann", "b")
    dry = _cli(ws, "bulk-label", "refund", "--label", "a", "--as", "eng", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    counted = json.loads(dry.stdout)
    assert "batch" not in counted and counted["count"] >= 1
    done = _cli(ws, "bulk-label", "refund", "--label", "a", "--as", "eng", "--json")
    assert done.exit_code == 0, done.output
    applied = json.loads(done.stdout)
    assert applied["count"] == counted["count"] and applied["batch"].startswith("bulk-")
    refunds = [f"i{k}" for k in range(0, N_ITEMS, 3) if f"i{k}" != labelled]  # every third
    assert applied["count"] == len(refunds)
    assert all(item_labels(ws)[external] == ("a", 1) for external in refunds)
    listed = json.loads(_cli(ws, "bulk-list", "--json").stdout)["batches"]
    assert [(b["batch"], b["audit"], b["override"]) for b in listed] == [
        (applied["batch"], "unaudited (command line)", True)
    ]
    undone = _cli(ws, "bulk-undo", applied["batch"], "--as", "eng")
    assert undone.exit_code == 0, undone.output
    assert f"removed {applied['count']}" in undone.stdout
    left = [label for external, (label, _n) in item_labels(ws).items() if external != labelled]
    assert all(label is None for label in left)


def test_without_an_audit_the_output_says_it_was_unaudited(ws):
    done = _cli(ws, "bulk-label", "", "--unlabelled", "--split", "pool", "--label", "c",
                "--as", "eng")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"labelled {N_ITEMS} items as 'c'" in done.stdout
    assert "unaudited (command line)" in done.stdout
    assert "bulk-undo bulk-" in done.stdout


def test_an_audit_on_stdin_applies_a_good_set_and_refuses_a_bad_one(ws):
    before = fingerprint(ws)
    bad = _cli(ws, "bulk-label", "refund", "--label", "a", "--as", "eng", "--audit", "5",
               stdin="y\nn\nn\nmaybe\nn\ny\n")  # fmt: skip
    assert bad.exit_code == 2
    assert "2 of 5 correct" in bad.stderr and "override" in bad.stderr
    assert_unchanged(before, ws)
    good = _cli(ws, "bulk-label", "refund", "--label", "a", "--as", "eng", "--audit", "5",
                "--min-precision", "0.5", "--json", stdin="y\n" * 5)  # fmt: skip
    assert good.exit_code == 0, good.output
    result = json.loads(good.stdout)
    assert result["audit"]["correct"] == 5 and len(result["audit"]["sample"]) == 5
    listed = _cli(ws, "bulk-list")
    # 5 of the set's 10 items: narrower than Wilson's 0.57-1.00 for 5 draws from an endless set.
    assert "5 of 5 correct (precision 0.70-1.00)" in listed.stdout


@pytest.mark.parametrize(
    ("args", "fact"),
    [
        (["--label", "zzz", "--as", "eng"], "'zzz'"),
        (["--label", "a", "--as", "nobody"], "option '--as': no annotator named 'nobody'"),
        (["--label", "a", "--as", "eng", "--label-is", "q"], "--label-is"),
        (["--label", "a", "--as", "eng", "--split", "elsewhere"], "--split"),
        (["--label", "a", "--as", "eng", "--label-is", "a", "--unlabelled"], "'--label-is'"),
        # Refused before the person answers any audit item.
        (["--label", "a", "--as", "eng", "--min-precision", "3", "--audit", "2"], "precision"),
        (["--label", "a", "--as", "eng", "--audit", "2", "--dry-run"], "--dry-run"),
        (["--label", "a", "--as", "ann", "--audit", "2"], "needs the engineer role"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(ws, args, fact):
    before = fingerprint(ws)
    result = _cli(ws, "bulk-label", "refund", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and fact in result.stderr
    assert_unchanged(before, ws)


def test_undo_of_an_unknown_batch_exits_2(ws):
    result = _cli(ws, "bulk-undo", "bulk-nope")
    assert result.exit_code == 2 and "no bulk batch 'bulk-nope'" in result.stderr
