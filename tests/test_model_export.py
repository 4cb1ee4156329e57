"""``labelloop model export``: a standalone scikit-learn pipeline saved with skops, and its card.

The exported model is loaded by the card's own example in a fresh ``python -I`` process in which
``import labeling`` fails, with nothing but scikit-learn and skops, and must give the round's
probabilities. The single-label export runs on SQLite and PostgreSQL (``--backend``); the others
on SQLite, the store being read the same way.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.rounds.model_export import NotExportable
from labeling.store.models import Round
from tests.test_multilabel_rounds import workspace_with_labels
from tests.test_predict import pool_texts, youtube

runner = CliRunner()

# Runs before the card's example: labelloop (and its libraries) cannot be imported.
PRELUDE = """
import importlib.abc, json, sys

class NoLabelloop(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("labeling", "strategies", "weak_supervision"):
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, NoLabelloop())
try:
    import labeling
except ImportError:
    pass
else:
    raise SystemExit("labelloop was importable")
"""


def run_card_example(folder: Path, texts: list[str]) -> np.ndarray:
    """The card's Python example, run in a fresh isolated process on ``texts``; its ``proba``."""
    card = (folder / "model-card.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    assert 'texts = ["first text to classify", "second one"]' in example
    example = example.replace(
        'texts = ["first text to classify", "second one"]', "texts = json.load(sys.stdin)"
    )
    script = PRELUDE + example + "\nprint('PROBA=' + json.dumps(proba.tolist()))\n"
    done = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=folder,
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("PROBA="))
    return np.array(json.loads(line.removeprefix("PROBA=")))


@pytest.mark.parametrize("featurizer", ["tfidf", "hashing"])
def test_the_exported_pipeline_loads_without_labelloop_and_gives_the_rounds_predictions(
    tmp_path, db_url, featurizer
):
    with youtube(tmp_path / "yt", db_url, featurizer=featurizer) as ws:
        out = tmp_path / "model"
        db = ["--db", ws.db_url] if "postgresql" in ws.db_url else []
        done = runner.invoke(app, ["model", "export", str(out), "-w", str(ws.root), *db, "--json"])
        assert done.exit_code == 0, done.output
        report = json.loads(done.stdout)
        assert report["round_id"] == 1 and report["featurizer"] == featurizer
        assert report["checked_texts"] > 0
        assert sorted(p.name for p in out.iterdir()) == ["model-card.md", "model.skops"]
        assert all(t.startswith(("sklearn.", "numpy.")) for t in report["trusted_types"])
        _ids, texts = pool_texts(ws)
        texts = texts[:200] + ["a text the round never saw", "subscribe to my channel!!"]
        expected = ws.predict_texts(texts)
        card = (out / "model-card.md").read_text(encoding="utf-8")
    got = run_card_example(out, texts)
    assert np.abs(got - expected.probabilities).max() < 1e-6
    for words in ("round 1", "`0`, `1`", "gold items", "macro-F1", "Known limits", featurizer):
        assert words in card
    assert "350 items labelled by people" in card


def test_a_multi_label_round_exports_one_logistic_model_per_label(tmp_path):
    ws, _truth = workspace_with_labels(tmp_path)
    with ws:
        assert ws.retrain().status == "succeeded"
        report = ws.export_model(tmp_path / "sets")
        assert report.multilabel and report.labels == ["billing", "refund", "bug"]
        texts = pool_texts(ws)[1][:100] + ["invoice crash", "hello"]
        expected = ws.predict_texts(texts)
    got = run_card_example(tmp_path / "sets", texts)
    assert np.abs(got - expected.probabilities).max() < 1e-5
    chosen = [[lb for lb, p in zip(report.labels, row, strict=True) if p >= 0.5] for row in got]
    assert chosen == expected.predicted
    card = (tmp_path / "sets" / "model-card.md").read_text(encoding="utf-8")
    assert 'LABELS = ["billing", "refund", "bug"]' in card and "one-vs-rest" in card


def test_an_embedding_round_is_refused_with_the_setting_that_would_export(tmp_path):
    with youtube(tmp_path / "yt", None) as ws:
        # Round 2 as an embedding round would record it (no need to run the model here).
        with Session(ws.engine) as session:
            first = session.get(Round, 1)
            metrics = json.loads(first.metrics)
            metrics["representation"]["featurizer"] = "hybrid"
            session.add(Round(status="succeeded", model_path="models/round-0002",
                              metrics=json.dumps(metrics)))  # fmt: skip
            session.commit()
        with pytest.raises(NotExportable) as raised:
            ws.export_model(tmp_path / "model", round_id=2)
        message = str(raised.value)
        assert "round 2 trained on the 'hybrid' featurizer" in message
        assert "round 1 can be exported (--round N)" in message
        assert 'featurizer = "tfidf"' in message
        assert not (tmp_path / "model").exists()
        assert [p.name for p in tmp_path.iterdir()] == ["yt"]


def test_the_export_refuses_a_folder_that_holds_files_and_writes_nothing(tmp_path):
    with youtube(tmp_path / "yt", None) as ws:
        taken = tmp_path / "taken"
        taken.mkdir()
        (taken / "notes.txt").write_text("mine")
        done = runner.invoke(app, ["model", "export", str(taken), "-w", str(ws.root)])
        assert done.exit_code == 2
        assert "the folder is not empty" in done.stderr
        assert [p.name for p in taken.iterdir()] == ["notes.txt"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "yt"]
        empty = tmp_path / "empty"
        empty.mkdir()
        assert ws.export_model(empty).round_id == 1
        assert (empty / "model.skops").is_file()


def test_no_promoted_round_means_nothing_to_export(tmp_path):
    with Workspace.create(tmp_path / "ws", labels=["a", "b"]) as ws:
        done = runner.invoke(app, ["model", "export", str(tmp_path / "m"), "-w", str(ws.root)])
        assert done.exit_code == 2 and "no round is promoted yet" in done.stderr
        assert not (tmp_path / "m").exists()
