"""Likely label errors: people's labels checked against out-of-sample probabilities.

Each round cross-validates a model on the human labels (:func:`out_of_sample_proba`, so no item
is scored by a model that saw it) and asks cleanlab's ``find_label_issues`` which labels look
wrong (:func:`likely_label_errors`). The round writes the result to ``review.json`` in its
folder; the Review page and the ``model`` and ``likely_error`` lists read it back
(:mod:`labeling.quality.review`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from labeling.rounds.learner import predict_proba, train

# In a round's folder: each human-labelled item's given label, cross-validated prediction and
# confidence, the probability of the given label, and whether cleanlab flags it.
REVIEW_FILE = "review.json"


def out_of_sample_proba(
    X: Any, y: np.ndarray, labels: tuple[str, ...], *, classifier: str = "logreg", seed: int = 0
) -> np.ndarray | None:
    """Cross-validated class probabilities (columns in ``labels`` order), never in-sample.

    Each item's probabilities come from a model trained on the other folds. None when there
    are too few labels (fewer than 10, or fewer than 2 classes with 2 items each).
    """
    from sklearn.model_selection import StratifiedKFold  # scikit-learn: ~1 s; rounds only

    counts = Counter(y.tolist())
    usable = [label for label, n in counts.items() if n >= 2]
    if len(y) < 10 or len(usable) < 2:
        return None
    folds = max(2, min(5, min(n for n in counts.values() if n >= 2)))
    proba = np.zeros((len(y), len(labels)))
    column = {label: i for i, label in enumerate(labels)}
    # A class with one item cannot be stratified; it still trains in every fold but its own.
    strata = np.array([label if counts[label] >= folds else "~rare" for label in y.tolist()])
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    weights = np.ones(len(y))
    for fit_rows, test_rows in splitter.split(np.zeros(len(y)), strata):
        if len(set(y[fit_rows].tolist())) < 2:
            return None
        model = train(X[fit_rows], y[fit_rows], weights[fit_rows], classifier=classifier)
        part = predict_proba(model, X[test_rows])
        for j, cls in enumerate(model.classes_):
            proba[test_rows, column[str(cls)]] = part[:, j]
    return proba


def likely_label_errors(y: np.ndarray, proba: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """Rows whose given label cleanlab's ``find_label_issues`` flags, most suspicious first."""
    from cleanlab.filter import find_label_issues  # cleanlab: ~2 s; rounds only

    index = {label: i for i, label in enumerate(labels)}
    given = np.array([index[label] for label in y.tolist()], dtype=np.int64)
    present = sorted(set(given.tolist()))
    if len(present) < 2:
        return np.array([], dtype=np.int64)
    # cleanlab wants every class column to occur among the labels: keep the present ones.
    remap = {old: new for new, old in enumerate(present)}
    sub = proba[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    found = find_label_issues(
        labels=np.array([remap[g] for g in given.tolist()]),
        pred_probs=sub,
        return_indices_ranked_by="self_confidence",
    )
    return np.asarray(found, dtype=np.int64)
