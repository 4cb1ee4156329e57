"""Why an item sits where it does in the queue, in words: "margin 0.03 between billing and
account", "entropy 1.02 of at most 1.10 ...", "seeded order, beyond the stored top of the queue".

The words come from the promoted round's class probabilities for the listed items only: its
model and featurizer are loaded (nothing is fitted or written) and asked about those texts, so
a preview never scores the pool.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from labeling.context import Context
from labeling.rounds import predictions
from labeling.rounds.learner import predict_proba
from labeling.rounds.pool import round_featurizer
from labeling.store.models import Round

# Batch strategies lift the items they chose above every other score (see
# strategies.base.batch_first); their plain scores are at most 1.
BATCH_STRATEGIES = frozenset(
    {"diverse_uncertainty", "ranked_batch", "cold_start", "zero_shot_start"}
)

_MODELS: dict[tuple[str, float, str], tuple[Any, Any]] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class RoundView:
    """The promoted model's probabilities for the listed texts, when they can be had."""

    classes: list[str]
    proba: np.ndarray | None  # one row per listed text; None without a usable model
    has_model: bool  # the round trained a model (False: cold start)
    note: str = ""  # why probabilities are missing although the round has a model
    multilabel: bool = False  # per-label probabilities of presence, not a distribution

    def ranked(self, row: int) -> list[tuple[str, float]] | None:
        """Classes and probabilities of the row's item, most likely first."""
        if self.proba is None:
            return None
        values = self.proba[row]
        order = np.argsort(-values, kind="stable")
        return [(self.classes[k], float(values[k])) for k in order]

    def top(self, row: int) -> tuple[str | None, float | None]:
        ranked = self.ranked(row)
        if not ranked:
            return None, None
        return ranked[0][0], round(ranked[0][1], 6)


def round_probabilities(ws: Context, round_row: Round | None, texts: list[str]) -> RoundView:
    """The round's model asked about ``texts`` (and only those)."""
    if round_row is None or round_row.id is None or not round_row.model_path:
        return RoundView([], None, has_model=False)
    model_file = ws.root / round_row.model_path / "model.joblib"
    if not model_file.exists():
        return RoundView([], None, has_model=False)
    metrics = json.loads(round_row.metrics or "{}")
    loaded = _model_and_featurizer(ws, model_file, metrics)
    if loaded is None:
        note = (
            f"round {round_row.id}'s featurizer was refitted or deleted since it ran, so the "
            "reasons show its scores without the class probabilities"
        )
        return RoundView([], None, has_model=True, note=note)
    model, featurizer = loaded
    classes = [str(c) for c in model.classes_]
    sets = bool(getattr(model, "multilabel_", False))
    if not texts:
        return RoundView(classes, np.zeros((0, len(classes))), has_model=True, multilabel=sets)
    proba = predict_proba(model, featurizer.transform(texts))
    return RoundView(classes, proba, has_model=True, multilabel=sets)


def _model_and_featurizer(
    ws: Context, model_file: Any, metrics: dict[str, Any]
) -> tuple[Any, Any] | None:
    """The round's fitted model and featurizer, kept while the model file is unchanged (the
    Queue page asks again on every rerun)."""
    import joblib  # ~0.1 s: only a preview with a model needs it

    key = (str(model_file), model_file.stat().st_mtime, str(metrics.get("featurizer")))
    with _LOCK:
        cached = _MODELS.get(key)
    if cached is not None:
        return cached
    featurizer = round_featurizer(ws, metrics)
    if featurizer is None:
        return None
    loaded = (joblib.load(model_file), featurizer)
    with _LOCK:
        if len(_MODELS) >= 4:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = loaded
    return loaded


def stored_predictions(
    ws: Context, round_row: Round | None, item_ids: list[int]
) -> dict[int, tuple[str, float]]:
    """The predictions the round wrote for ``item_ids`` (its predictions file)."""
    if round_row is None or round_row.id is None or not item_ids:
        return {}
    table = predictions.load(ws, round_row.id)
    return table.lookup(np.array(item_ids)) if table is not None else {}


def reason(
    *,
    how: str,
    round_row: Round | None,
    score: float | None,
    ranked: list[tuple[str, float]] | None,
    has_model: bool,
    scored_when_ranked: bool,
    imported_after: bool,
    multilabel: bool = False,
) -> str:
    """The reason in words for one item of the preview.

    ``how``: "held", "undo", "scored" or "seeded" (see ``queue_preview.Pick``);
    ``scored_when_ranked``: the round stored a score row for the item (closed, if the item is
    in the seeded order); ``imported_after``: the item came after the round started.
    """
    if how == "held":
        return "you hold it now: your next claim serves it again"
    if how == "undo":
        return "brought back by undo: your next answer replaces the earlier one"
    if round_row is None:
        return "random order (no model yet)"
    if how == "seeded":
        if imported_after:
            return f"seeded order, imported after round {round_row.id} ranked the pool"
        if scored_when_ranked:
            return f"seeded order, it had no open place when round {round_row.id} ranked the pool"
        return "seeded order, beyond the stored top of the queue"
    strategy = round_row.strategy or "unknown"
    if not has_model:
        return "cold start (no model yet): typical of its cluster, LF disagreement first"
    if strategy == "random":
        return "random order (the round's strategy is random)"
    if ranked is None or len(ranked) < 2:
        return f"{strategy} score {score:.3f}" if score is not None else strategy
    if multilabel:
        return _set_words(strategy, score, ranked)
    return _model_words(strategy, score, ranked)


def _set_words(strategy: str, score: float | None, ranked: list[tuple[str, float]]) -> str:
    """The words for a scored item of a multi-label round: the label whose probability of
    presence is nearest 0.5 (what the set strategies and the set readings follow)."""
    label, p = min(ranked, key=lambda pair: abs(pair[1] - 0.5))
    words = f"least sure of {label} (p {p:.2f} of being there)"
    if strategy in BATCH_STRATEGIES and score is not None and score > 1.0:
        return f"{words}; in the round's diverse batch"
    return words


def _model_words(strategy: str, score: float | None, ranked: list[tuple[str, float]]) -> str:
    """The words for a scored item: the margin between the two likeliest classes (what
    margin, least-confidence and the batch strategies follow), or the entropy."""
    (first, p1), (second, p2) = ranked[0], ranked[1]
    margin = f"margin {p1 - p2:.2f} between {first} and {second}"
    if strategy in ("entropy", "density_weighted"):
        entropy = -sum(p * math.log(p) for _, p in ranked if p > 0)
        words = (
            f"entropy {entropy:.2f} of at most {math.log(len(ranked)):.2f} "
            f"({first} {p1:.2f}, {second} {p2:.2f})"
        )
        if strategy == "density_weighted":
            return f"{words}, weighted by how typical of the pool it is"
        return words
    if strategy == "least_confidence":
        return f"{margin}; {first} at only {p1:.2f}"
    if strategy == "qbc":
        return f"{margin}; the committee disagrees"
    if strategy in BATCH_STRATEGIES and score is not None and score > 1.0:
        return f"{margin}; in the round's diverse batch"
    return margin
