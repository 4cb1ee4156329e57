"""Repeated texts: an import skips a row whose text is already there under another id (in the
workspace, or earlier in the file) and says how many; ``allow_duplicate_texts`` keeps them.

The check runs a chunk at a time against the store (earlier chunks are in it already), so the
property test below compares what that incremental check writes and counts with a
from-scratch recomputation over every row of every file.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.data import readers
from labeling.data.duplicates import content_hash, content_id

LABELS = ["a", "b"]
COUNTED = (
    "imported",
    "duplicates_in_file",
    "duplicates_in_store",
    "duplicate_texts_in_file",
    "duplicate_texts_in_store",
)


def _write(path: Path, rows: list[dict[str, str]], fields: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _items(ws: Workspace) -> Counter[tuple[str, str, str]]:
    with ws.engine.connect() as conn:
        return Counter(
            (row[0], row[1], row[2])
            for row in conn.execute(sql("SELECT external_id, text, content_hash FROM item"))
        )


def _from_scratch(
    imports: list[tuple[list[tuple[str | None, str]], bool]],
) -> tuple[Counter[tuple[str, str, str]], list[dict[str, int]]]:
    """The items and counts the imports should give, row by row over whole files."""
    ids: set[str] = set()
    texts: set[str] = set()
    items: Counter[tuple[str, str, str]] = Counter()
    reports = []
    for rows, allow in imports:
        counts = dict.fromkeys(COUNTED, 0)
        ids_here: set[str] = set()  # every id a row of this file had: the first one wins
        written: set[str] = set()
        texts_here: set[str] = set()
        for given_id, text in rows:
            external_id = content_id(text) if given_id is None else given_id
            if external_id in ids:
                counts["duplicates_in_store"] += 1
                continue
            if external_id in ids_here:
                counts["duplicates_in_file"] += 1
                continue
            ids_here.add(external_id)
            repeated = True
            if text in texts:
                counts["duplicate_texts_in_store"] += 1
            elif text in texts_here:
                counts["duplicate_texts_in_file"] += 1
            else:
                repeated = False
            texts_here.add(text)
            if repeated and not allow:
                continue
            items[(external_id, text, content_hash(text))] += 1
            written.add(external_id)
            counts["imported"] += 1
        ids |= written  # a skipped row's id is free again for the next file
        texts |= texts_here
        reports.append(counts)
    return items, reports


# Few distinct texts and ids, so repeats of every kind are common; chunks of 2 rows, so they
# fall within a chunk, across chunks and across files.
ROWS = st.lists(
    st.tuples(st.sampled_from(["i1", "i2", "i3", "i4", "i5"]), st.sampled_from("pqrst")),
    min_size=1,
    max_size=7,
)
IMPORTS = st.lists(st.tuples(ROWS, st.booleans(), st.booleans()), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(imports=IMPORTS)
def test_repeated_texts_match_a_from_scratch_recomputation(imports) -> None:
    chunk_rows = readers.CHUNK_ROWS
    readers.CHUNK_ROWS = 2
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            Workspace.create(Path(tmp) / "ws", labels=LABELS) as ws,
        ):
            plan = []
            reports = []
            for k, (rows, with_ids, allow) in enumerate(imports):
                texts = [(i if with_ids else None, f"text {t}") for i, t in rows]
                plan.append((texts, allow))
                if with_ids:
                    records = [{"id": i, "text": t} for i, t in texts]
                    path = _write(Path(tmp) / f"f{k}.csv", records, ["id", "text"])
                    report = ws.import_file(path, id_field="id", allow_duplicate_texts=allow)
                else:
                    records = [{"text": t} for _, t in texts]
                    path = _write(Path(tmp) / f"f{k}.csv", records, ["text"])
                    report = ws.import_file(path, allow_duplicate_texts=allow)
                reports.append({name: getattr(report, name) for name in COUNTED})
                assert report.duplicate_texts == (
                    report.duplicate_texts_in_file + report.duplicate_texts_in_store
                )
            items, expected = _from_scratch(plan)
            assert reports == expected
            assert _items(ws) == items
    finally:
        readers.CHUNK_ROWS = chunk_rows


def test_reimport_without_ids_skips_every_text_already_there(tmp_path, db_url, monkeypatch) -> None:
    """The walk's case on both backends: a file imported with its ids, then again without
    them. Chunks of 3 rows put the repeats within a chunk and across chunks."""
    monkeypatch.setattr(readers, "CHUNK_ROWS", 3)
    rows = [{"id": f"t{k:03}", "text": f"message number {k}"} for k in range(10)]
    rows.append({"id": "t100", "text": "message number 4"})  # same text, another id
    path = _write(tmp_path / "pool.csv", rows, ["id", "text"])
    with Workspace.create(tmp_path / "ws", labels=LABELS, db_url=db_url) as ws:
        first = ws.import_file(path, id_field="id")
        assert (first.imported, first.duplicate_texts_in_file, first.duplicate_texts) == (10, 1, 1)
        again = ws.import_file(path)
        assert (again.imported, again.duplicates_in_file) == (0, 1)
        assert (again.duplicate_texts_in_store, again.duplicate_texts) == (10, 10)
        assert ws.status()["items"]["pool"] == 10
        kept = ws.import_file(path, allow_duplicate_texts=True)
        assert (kept.imported, kept.duplicate_texts_in_store, kept.allow_duplicate_texts) == (
            10,
            10,
            True,
        )
        assert ws.status()["items"]["pool"] == 20
        with ws.engine.connect() as conn:
            batches = conn.execute(
                sql("SELECT rows_read, imported, duplicates FROM importbatch ORDER BY id")
            ).all()
        assert [tuple(b) for b in batches] == [(11, 10, 1), (11, 0, 11), (11, 10, 1)]


def test_cli_says_how_many_texts_it_skipped_in_text_and_json(tmp_path) -> None:
    ws_dir = tmp_path / "ws"
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(ws_dir), "--labels", "a,b"]).exit_code == 0
    first = _write(
        tmp_path / "first.csv",
        [{"id": "1", "text": "hello there"}, {"id": "2", "text": "second text"}],
        ["id", "text"],
    )
    assert runner.invoke(app, ["import", str(first), "-w", str(ws_dir), "--id-field", "id"])
    again = _write(
        tmp_path / "again.csv",
        [{"text": "hello there"}, {"text": "brand new"}, {"text": "second text"}],
        ["text"],
    )
    result = runner.invoke(app, ["import", str(again), "-w", str(ws_dir)])
    assert result.exit_code == 0, result.output
    assert "imported 1 pool items" in result.stdout
    assert "and 2 repeated texts" in result.stdout
    assert result.stderr.strip() == (
        "warning: skipped 2 rows whose text is already there under another id (2 already in "
        "the workspace); use --allow-duplicate-texts to import them"
    )
    result = runner.invoke(app, ["import", str(again), "-w", str(ws_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout holds the JSON document only
    assert (report["imported"], report["duplicates_in_store"]) == (0, 1)
    assert (report["duplicate_texts"], report["duplicate_texts_in_store"]) == (2, 2)
    assert report["allow_duplicate_texts"] is False
    assert "warning: skipped 2 rows" in result.stderr
    kept = runner.invoke(
        app, ["import", str(again), "-w", str(ws_dir), "--allow-duplicate-texts", "--json"]
    )
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["imported"] == 2
    assert "warning: imported 2 rows whose text was already there" in kept.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_repeats_are_found_on_the_row_path_and_in_parquet(workspace, tmp_path, fmt) -> None:
    rows = [
        {"id": 1, "text": "same words"},
        {"id": 2, "text": "other words"},
        {"id": 3, "text": "same words"},
    ]
    path = tmp_path / f"rows.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        import pandas as pd

        pd.DataFrame(rows).to_parquet(path)
    report = workspace.import_file(path, id_field="id")
    assert (report.imported, report.duplicate_texts_in_file) == (2, 1)
