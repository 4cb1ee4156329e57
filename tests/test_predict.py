"""Predicting with a round's model: ``Workspace.predict_texts`` gives what the round stored, and
``labelloop predict`` streams files through it, all or nothing.

The store-backed tests run on SQLite and PostgreSQL (``--backend``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.config import write_config
from labeling.data import readers
from labeling.rounds import predict, predictions
from labeling.rounds.predict import NoModel, RoundNotFound
from labeling.store import labelsets
from labeling.store.models import Item, Round
from tests.conftest import YOUTUBE
from tests.test_multilabel_rounds import workspace_with_labels

FILES = sorted(YOUTUBE.glob("Youtube0*.csv"))
runner = CliRunner()


def youtube(root: Path, db_url: str | None, featurizer: str = "tfidf") -> Workspace:
    """A labelled pool (file 01), an unlabelled one (02), gold (05), and one round run."""
    ws = Workspace.create(root, labels=["0", "1"], db_url=db_url)
    ws.config = replace(ws.config, gold_rate=0.0, featurizer=featurizer)
    write_config(ws.root, ws.config)
    common = {"text_field": "CONTENT", "id_field": "COMMENT_ID", "allow_duplicate_texts": True}
    ws.import_file(FILES[0], label_field="CLASS", **common)
    ws.import_file(FILES[1], **common)
    ws.import_file(FILES[4], label_field="CLASS", split="gold", **common)
    round_ = ws.retrain()
    assert round_.status == "succeeded", round_.error
    return ws


@pytest.fixture
def yt(tmp_path, db_url):
    ws = youtube(tmp_path / "yt", db_url)
    yield ws
    ws.close()


def pool_texts(ws: Workspace) -> tuple[np.ndarray, list[str]]:
    with Session(ws.engine) as session:
        rows = session.exec(
            select(Item.id, Item.text).where(Item.split == "pool").order_by(col(Item.id))
        ).all()
    return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]


def test_predict_texts_gives_what_the_round_stored(yt):
    ids, texts = pool_texts(yt)
    found = yt.predict_texts(texts)
    assert found.round_id == 1 and found.labels == ("0", "1")
    assert found.probabilities.shape == (len(texts), 2)
    assert np.allclose(found.probabilities.sum(axis=1), 1.0)
    stored = predictions.load(yt, 1).lookup(ids)
    assert [stored[i][0] for i in ids.tolist()] == found.predicted
    confidence = np.array([stored[i][1] for i in ids.tolist()])
    assert np.abs(found.probabilities.max(axis=1) - confidence).max() < 1e-6
    # Round N by number gives the same; an empty list is an empty answer.
    again = yt.predict_texts(texts[:5], round_id=1)
    assert again.predicted == found.predicted[:5]
    empty = yt.predict_texts([])
    assert empty.probabilities.shape == (0, 2) and empty.predicted == []
    shown = again.as_json()
    assert shown["round"] == 1 and len(shown["predictions"]) == 5
    first = shown["predictions"][0]
    assert first["label"] == found.predicted[0]
    assert first["probabilities"] == {
        "0": round(float(found.probabilities[0, 0]), 6),
        "1": round(float(found.probabilities[0, 1]), 6),
    }
    json.dumps(shown)  # plain JSON types only


def test_a_multi_label_round_predicts_the_sets_it_stored(tmp_path, backend, db_url):
    ws, _truth = workspace_with_labels(tmp_path, db_url)
    with ws:
        assert ws.retrain().status == "succeeded"
        ids, texts = pool_texts(ws)
        found = ws.predict_texts(texts)
        assert found.labels == ("billing", "refund", "bug")
        stored = predictions.load(ws, found.round_id).lookup(ids)
        for item_id, predicted, row in zip(
            ids.tolist(), found.predicted, found.probabilities, strict=True
        ):
            name, confidence = stored[item_id]
            assert predicted == labelsets.decode_ordered(name)
            assert predicted == [lb for lb, p in zip(found.labels, row, strict=True) if p >= 0.5]
            assert abs(np.prod(np.maximum(row, 1 - row)) - confidence) < 1e-6


def test_the_loaded_round_is_kept_and_a_newly_promoted_one_is_used(yt):
    first = predict.load_round(yt)
    assert predict.load_round(yt) is first
    second = yt.retrain(strategy="random")
    assert second.promoted
    assert yt.predict_texts(["check out my channel"]).round_id == second.id
    yt.rollback()
    assert predict.load_round(yt) is first


def test_no_round_unknown_round_and_failed_round_are_clear_errors(tmp_path, db_url):
    with Workspace.create(tmp_path / "empty", labels=["a", "b"], db_url=db_url) as ws:
        with pytest.raises(NoModel, match="no round is promoted yet"):
            ws.predict_texts(["x"])
        with pytest.raises(RoundNotFound, match="no round 3; no round has run yet"):
            ws.predict_texts(["x"], round_id=3)
        with ws._write() as session:
            session.add(Round(status="failed", error="RoundError: the pool is empty"))
        with pytest.raises(NoModel, match="round 1 is failed: RoundError: the pool is empty"):
            ws.predict_texts(["x"], round_id=1)
        with pytest.raises(RoundNotFound, match="no round 2; the only round is 1"):
            ws.predict_texts(["x"], round_id=2)


def test_texts_must_be_a_list_of_strings(yt):
    with pytest.raises(predict.BadInput, match="one text"):
        yt.predict_texts("just one")  # type: ignore[arg-type]
    with pytest.raises(
        predict.BadInput, match=r"texts\[1\]: expected a text \(string\), found int"
    ):
        yt.predict_texts(["fine", 3])  # type: ignore[list-item]


# ---------------------------------------------------------------- labelloop predict FILE


def cli(ws: Workspace, *args: str):
    base = ["-w", str(ws.root)] + (["--db", ws.db_url] if "postgresql" in ws.db_url else [])
    return runner.invoke(app, [*args, *base])


def source_rows() -> list[dict[str, str]]:
    with FILES[3].open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_input(folder: Path, fmt: str, rows: list[dict[str, str]]) -> Path:
    path = folder / f"in.{fmt}"
    if fmt == "csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        import pyarrow as pa

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def read_output(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    delimiter = "\t" if path.suffix == ".tsv" else ","
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


@pytest.mark.parametrize(
    ("fmt", "out_fmt"), [("csv", "parquet"), ("jsonl", "csv"), ("parquet", "jsonl"), ("csv", "tsv")]
)
def test_cli_predicts_a_file_chunk_by_chunk(yt, tmp_path, monkeypatch, fmt, out_fmt):
    monkeypatch.setattr(readers, "CHUNK_ROWS", 100)  # the file spans several chunks
    rows = source_rows()
    assert len(rows) > 300
    source = write_input(tmp_path, fmt, rows)
    out = tmp_path / f"out.{out_fmt}"
    done = cli(yt, "predict", str(source), "--out", str(out), "--text-field", "CONTENT",
               "--id-field", "COMMENT_ID", "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["rows"] == len(rows) and report["round_id"] == 1
    written = read_output(out)
    assert list(written[0]) == ["COMMENT_ID", "label", "p_0", "p_1"]
    # Read as `import` reads: a byte order mark at a cell's ends is dropped (YouTube has some).
    expected = yt.predict_texts([r["CONTENT"].strip("\ufeff") for r in rows])
    assert [w["COMMENT_ID"] for w in written] == [r["COMMENT_ID"] for r in rows]
    assert [str(w["label"]) for w in written] == expected.predicted
    got = np.array([[float(w["p_0"]), float(w["p_1"])] for w in written])
    assert np.abs(got - expected.probabilities).max() < 1e-6
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, out.name, "yt"])


def test_a_field_called_id_is_kept_without_id_field_and_sets_are_joined_in_csv(
    tmp_path, backend, db_url
):
    ws, _truth = workspace_with_labels(tmp_path, db_url)
    with ws:
        ws.retrain()
        rows = [{"id": "n1", "text": "invoice crash please"}, {"id": "n2", "text": "hello team"}]
        source = write_input(tmp_path, "jsonl", rows)
        out = tmp_path / "sets.csv"
        done = cli(ws, "predict", str(source), "--out", str(out), "--label-sep", ";")
        assert done.exit_code == 0, done.output
        written = read_output(out)
        assert list(written[0]) == ["id", "label", "p_billing", "p_refund", "p_bug"]
        expected = ws.predict_texts([r["text"] for r in rows])
        for row, predicted in zip(written, expected.predicted, strict=True):
            assert row["label"] == (";".join(predicted) if predicted else "[]")
        assert expected.predicted[0] == ["billing", "bug"]
        clash = cli(ws, "predict", str(source), "--out", str(out), "--label-sep", "u")
        assert clash.exit_code == 2
        assert "option '--label-sep': label 'refund' contains the separator 'u'" in clash.stderr
        parquet = tmp_path / "sets.parquet"
        assert cli(ws, "predict", str(source), "--out", str(parquet)).exit_code == 0
        assert read_output(parquet)[0]["label"] == ["billing", "bug"]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "yt" not in p.parts)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing text field", "in.csv: no field 'body' (option '--text-field'); fields are: "),
        ("empty text", "in.jsonl: line 150, field 'CONTENT': empty"),
        ("unknown round", "option '--round': no round 7; the only round is 1"),
        ("missing id", "in.jsonl: line 250: no field 'COMMENT_ID' (option '--id-field')"),
    ],
)
def test_bad_input_is_refused_with_its_place_and_nothing_is_written(
    yt, tmp_path, monkeypatch, case, message
):
    monkeypatch.setattr(readers, "CHUNK_ROWS", 100)  # the bad row is in a later chunk
    rows = source_rows()
    args = ["--text-field", "CONTENT", "--id-field", "COMMENT_ID"]
    if case == "missing text field":
        source, args = write_input(tmp_path, "csv", rows), ["--text-field", "body"]
    elif case == "empty text":
        rows[149]["CONTENT"] = "  "
        source = write_input(tmp_path, "jsonl", rows)
    elif case == "missing id":
        del rows[249]["COMMENT_ID"]
        source = write_input(tmp_path, "jsonl", rows)
    else:
        source, args = write_input(tmp_path, "csv", rows), [*args, "--round", "7"]
    before = _listing(tmp_path)
    done = cli(yt, "predict", str(source), "--out", str(tmp_path / "out.csv"), *args)
    assert done.exit_code == 2, done.output
    assert message in done.stderr
    assert _listing(tmp_path) == before


def test_predict_without_a_promoted_round_says_so(tmp_path, db_url, monkeypatch):
    with Workspace.create(tmp_path / "ws", labels=["a", "b"], db_url=db_url) as ws:
        source = write_input(tmp_path, "csv", [{"text": "hello"}])
        done = cli(ws, "predict", str(source), "--out", str(tmp_path / "out.csv"))
        assert done.exit_code == 2
        assert "no round is promoted yet" in done.stderr
        assert not (tmp_path / "out.csv").exists()
        bad = cli(ws, "predict", str(source), "--out", str(tmp_path / "out.xlsx"))
        assert "option '--out'" in bad.stderr and "cannot tell the format" in bad.stderr
        assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())
        monkeypatch.chdir(tmp_path)  # a relative --out that is the input itself
        same = cli(ws, "predict", "in.csv", "--out", "in.csv")
        assert "is the input file" in same.stderr
