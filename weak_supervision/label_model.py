"""Turn the vote matrix ``L`` into one weak label and a confidence per row.

Snorkel's ``LabelModel`` when at least ``MIN_LFS_FOR_LABEL_MODEL`` LFs voted (it estimates LF
accuracies from their agreements, which needs three), majority vote otherwise or on request.
Settings are fixed, general defaults, never tuned to any one set of LFs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from weak_supervision.errors import LabelModelError
from weak_supervision.lf import ABSTAIN

MODELS = ("auto", "snorkel", "majority")
MIN_LFS_FOR_LABEL_MODEL = 3
#: Snorkel's tutorials train the LabelModel for 500 epochs at its default learning rate; we
#: use the same for every workspace rather than tune per LF set.
LABEL_MODEL_EPOCHS = 500
#: Fewest human labels from which a class balance is estimated; below it the LabelModel
#: assumes balanced classes.
MIN_LABELS_FOR_CLASS_BALANCE = 30
#: Probabilities closer than this count as a tie (Snorkel's ``probs_to_preds`` tolerance).
TIE_TOLERANCE = 1e-5


@dataclass
class WeakLabels:
    """Weak labels for the rows of ``L``.

    ``labels`` is ``-1`` where no LF voted or the top classes tie; ``confidence`` is the
    probability of the chosen label (0 where ``labels`` is -1); ``probabilities`` is the full
    distribution (uniform where no LF voted).
    """

    labels: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray
    model: str
    message: str | None
    fitted: FittedLabelModel

    @property
    def coverage(self) -> float:
        """Share of rows with a weak label."""
        return float(np.mean(self.labels != ABSTAIN)) if self.labels.size else 0.0


class FittedLabelModel:
    """A fitted label model that can label other rows with the same LF columns."""

    def __init__(self, kind: str, n_classes: int, model: Any = None) -> None:
        self.kind = kind
        self.n_classes = n_classes
        self._model = model

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        """Class probabilities per row; uniform for rows where no LF voted."""
        L = _check_matrix(L, self.n_classes)
        if self.kind == "majority":
            probabilities = majority_probabilities(L, self.n_classes)
        else:
            probabilities = np.asarray(self._model.predict_proba(L), dtype=np.float64)
        uncovered = ~(L != ABSTAIN).any(axis=1)
        probabilities[uncovered] = 1.0 / self.n_classes
        return probabilities

    def predict(self, L: np.ndarray) -> WeakLabels:
        """Weak labels and confidences for the rows of ``L``."""
        probabilities = self.predict_proba(L)
        labels = probabilities_to_labels(probabilities)
        labels[~(np.asarray(L) != ABSTAIN).any(axis=1)] = ABSTAIN
        confidence = np.where(labels == ABSTAIN, 0.0, probabilities.max(axis=1))
        return WeakLabels(labels, confidence, probabilities, self.kind, None, self)


def fit_label_model(
    L: np.ndarray,
    n_classes: int,
    *,
    model: str = "auto",
    class_balance: Sequence[float] | np.ndarray | None = None,
    seed: int = 0,
) -> WeakLabels:
    """Fit a label model on ``L`` and label its rows.

    Parameters
    ----------
    L
        Votes, rows x LFs, ``-1`` for abstain and ``0..n_classes-1`` in the label order.
    model
        ``auto`` (LabelModel with at least 3 voting LFs, else majority), ``snorkel`` (the
        LabelModel, falling back to majority with a message when it cannot run) or
        ``majority``.
    class_balance
        Prior share of each class for the LabelModel (see ``estimate_class_balance``);
        ``None`` assumes balanced classes. Majority vote ignores it.
    seed
        Seed of the LabelModel's training, for reproducible weak labels.
    """
    if model not in MODELS:
        raise LabelModelError(f"unknown label model {model!r}, expected one of {list(MODELS)}")
    L = _check_matrix(L, n_classes)
    balance = _check_balance(class_balance, n_classes)
    voting = int((L != ABSTAIN).any(axis=0).sum())
    message = None
    if model != "majority" and voting < MIN_LFS_FOR_LABEL_MODEL:
        message = (
            f"{voting} LF(s) voted; the LabelModel needs at least {MIN_LFS_FOR_LABEL_MODEL}, "
            "so majority vote was used"
        )
    elif model != "majority":
        try:
            fitted = _fit_snorkel(L, n_classes, balance, seed)
        except ImportError as exc:
            message = f"the LabelModel needs torch ({exc}); majority vote was used"
        else:
            return fitted.predict(L)
    result = FittedLabelModel("majority", n_classes).predict(L)
    result.message = message
    return result


def _fit_snorkel(
    L: np.ndarray, n_classes: int, balance: np.ndarray | None, seed: int
) -> FittedLabelModel:
    # snorkel: ~0.75 s to import; only this engine needs it
    from snorkel.labeling.model import LabelModel

    label_model = LabelModel(cardinality=n_classes, verbose=False)
    label_model.fit(
        L,
        class_balance=None if balance is None else balance.tolist(),
        n_epochs=LABEL_MODEL_EPOCHS,
        seed=seed,
        progress_bar=False,
    )
    return FittedLabelModel("snorkel", n_classes, label_model)


def majority_probabilities(L: np.ndarray, n_classes: int) -> np.ndarray:
    """Share of each class among the votes of each row (uniform where no LF voted)."""
    counts = np.stack([np.equal(L, k).sum(axis=1) for k in range(n_classes)], axis=1).astype(float)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        probabilities = np.where(totals > 0, counts / np.maximum(totals, 1), 1.0 / n_classes)
    return probabilities


def probabilities_to_labels(probabilities: np.ndarray) -> np.ndarray:
    """Arg-max per row, ``-1`` where the top classes tie (within ``TIE_TOLERANCE``)."""
    if probabilities.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    top = probabilities.max(axis=1, keepdims=True)
    tied = (np.abs(probabilities - top) < TIE_TOLERANCE).sum(axis=1) > 1
    labels = probabilities.argmax(axis=1).astype(np.int64)
    labels[tied] = ABSTAIN
    return labels


def estimate_class_balance(
    human_labels: Sequence[int] | np.ndarray,
    n_classes: int,
    *,
    min_labels: int = MIN_LABELS_FOR_CLASS_BALANCE,
) -> np.ndarray | None:
    """Class shares from human labels (``-1`` = unlabelled), or ``None`` if there are too few.

    Add-one smoothing keeps a class nobody has labelled yet from getting a zero prior, which
    would forbid the LabelModel from ever predicting it.
    """
    labels = np.asarray(human_labels, dtype=np.int64).reshape(-1)
    known = labels[labels != ABSTAIN]
    if known.size and (known.min() < 0 or known.max() >= n_classes):
        raise LabelModelError(
            f"human labels must be -1 or in 0..{n_classes - 1}, found {sorted(set(known))[:5]}"
        )
    if known.size < min_labels:
        return None
    counts = np.bincount(known, minlength=n_classes).astype(float) + 1.0
    return counts / counts.sum()


def gold_accuracy(
    weak: WeakLabels | np.ndarray, gold: Sequence[int] | np.ndarray, *, seed: int = 0
) -> dict[str, float | int]:
    """Accuracy over all gold rows, as Snorkel's ``score(tie_break_policy="random")``.

    Rows with no weak label count too: a tie is broken at random among the tied classes and a
    row no LF voted on gets a random class, with a fixed ``seed``, so coverage is not hidden.
    Takes ``WeakLabels`` or a probability matrix aligned with ``gold`` (``-1`` = not gold).
    """
    probabilities = weak.probabilities if isinstance(weak, WeakLabels) else np.asarray(weak)
    gold = np.asarray(gold, dtype=np.int64).reshape(-1)
    if probabilities.shape[0] != gold.shape[0]:
        raise LabelModelError(
            f"{probabilities.shape[0]} rows of probabilities but {gold.shape[0]} gold labels"
        )
    rows = np.flatnonzero(gold != ABSTAIN)
    if rows.size == 0:
        return {"accuracy": float("nan"), "correct": 0, "n": 0}
    predicted = break_ties(probabilities[rows], seed=seed)
    correct = int((predicted == gold[rows]).sum())
    return {"accuracy": correct / rows.size, "correct": correct, "n": int(rows.size)}


def break_ties(probabilities: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Arg-max per row, ties (and uniform rows) broken at random with a fixed seed."""
    rng = np.random.default_rng(seed)
    labels = probabilities_to_labels(probabilities)
    for i in np.flatnonzero(labels == ABSTAIN):
        top = probabilities[i].max()
        candidates = np.flatnonzero(np.abs(probabilities[i] - top) < TIE_TOLERANCE)
        labels[i] = int(rng.choice(candidates))
    return labels


