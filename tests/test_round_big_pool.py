"""The big-pool path of a round, on a small pool: features read from disk, top of the queue.

Above ``scores.IN_MEMORY_ROWS`` open items, the strategy ranks through a view that reads
feature rows from the on-disk cache; above ``scores.QUEUE_SCORE_ROWS`` pool items, only the
best-ranked open items get score rows and every prediction goes to the round's predictions
file. Both thresholds are lowered here so a YouTube-sized pool takes that path, and each
result is compared with the in-memory path on an identical workspace.
"""

from __future__ import annotations

import csv
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.config import write_config
from labeling.rounds import predictions, scores
from labeling.store.models import Item, Score
from tests.conftest import YOUTUBE

FILES = sorted(YOUTUBE.glob("Youtube0*.csv"))
TOP = 120


def _build(root: Path, *, strategy: str, featurizer: str, labelled: bool = True) -> Workspace:
    ws = Workspace.create(root, labels=["0", "1"])
    ws.config = replace(
        ws.config, gold_rate=0.0, strategy=strategy, batch_size=10, featurizer=featurizer
    )
    write_config(ws.root, ws.config)
    # The collection as published, repeated comments included.
    common = {"text_field": "CONTENT", "id_field": "COMMENT_ID", "allow_duplicate_texts": True}
    if labelled:
        ws.import_file(FILES[0], label_field="CLASS", **common)
    for path in FILES[1:3]:
        ws.import_file(path, **common)
    ws.import_file(FILES[4], label_field="CLASS", split="gold", **common)
    return ws


def _scores(ws: Workspace, round_id: int) -> dict[int, tuple[float, str | None, float | None]]:
    with Session(ws.engine) as session:
        return {
            item_id: (score, prediction, confidence)
            for item_id, score, prediction, confidence in session.exec(
                select(Score.item_id, Score.score, Score.prediction, Score.confidence).where(
                    Score.round_id == round_id
                )
            )
        }


def _pair(
    tmp_path: Path, monkeypatch, strategy: str, *, featurizer: str = "tfidf", labelled: bool = True
):
    """The same round on two identical workspaces: in memory, then the big-pool path.

    TF-IDF unless a test asks for ``auto``: rows then come from one cached block. The tests on
    ``auto`` (the hybrid, on this data) read two blocks side by side from disk, embeddings too."""
    small = _build(tmp_path / "memory", strategy=strategy, featurizer=featurizer, labelled=labelled)
    first = small.retrain()
    assert first.status == "succeeded", first.error
    big = _build(tmp_path / "disk", strategy=strategy, featurizer=featurizer, labelled=labelled)
    monkeypatch.setattr(scores, "IN_MEMORY_ROWS", 0)
    monkeypatch.setattr(scores, "QUEUE_SCORE_ROWS", TOP)
    second = big.retrain()
    assert second.status == "succeeded", second.error
    return small, big


@pytest.mark.parametrize(
    ("strategy", "featurizer"),
    [
        ("diverse_uncertainty", "auto"),  # the default strategy on the default featurizer
        ("margin", "tfidf"),
        ("entropy", "tfidf"),
        ("ranked_batch", "tfidf"),
        ("density_weighted", "tfidf"),
        ("qbc", "tfidf"),
    ],
)
def test_big_pool_round_ranks_like_the_in_memory_round(tmp_path, monkeypatch, strategy, featurizer):
    small, big = _pair(tmp_path, monkeypatch, strategy, featurizer=featurizer)
    try:
        full = _scores(small, 1)
        top = _scores(big, 1)
        with Session(big.engine) as session:
            n_pool = session.exec(
                select(Item.id).where(Item.split == "pool", Item.n_labels == 0)
            ).all()
        assert len(n_pool) > TOP  # the pool is bigger than the stored top
        assert len(top) == TOP
        # The stored rows are the best-ranked open items of the in-memory round, same scores.
        open_full = {i: v for i, v in full.items() if v[0] > scores.CLOSED_SCORE}
        cut = sorted((v[0] for v in open_full.values()), reverse=True)[TOP - 1]
        # Everything ranked above the cut is stored (items tied at the cut may differ).
        assert {i for i, v in open_full.items() if v[0] > cut + 1e-9} <= set(top)
        assert {i: top[i][0] for i in top} == pytest.approx({i: full[i][0] for i in top})
        assert min(v[0] for v in top.values()) == pytest.approx(cut)
        assert all(top[i][1] == full[i][1] for i in top)
        metrics = big.round_summary(big.get_round(1))["metrics"]
        assert metrics["queue_scored"] == TOP
        assert metrics["pool_mix"] == small.round_summary(small.get_round(1))["metrics"]["pool_mix"]
    finally:
        small.close()
        big.close()


