"""The round's training set and model: human labels, plus confident weak labels weighted below 1.

Each pool item's human label is the majority of its current answers (gold items never train).
Weak labels of pool items nobody has labelled join when at least ``weak_threshold`` sure,
weighted by :func:`labeling.rounds.learner.weak_sample_weights`. With fewer than two classes
there is no model: the round ranks by ``cold_start`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from labeling.context import Context
from labeling.rounds.featurizers import AUTO, BASE_FEATURIZER
from labeling.rounds.learner import NotEnoughLabels, train, weak_sample_weights
from labeling.rounds.multilabel import fit_sets
from labeling.rounds.pool import FeatureBlocks, PoolData
from labeling.rounds.representations import (
    CANDIDATES,
    Candidate,
    Selection,
    blocks_needed,
    compose,
    fixed,
    select,
)
from labeling.store import labelsets


@dataclass(frozen=True)
class Trained:
    """A round's model (None: cold start) and what it was trained on.

    ``rows`` (feature rows), ``y`` and ``weights`` hold the human labels first
    (``n_human`` of them), then the ``n_weak`` weak ones.
    """

    model: Any
    n_human: int
    n_weak: int
    rows: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    # Multi-label: ``y`` holds stored sets, and this their indicator matrix (rows x labels).
    indicator: np.ndarray | None = None
    # Multi-label: which labels of each row trained (a weak set's unvoted labels did not).
    known: np.ndarray | None = None
    # Multi-label: each row's out-of-fold P(label) (labeling.rounds.multilabel.FittedSets).
    out_of_fold: np.ndarray | None = None

    @property
    def human_rows(self) -> np.ndarray:
        return self.rows[: self.n_human]

    @property
    def human_y(self) -> np.ndarray:
        return self.y[: self.n_human]

    @property
    def human_indicator(self) -> np.ndarray | None:
        return None if self.indicator is None else self.indicator[: self.n_human]

    @property
    def human_out_of_fold(self) -> np.ndarray | None:
        return None if self.out_of_fold is None else self.out_of_fold[: self.n_human]


def choose_representation(ws: Context, data: PoolData, blocks: FeatureBlocks) -> Selection:
    """The (featurizer, classifier) this round trains: the workspace's fixed featurizer, or
    with ``auto`` the cross-validated choice among the candidates whose blocks are ready
    (:func:`labeling.rounds.representations.select`, seeded, on the human labels)."""
    setting, classifier = ws.config.featurizer, ws.config.classifier
    if setting != AUTO:
        return fixed(setting, classifier)
    if ws.multilabel:  # the cross-validated choice compares single-label macro-F1
        chosen = fixed(BASE_FEATURIZER, classifier)
        return replace(
            chosen,
            setting=AUTO,
            reason=f"multi-label workspaces train on {BASE_FEATURIZER!r} with `auto` for now",
        )
    index = {int(item_id): row for row, item_id in enumerate(data.item_ids)}
    rows = np.array([index[item_id] for item_id in data.human], dtype=np.int64)
    y = np.array(list(data.human.values()), dtype=object)
    candidates = [
        Candidate(c.featurizer, classifier)
        for c in CANDIDATES
        if all(block in blocks.rows for block in blocks_needed(c.featurizer))
    ]
    return select(
        lambda name: compose(name, blocks.rows)[rows], y, candidates=candidates, note=blocks.note
    )


def training_rows(
    ws: Context, data: PoolData, usable: Callable[[str], bool]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The rows a round trains on: every human label, then the weak label of each pool item
    nobody labelled that is at least ``weak_threshold`` sure and ``usable``; returned as
    (rows, values, sample weights, number of human rows)."""
    index = {int(item_id): row for row, item_id in enumerate(data.item_ids)}
    rows = [index[item_id] for item_id in data.human]
    values = list(data.human.values())
    n_human = len(rows)
    config = ws.config
    weak_confidence: list[float] = []
    for item_id, (value, confidence) in data.weak.items():
        row = index.get(item_id)
        if (
            row is None
            or data.split[row] != "pool"
            or item_id in data.human
            or confidence < config.weak_threshold
            or not usable(value)
        ):
            continue
        rows.append(row)
        values.append(value)
        weak_confidence.append(confidence)
    weights = np.concatenate(
        [
            np.ones(n_human),
            weak_sample_weights(
                np.array(weak_confidence, dtype=np.float64),
                weak_weight=config.weak_weight,
                n_human=n_human,
                weak_balance=config.weak_balance,
            ),
        ]
    )
    return np.array(rows, dtype=np.int64), np.array(values, dtype=object), weights, n_human


def train_round_model(ws: Context, data: PoolData, X: Any, classifier: str) -> Trained:
    """Fit ``classifier`` on human labels plus confident weak labels (no model below two
    classes; multi-label: :func:`train_sets`)."""
    if ws.multilabel:
        return train_sets(ws, data, X, classifier)
    row_array, y_array, weights, n_human = training_rows(ws, data, lambda v: v in ws.labels)
    cold = Trained(None, n_human, len(row_array) - n_human, row_array, y_array, weights)
    if len(set(y_array.tolist())) < 2:
        return cold
    try:
        model = train(X[row_array], y_array, weights, classifier=classifier, seed=0)
    except NotEnoughLabels:  # too little to learn from: a cold start, as with one class
        return cold
    return replace(cold, model=model)


def train_sets(ws: Context, data: PoolData, X: Any, classifier: str) -> Trained:
    """A multi-label workspace's model: one calibrated classifier per label on the human
    sets plus the confident weak sets (labeling.weak.multilabel), weighted as weak labels are
    in single-label rounds (labeling.rounds.multilabel); no model while no label is both
    present and absent somewhere. A weak set trains only the labels it speaks for
    (:func:`known_labels`); a person's set trains every label."""
    # a weak value not starting with "[" is a single label fitted before the task was sets
    row_array, y_array, weights, n_human = training_rows(ws, data, lambda v: v.startswith("["))
    indicator = labelsets.indicator(y_array.tolist(), ws.labels)
    known = known_labels(ws, data, row_array, indicator, n_human)
    cold = Trained(
        None, n_human, len(row_array) - n_human, row_array, y_array, weights, indicator, known
    )
    if len(row_array) < 2:
        return cold
    try:
        fitted = fit_sets(
            X[row_array], indicator, ws.labels, weights, known=known, classifier=classifier
        )
    except NotEnoughLabels:
        return cold
    return replace(cold, model=fitted.model, out_of_fold=fitted.out_of_fold)


def known_labels(
    ws: Context, data: PoolData, rows: np.ndarray, indicator: np.ndarray, n_human: int
) -> np.ndarray:
    """Which labels of each training row train (rows x labels): all of a human set (an
    unticked label is an answer: absent); of a weak set, the labels some LF voted on for
    the item, present or absent (``PoolData.weak_voted``), and those the set holds. A label
    no LF voted on is not "absent" there, only unknown."""
    known = np.ones(indicator.shape, dtype=bool)
    column = {label: k for k, label in enumerate(ws.labels)}
    for i in range(n_human, len(rows)):
        voted = data.weak_voted.get(int(data.item_ids[rows[i]]), frozenset())
        known[i] = indicator[i].astype(bool)
        for label in voted:
            k = column.get(label)
            if k is not None:
                known[i, k] = True
    return known