def _check_matrix(L: np.ndarray, n_classes: int) -> np.ndarray:
    if not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise LabelModelError(f"expected at least 2 classes, found n_classes={n_classes!r}")
    matrix = np.asarray(L)
    if matrix.ndim != 2:
        raise LabelModelError(f"L must be a 2-d matrix (rows x LFs), found shape {matrix.shape}")
    if matrix.size and not np.issubdtype(matrix.dtype, np.integer):
        raise LabelModelError(f"L must hold integers, found dtype {matrix.dtype}")
    matrix = matrix.astype(np.int64, copy=False)
    if matrix.size and (matrix.min() < ABSTAIN or matrix.max() >= n_classes):
        raise LabelModelError(
            f"L values must be -1 (abstain) or in 0..{n_classes - 1}, found "
            f"{matrix.min()}..{matrix.max()}"
        )
    return matrix


def _check_balance(
    class_balance: Sequence[float] | np.ndarray | None, n_classes: int
) -> np.ndarray | None:
    if class_balance is None:
        return None
    balance = np.asarray(class_balance, dtype=np.float64).reshape(-1)
    if balance.shape[0] != n_classes or (balance <= 0).any() or abs(balance.sum() - 1) > 1e-6:
        raise LabelModelError(
            f"class_balance must be {n_classes} positive shares summing to 1, found "
            f"{balance.tolist()}"
        )
    return balance