def test_cold_start_on_the_big_pool_path(tmp_path, monkeypatch):
    small, big = _pair(
        tmp_path, monkeypatch, "diverse_uncertainty", featurizer="auto", labelled=False
    )
    try:
        full, top = _scores(small, 1), _scores(big, 1)
        assert len(top) == TOP
        best = sorted(full, key=lambda i: -full[i][0])[:10]
        # The cold-start batch (k-means over the pool, read from disk in blocks) is the same.
        assert sorted(top, key=lambda i: -top[i][0])[:10] == best
        assert predictions.load(big, 1) is None  # no model, no predictions
    finally:
        small.close()
        big.close()


def test_predictions_beyond_the_top_reach_the_hint_and_the_export(tmp_path, monkeypatch):
    small, big = _pair(tmp_path, monkeypatch, "margin")
    try:
        full, top = _scores(small, 1), _scores(big, 1)
        table = predictions.load(big, 1)
        assert table is not None
        with Session(big.engine) as session:
            pool_ids = session.exec(select(Item.id).where(Item.split == "pool")).all()
        assert len(table.table) == len(pool_ids)
        outside = [i for i in pool_ids if i not in top]
        assert outside
        found = table.lookup(np.array(outside))
        assert found == {i: (full[i][1], full[i][2]) for i in outside}
        # The label page's hint for an item without a score row comes from the file.
        big.add_user("ann")
        from labeling.annotation.session import UserSession

        hint = UserSession(big, "ann").hint(outside[0])
        assert hint is not None and hint.round_id == 1
        assert (hint.prediction, hint.confidence) == (full[outside[0]][1], full[outside[0]][2])
        # Export: every pool item carries the promoted round's prediction, as in memory.
        exported = {}
        for ws, name in ((small, "memory.csv"), (big, "disk.csv")):
            ws.export(tmp_path / name)
            with open(tmp_path / name, newline="", encoding="utf-8") as handle:
                exported[name] = {
                    row["id"]: (row["prediction"], row["prediction_confidence"])
                    for row in csv.DictReader(handle)
                }
        assert exported["disk.csv"] == exported["memory.csv"]
        assert sum(1 for v in exported["disk.csv"].values() if v[0]) == len(pool_ids)
    finally:
        small.close()
        big.close()


def test_queue_serves_the_stored_top_then_the_seeded_order(tmp_path, monkeypatch):
    small, big = _pair(tmp_path, monkeypatch, "margin")
    small.close()
    try:
        top = _scores(big, 1)
        order = sorted(top, key=lambda i: -top[i][0])
        big.add_user("ann")
        rng = random.Random(0)
        served = []
        for _ in range(TOP + 5):
            item = big.next_item("ann")
            served.append(item.item_id)
            big.annotate(item.item_id, "ann", rng.choice(["0", "1"]))
        # In the stored order (items with equal scores in either order), all of them first.
        assert set(served[:TOP]) == set(order)
        assert [top[i][0] for i in served[:TOP]] == [top[i][0] for i in order]
        assert not set(served[TOP:]) & set(top)
        with Session(big.engine) as session:
            ranks = dict(
                session.exec(select(Item.id, Item.rank).where(col(Item.id).in_(served[TOP:]))).all()
            )
        assert [ranks[i] for i in served[TOP:]] == sorted(ranks[i] for i in served[TOP:])
    finally:
        big.close()
