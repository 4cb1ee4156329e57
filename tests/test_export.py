"""Export: formats, final labels, failures that leave nothing behind, and real TREC data."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest

from labeling import Workspace
from labeling.errors import ExportFailed
from labeling.exporter import ITEM_COLUMNS, final_label
from tests.conftest import TREC

TREC_LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


@pytest.fixture
def trec(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "trec", labels=TREC_LABELS, db_url=db_url)
    report = ws.import_file(
        TREC / "trec_questions.csv", text_field="text", id_field="id", label_field="label"
    )
    yield ws, report
    ws.close()


def test_trec_import_and_export_in_every_format(trec, tmp_path):
    ws, report = trec
    assert (report.rows_read, report.imported, report.duplicates) == (5452, 5452, 0)
    assert ws.status()["annotations_by_label"] == {
        "ABBR": 86,
        "DESC": 1162,
        "ENTY": 1250,
        "HUM": 1223,
        "LOC": 835,
        "NUM": 896,
    }
    with (TREC / "trec_questions.csv").open(encoding="utf-8", newline="") as handle:
        source = {row["id"]: row for row in csv.DictReader(handle)}
    for fmt in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"trec.{fmt}"
        assert ws.export(out).rows == 5452
        if fmt == "csv":
            with out.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.DictReader(handle))
        elif fmt == "jsonl":
            rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        else:
            rows = pq.read_table(out).to_pylist()
        # id, text and label are mapped, so only fine_label stays as an original field.
        assert list(rows[0]) == [*ITEM_COLUMNS, "fine_label"]
        for row in rows:
            original = source[row["id"]]
            assert row["text"] == original["text"]
            assert row["label"] == original["label"]
            assert row["fine_label"] == original["fine_label"]
            assert int(row["n_annotations"]) == 1


def test_export_to_an_unwritable_place(trec, tmp_path):
    ws, _ = trec
    with pytest.raises(ExportFailed, match="does not exist"):
        ws.export(tmp_path / "no" / "such" / "dir" / "out.csv")
    with pytest.raises(ExportFailed, match="is a folder"):
        ws.export(tmp_path)
    with pytest.raises(ExportFailed, match="cannot tell the format"):
        ws.export(tmp_path / "out.xlsx")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        probe = locked / "probe"
        try:
            probe.write_text("x")
            writable = True  # running as root: permissions do not stop us
            probe.unlink()
        except OSError:
            writable = False
        if not writable:
            with pytest.raises(ExportFailed, match="cannot write there"):
                ws.export(locked / "out.csv")
            assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_failed_export_leaves_no_partial_file(trec, tmp_path, monkeypatch):
    ws, _ = trec
    out = tmp_path / "out.jsonl"
    out.write_text("previous export\n")
    from labeling import exporter

    def broken(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exporter, "_write_jsonl", broken)
    with pytest.raises(ExportFailed, match="No space left on device"):
        ws.export(out)
    assert out.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl")] == []


def test_final_label_is_majority_then_label_order():
    labels = ("a", "b", "c")
    assert final_label({}, labels) is None
    assert final_label({"b": 2, "a": 1}, labels) == "b"
    assert final_label({"c": 1, "b": 1}, labels) == "b"
