"""The classifier of a multi-label workspace: one calibrated binary classifier per label.

Each label gets the workspace's classifier (``logreg`` or ``sgd``, labeling.rounds.learner)
trained on "has the label" against "has not", and its scores are calibrated into
probabilities with Platt scaling (a sigmoid) fitted on out-of-fold scores: the per-label
probabilities are what the set strategies, the 0.5 threshold of a predicted set and the
review of likely errors read, so they should mean what they say. ``class_weight="balanced"``
keeps a rare label from being ignored by the classifier; the calibration then maps its
shifted scores back to frequencies.

A label that the training set never shows (or always shows) cannot be learnt: it gets a
constant probability, its Laplace-smoothed frequency ``(k + 1) / (n + 2)``, and is listed in
``constant_``. A label seen fewer than twice on one side is fitted without calibration
(there is no out-of-fold score to calibrate on), and listed in ``uncalibrated_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeling.errors import BadInput
from labeling.rounds.learner import DEFAULT_CLASSIFIER, NotEnoughLabels, make_classifier

# Folds of the out-of-fold scores that calibrate each label (fewer when a label is rarer).
CALIBRATION_FOLDS = 3


class OneVsRest:
    """Per-label probabilities from one fitted binary classifier (or constant) per label.

    ``predict_proba(X)`` is an ``(n_rows, n_labels)`` matrix of P(label present), columns in
    ``classes_`` order; rows do not sum to 1. ``multilabel_`` tells the query strategies so.
    """

    multilabel_ = True

    def __init__(self, labels: tuple[str, ...], members: list[Any]) -> None:
        self.classes_ = np.array(labels, dtype=object)
        # Per label: a fitted estimator with predict_proba, or a float (a constant probability).
        self.members = members

    @property
    def constant_(self) -> list[str]:
        return [str(c) for c, m in zip(self.classes_, self.members, strict=True) if _const(m)]

    @property
    def uncalibrated_(self) -> list[str]:
        return [
            str(c)
            for c, m in zip(self.classes_, self.members, strict=True)
            if not _const(m) and not hasattr(m, "calibrated_classifiers_")
        ]

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        out = np.empty((X.shape[0], len(self.members)), dtype=np.float64)
        for column, member in enumerate(self.members):
            if _const(member):
                out[:, column] = float(member)
            else:
                out[:, column] = member.predict_proba(X)[:, 1]
        return out

    def predict(self, X: Any, threshold: float = 0.5) -> NDArray[np.uint8]:
        """The predicted sets, as an indicator matrix: labels at or above ``threshold``."""
        return (self.predict_proba(X) >= threshold).astype(np.uint8)


def _const(member: Any) -> bool:
    return isinstance(member, float)


def train_multilabel(
    X: Any,
    Y: ArrayLike,
    labels: tuple[str, ...],
    sample_weight: ArrayLike | None = None,
    *,
    classifier: str = DEFAULT_CLASSIFIER,
    seed: int = 0,
    calibrate: bool = True,
) -> OneVsRest:
    """Fit one calibrated classifier per label on ``X`` and the indicator matrix ``Y``
    (``(n_rows, n_labels)``, 1 where the row's set holds the label). Without ``calibrate``,
    one fit per label instead of :data:`CALIBRATION_FOLDS` + 1 (the out-of-fold check of
    people's sets, whose cleanlab thresholds are per label and need ranks, not calibration).

    Raises :class:`NotEnoughLabels` when no label can be learnt (each is always present or
    always absent), since no model could rank items then.
    """
    # scikit-learn: ~1 s; rounds only
    from sklearn.calibration import CalibratedClassifierCV
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    indicator = np.asarray(Y)
    weights = _check(X, indicator, labels, sample_weight)
    members: list[Any] = []
    with threadpool_limits(limits=1, user_api="blas"):
        for column in range(len(labels)):
            y = indicator[:, column].astype(np.int64)
            present = int(y.sum())
            absent = len(y) - present
            if present == 0 or absent == 0:
                members.append((present + 1.0) / (len(y) + 2.0))
                continue
            base = make_classifier(classifier, seed=seed)
            folds = min(CALIBRATION_FOLDS, present, absent) if calibrate else 0
            model: Any = (
                CalibratedClassifierCV(base, method="sigmoid", cv=folds, ensemble=False)
                if folds >= 2
                else base
            )
            if weights is None:
                model.fit(X, y)
            else:
                model.fit(X, y, sample_weight=weights)
            members.append(model)
    if all(_const(m) for m in members):
        raise NotEnoughLabels(
            f"training needs a label that some of the {indicator.shape[0]} rows have and some "
            "have not; every label is on all of them or on none"
        )
    return OneVsRest(labels, members)


def _check(
    X: Any, indicator: NDArray[Any], labels: tuple[str, ...], sample_weight: ArrayLike | None
) -> NDArray[np.float64] | None:
    n_rows = X.shape[0]
    if indicator.ndim != 2 or indicator.shape != (n_rows, len(labels)):
        raise BadInput(
            f"expected a {n_rows} x {len(labels)} indicator matrix, found shape {indicator.shape}"
        )
    if n_rows < 2:
        raise NotEnoughLabels(f"training needs at least 2 labelled rows; found {n_rows}")
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (n_rows,):
        raise BadInput(f"expected {n_rows} sample weights, found shape {weights.shape}")
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise BadInput("sample weights must be finite and non-negative")
    return weights
