"""``labelloop export DIR --format hf``: a folder the ``datasets`` library loads offline, both as
``load_dataset(DIR)`` (the card's YAML) and ``load_dataset("parquet", data_dir=DIR)`` (the
files' own metadata), with the label names as ``ClassLabel``s and the exporter's final labels.

Runs on SQLite and PostgreSQL (``--backend``). ``datasets`` runs in a child process, so that
its offline settings (read when it is imported) are the test's own.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.errors import ExportFailed
from tests.test_multilabel_rounds import workspace_with_labels

runner = CliRunner()

LOADER = """
import json, sys
import datasets

folder = sys.argv[1]
found = {}
for how, loaded in (
    ("card", datasets.load_dataset(folder)),
    ("parquet", datasets.load_dataset("parquet", data_dir=folder)),
):
    found[how] = {
        split: {
            "label": repr(loaded[split].features["label"]),
            "rows": [dict(row) for row in loaded[split]],
        }
        for split in loaded
    }
print("LOADED=" + json.dumps(found))
"""


def load_with_datasets(folder: Path, tmp_path: Path) -> dict:
    env = {
        **os.environ,
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf-cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("LOADED="))
    return json.loads(line.removeprefix("LOADED="))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def labelled(tmp_path, db_url):
    """Labels a, b, c: 6 pool items labelled on import, 3 unlabelled, 3 gold items."""
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b", "c"], db_url=db_url)
    pool = [{"id": f"p{k}", "text": f"pool text {k}", "label": "abc"[k % 3]} for k in range(6)]
    pool += [{"id": f"u{k}", "text": f"open text {k}", "label": ""} for k in range(3)]
    ws.import_file(write_jsonl(tmp_path / "pool.jsonl", pool), id_field="id", label_field="label")
    gold = [{"id": f"g{k}", "text": f"gold text {k}", "label": "cba"[k]} for k in range(3)]
    ws.import_file(
        write_jsonl(tmp_path / "gold.jsonl", gold), id_field="id", label_field="label", split="gold"
    )
    yield ws
    ws.close()


def cli(ws: Workspace, *args: str):
    base = ["-w", str(ws.root)] + (["--db", ws.db_url] if "postgresql" in ws.db_url else [])
    return runner.invoke(app, [*args, *base])


def test_the_hf_export_loads_with_datasets_both_ways(labelled, tmp_path):
    out = tmp_path / "hf"
    done = cli(labelled, "export", str(out), "--format", "hf", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["format"] == "hf" and report["splits"] == {"train": 6, "test": 3}
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "README.md",
        "data",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
    ]
    # The final labels are the CSV export's, pool items with one only.
    labelled.export(tmp_path / "items.csv")
    with (tmp_path / "items.csv").open(encoding="utf-8", newline="") as handle:
        final = {r["id"]: r["label"] for r in csv.DictReader(handle) if r["split"] == "pool"}
    names = ["a", "b", "c"]
    loaded = load_with_datasets(out, tmp_path)
    for how in ("card", "parquet"):
        splits = loaded[how]
        assert set(splits) == {"train", "test"}, how
        for split in splits.values():
            assert split["label"] == "ClassLabel(names=['a', 'b', 'c'])"
        train = {r["id"]: names[r["label"]] for r in splits["train"]["rows"]}
        assert train == {k: v for k, v in final.items() if v}
        assert len(train) == 6
        test = [(r["id"], r["text"], names[r["label"]]) for r in splits["test"]["rows"]]
        assert test == [
            ("g0", "gold text 0", "c"),
            ("g1", "gold text 1", "b"),
            ("g2", "gold text 2", "a"),
        ]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "class_label:" in card and "huggingface" not in card


def test_a_multi_label_export_is_a_sequence_of_class_labels(tmp_path, backend, db_url):
    ws, truth = workspace_with_labels(tmp_path, db_url)
    with ws:
        report = ws.export(tmp_path / "sets", format="hf")
    assert report.splits["test"] == 40 and report.splits["train"] > 0
    loaded = load_with_datasets(tmp_path / "sets", tmp_path)
    labels = ("billing", "refund", "bug")
    for how in ("card", "parquet"):
        train = loaded[how]["train"]
        assert "ClassLabel(names=['billing', 'refund', 'bug'])" in train["label"]
        assert train["label"].startswith(("List(", "Sequence("))
        for row in train["rows"]:
            assert [labels[k] for k in row["label"]] == [
                lb for lb in labels if lb in truth[row["id"]]
            ]


def test_re_export_replaces_an_earlier_one_and_other_folders_are_refused(labelled, tmp_path):
    out = tmp_path / "hf"
    labelled.export(out, format="hf")
    assert labelled.export(out, format="hf").rows == 9
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(ExportFailed, match="holds other files than an earlier export"):
        labelled.export(taken, format="hf")
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    done = cli(labelled, "export", str(tmp_path / "x"), "--format", "hf", "--annotations")
    assert done.exit_code == 2 and "--annotations" in done.stderr


def test_nothing_labelled_means_nothing_to_export(tmp_path):
    with Workspace.create(tmp_path / "ws", labels=["a", "b"]) as ws:
        ws.import_file(write_jsonl(tmp_path / "p.jsonl", [{"text": "x"}]))
        with pytest.raises(ExportFailed, match="no item has a final label or a gold label"):
            ws.export(tmp_path / "hf", format="hf")
        assert not (tmp_path / "hf").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
