"""Rounds in a multi-label workspace: one calibrated classifier per label trains on the human
sets, is scored on gold sets, predicts a set per pool item and ranks the queue."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import select

from labeling import Workspace
from labeling.rounds.multilabel import OneVsRest, train_multilabel
from labeling.store import labelsets
from labeling.store.models import Score
from strategies import STRATEGIES

LABELS = ("billing", "refund", "bug")
WORDS = {"billing": "invoice", "refund": "money back", "bug": "crash"}


def make_items(n: int, seed: int, prefix: str) -> list[tuple[str, str, list[str]]]:
    """(id, text, true set): each label's word is in the text when the set holds it."""
    rng = random.Random(seed)
    items = []
    for k in range(n):
        chosen = [label for label in LABELS if rng.random() < 0.4]
        words = [WORDS[label] for label in chosen] + rng.sample(
            ["hello", "today", "please", "thanks", "order", "account", "team"], 3
        )
        rng.shuffle(words)
        items.append((f"{prefix}{k}", f"{' '.join(words)} {prefix}{k}", chosen))
    return items


def workspace_with_labels(tmp_path: Path, db_url: str | None = None) -> tuple[Workspace, dict]:
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label", db_url=db_url)
    pool = make_items(150, 1, "p")
    gold = make_items(40, 2, "g")
    rows = [{"id": i, "text": t} for i, t, _ in pool]
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ws.import_file(tmp_path / "pool.jsonl", id_field="id")
    rows = [{"id": i, "text": t, "labels": s} for i, t, s in gold]
    (tmp_path / "gold.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ws.import_file(tmp_path / "gold.jsonl", id_field="id", label_field="labels", split="gold")
    ws.add_user("ann")
    truth = {i: s for i, _t, s in pool}
    for _ in range(60):
        item = ws.next_item("ann")
        if item.external_id.startswith("g"):  # a hidden gold check: answered truly too
            ws.annotate(item.item_id, "ann", next(s for i, _t, s in gold if i == item.external_id))
        else:
            ws.annotate(item.item_id, "ann", truth[item.external_id])
    return ws, truth


@pytest.fixture(scope="module")
def labelled_root(tmp_path_factory) -> Path:
    """One labelled SQLite workspace, built once for the module and never opened by a test:
    a test that retrains works on its own copy (``copy_of``)."""
    folder = tmp_path_factory.mktemp("labelled")
    ws, _truth = workspace_with_labels(folder)
    ws.close()
    return folder / "ws"


def copy_of(root: Path, tmp_path: Path) -> Workspace:
    """A workspace of its own, the same as ``root`` (a closed SQLite workspace)."""
    return Workspace.open(shutil.copytree(root, tmp_path / "ws"))


def test_one_vs_rest_gives_calibrated_per_label_probabilities():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.5, np.zeros(400, dtype=bool)]).astype(np.uint8)
    model = train_multilabel(X, Y, LABELS)
    assert isinstance(model, OneVsRest) and model.multilabel_
    proba = model.predict_proba(X)
    assert proba.shape == (400, 3)
    assert ((proba >= 0) & (proba <= 1)).all()
    # The label never seen present is a constant, smoothed frequency: 1 / 402.
    assert model.constant_ == ["bug"]
    assert proba[:, 2] == pytest.approx(1 / 402)
    # Calibrated: the mean probability of each learnt label is close to its frequency.
    assert proba[:, :2].mean(axis=0) == pytest.approx(Y[:, :2].mean(axis=0), abs=0.05)
    assert (model.predict(X)[:, 0] == Y[:, 0]).mean() > 0.9


def test_a_round_learns_sets_scores_gold_and_ranks_the_pool(tmp_path, backend, db_url):
    ws, _truth = workspace_with_labels(tmp_path, db_url)
    with ws:
        round_ = ws.retrain()
        assert round_.status == "succeeded", round_.error
        metrics = json.loads(round_.metrics) if isinstance(round_.metrics, str) else round_.metrics
        assert metrics["evaluation"] == "gold"
        gold = metrics["gold"]
        assert gold["micro_f1"] > 0.9 and gold["macro_f1"] > 0.9
        assert gold["accuracy"] == gold["subset_accuracy"]
        assert set(gold["per_class"]) == set(LABELS)
        assert gold["confusion"] is None
        assert set(metrics["pool_mix"]) <= set(LABELS)
        with ws._read() as session:
            predictions = session.exec(select(Score.prediction)).all()
        assert predictions
        for value in predictions:
            assert labelsets.decode(value) <= set(LABELS)
        # The predicted-label filter finds the sets that hold the label.
        found = ws.search(predicted="refund", limit=200)
        assert found["total"] > 0
        texts = {i["id"]: i["text"] for i in found["items"]}
        assert sum("money back" in t for t in texts.values()) >= 0.9 * len(texts)
        item = ws.next_item("ann")
        assert item is not None


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_ranks_a_multi_label_pool(labelled_root, tmp_path, strategy):
    with copy_of(labelled_root, tmp_path) as ws:
        round_ = ws.retrain(strategy=strategy)
        assert round_.status == "succeeded", round_.error
        assert json.loads(round_.metrics)["strategy"] == strategy
        served = ws.next_item("ann")
        assert served is not None


def test_without_gold_a_round_is_cross_validated_on_the_sets(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label")
    with ws:
        items = make_items(80, 3, "p")
        rows = [{"id": i, "text": t, "labels": s} for i, t, s in items]
        (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        ws.import_file(tmp_path / "pool.jsonl", id_field="id", label_field="labels")
        round_ = ws.retrain()
        assert round_.status == "succeeded", round_.error
        metrics = json.loads(round_.metrics)
        assert metrics["evaluation"] == "cross-validation"
        assert metrics["cv"]["micro_f1"] > 0.8
        assert metrics["cv_macro_f1"] == metrics["cv"]["macro_f1"]


def test_a_round_with_one_kind_of_set_is_a_cold_start(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label")
    with ws:
        rows = [{"id": f"p{k}", "text": f"text {k}", "labels": ["bug"]} for k in range(20)]
        (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        ws.import_file(tmp_path / "pool.jsonl", id_field="id", label_field="labels")
        round_ = ws.retrain()
        assert round_.status == "succeeded", round_.error
        assert json.loads(round_.metrics)["strategy"] == "cold_start"
