"""Export: formats, final labels, failures that leave nothing behind, and real TREC data."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pyarrow.parquet as pq
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.annotation.session import UserSession
from labeling.cli.main import app
from labeling.data.exporter import ITEM_COLUMNS
from labeling.errors import ExportFailed
from labeling.store.answers import decide
from labeling.store.models import Item
from tests.conftest import TREC

TREC_LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


@pytest.fixture
def trec(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "trec", labels=TREC_LABELS, db_url=db_url)
    # TREC repeats 71 questions under other ids; the export is checked against every row.
    report = ws.import_file(
        TREC / "trec_questions.csv",
        text_field="text",
        id_field="id",
        label_field="label",
        allow_duplicate_texts=True,
    )
    yield ws, report
    ws.close()


def test_trec_import_and_export_in_every_format(trec, tmp_path):
    ws, report = trec
    assert (report.rows_read, report.imported, report.duplicates) == (5452, 5452, 0)
    assert (report.duplicate_texts, report.duplicate_texts_in_file) == (71, 71)
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
    from labeling.data import writers

    def broken(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers, "write_jsonl", broken)
    with pytest.raises(ExportFailed, match="No space left on device"):
        ws.export(out)
    assert out.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl")] == []


def test_final_label_is_majority_then_label_order():
    labels = ("a", "b", "c")
    assert decide([], labels) is None
    assert decide([("b", "human", 2, 1), ("a", "human", 1, 3)], labels) == "b"
    assert decide([("c", "human", 1, 1), ("b", "import", 1, 2)], labels) == "b"


# --------------------------------------------------------------------------- decided_by, --origin

PLAN = {  # item -> each annotator's answers, in order ("undo" takes the previous one back)
    "maj": {"x": ["a"], "y": ["a"], "z": ["b"]},
    "tie": {"x": ["b"], "y": ["c"]},
    "cor": {"x": ["c", "undo", "a"]},
    "adj": {"x": ["a"], "y": ["b"]},
}


@pytest.fixture
def decided(tmp_path, db_url):
    """Items whose final labels were decided every way there is, on both backends."""
    ws = Workspace.create(tmp_path / "decided", labels=["a", "b", "c"], db_url=db_url)
    source = tmp_path / "items.csv"
    source.write_text(
        "id,text,label\nimp,came labelled,b\nmaj,three answers,\ntie,two answers,\n"
        "cor,a corrected answer,\nadj,a lead decides,\nnone,nobody answered,\n"
    )
    ws.import_file(source, id_field="id", label_field="label")
    ws.config = replace(ws.config, overlap=3)
    for person in ("x", "y", "z"):
        ws.add_user(person)
        while (item := ws.next_item(person)) is not None:
            answers = PLAN.get(item.external_id, {}).get(person)
            if not answers:
                ws.skip(item.item_id, person)
                continue
            for answer in answers:
                if answer == "undo":
                    assert ws.undo(person).external_id == item.external_id
                else:
                    ws.annotate(item.item_id, person, answer)
    ws.add_user("lead", role="lead")
    with Session(ws.engine) as session:
        adj = session.exec(select(Item.id).where(Item.external_id == "adj")).one()
    UserSession(ws, "lead").adjudicate(adj, "c")
    yield ws
    ws.close()


def _rows(path):
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def test_decided_by_says_how_each_final_label_was_reached(decided, tmp_path):
    out = tmp_path / "all.csv"
    report = decided.export(out)
    assert (report.rows, report.origin) == (6, None)
    rows = _rows(out)
    assert {k: (r["label"], r["decided_by"]) for k, r in rows.items()} == {
        "imp": ("b", "import"),
        "maj": ("a", "majority"),  # a decision by 2 of 3
        "tie": ("b", "tie-break"),  # b and c one each: b is listed first
        "cor": ("a", "correction"),  # x changed c to a
        "adj": ("c", "adjudication"),  # the lead's c wins over a and b
        "none": ("", ""),
    }
    assert list(rows["imp"])[:5] == ["id", "text", "split", "label", "decided_by"]


@pytest.mark.parametrize(
    ("origins", "expected"),
    [
        (["adjudication"], {"adj"}),
        (["import"], {"imp"}),
        (["human"], {"maj", "tie", "cor"}),
        (["import", "adjudication"], {"imp", "adj"}),
    ],
)
def test_origin_filter_keeps_the_items_it_names(decided, tmp_path, origins, expected):
    out = tmp_path / "some.csv"
    report = decided.export(out, origins=origins)
    assert set(_rows(out)) == expected
    assert (report.rows, report.origin) == (len(expected), origins)


def test_origin_filter_on_the_annotation_log_and_through_the_cli(decided, tmp_path):
    out = tmp_path / "log.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "export",
            str(out),
            "--annotations",
            "--origin",
            "adjudication",
            "-w",
            str(decided.root),
            *(["--db", decided.db_url] if decided.db_url.startswith("postgresql") else []),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["origin"] == ["adjudication"]
    (row,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert (row["item_id"], row["annotator"], row["label"], row["origin"]) == (
        "adj",
        "lead",
        "c",
        "adjudication",
    )


def test_an_unknown_origin_is_refused_and_writes_nothing(decided, tmp_path):
    out = tmp_path / "never.csv"
    with pytest.raises(
        ExportFailed, match=r"expected one of human, import, adjudication, correction\b.*found 'x'"
    ):
        decided.export(out, origins=["x"])
    assert not out.exists() and list(tmp_path.glob(".never.csv*")) == []
