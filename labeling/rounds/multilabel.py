"""The classifier of a multi-label workspace: one calibrated binary classifier per label.

Each label gets a binary classifier (labeling.rounds.learner.make_binary_classifier) trained
on "has the label" against "has not", and its scores are calibrated into probabilities with
Platt scaling (a sigmoid) fitted on out-of-fold scores: the per-label probabilities are what
the set strategies, the 0.5 threshold of a predicted set and the review of likely errors read,
so they should mean what they say. ``class_weight="balanced"`` keeps a rare label from being
ignored by the classifier; the calibration then maps its shifted scores back to frequencies.

The out-of-fold probabilities the calibration is fitted on are kept (:class:`FittedSets`):
every training row's probability of each label from a fit that did not see the row, which
is what the review of people's sets (cleanlab) and the cross-validated figures need, so
neither fits again. The fits of all labels and folds run in a thread pool (liblinear
releases the GIL while it trains); each fit has the same seed whatever the thread count.

``known`` (optional, rows x labels) says which labels of a row train: a weak set speaks only
for the labels some LF voted on, so its other labels take no part in those labels' fits.

A label that its training rows never show (or always show) cannot be learnt: it gets a
constant probability, its Laplace-smoothed frequency ``(k + 1) / (n + 2)``, and is listed in
``constant_``. A label seen fewer than twice on one side is fitted without calibration
(there is no out-of-fold score to calibrate on), and listed in ``uncalibrated_``.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeling.errors import BadInput
from labeling.rounds.learner import DEFAULT_CLASSIFIER, NotEnoughLabels, make_binary_classifier

# Folds of the out-of-fold scores that calibrate each label (fewer when a label is rarer).
CALIBRATION_FOLDS = 3


class CalibratedLabel:
    """One label's fitted classifier and the sigmoid ``1 / (1 + exp(-(slope * s + offset)))``
    over its decision scores ``s`` (no sigmoid: the classifier's own probabilities)."""

    def __init__(self, estimator: Any, slope: float | None = None, offset: float = 0.0) -> None:
        self.estimator = estimator
        self.slope = slope
        self.offset = offset

    @property
    def calibrated(self) -> bool:
        return self.slope is not None

    @property
    def linear(self) -> bool:
        """Whether its scores are ``X @ coef_ + intercept_`` (one column: a binary model)."""
        coef = getattr(self.estimator, "coef_", None)
        return coef is not None and coef.shape[0] == 1

    def present_proba(self, X: Any) -> NDArray[np.float64]:
        """P(label present) for each row of ``X``."""
        return self.from_scores(np.asarray(self.estimator.decision_function(X)))

    def from_scores(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """P(label present) from the classifier's decision scores."""
        if self.slope is None:  # the classifier's own sigmoid (log loss: logistic)
            return sigmoid(scores)
        return sigmoid(self.slope * scores + self.offset)


class OneVsRest:
    """Per-label probabilities from one fitted binary classifier (or constant) per label.

    ``predict_proba(X)`` is an ``(n_rows, n_labels)`` matrix of P(label present), columns in
    ``classes_`` order; rows do not sum to 1. ``multilabel_`` tells the query strategies so.
    """

    multilabel_ = True

    def __init__(self, labels: tuple[str, ...], members: list[Any]) -> None:
        self.classes_ = np.array(labels, dtype=object)
        # Per label: a CalibratedLabel, a float (a constant probability), or (models saved
        # before CalibratedLabel) a fitted scikit-learn estimator with predict_proba.
        self.members = members

    @property
    def constant_(self) -> list[str]:
        return [str(c) for c, m in zip(self.classes_, self.members, strict=True) if _const(m)]

    @property
    def uncalibrated_(self) -> list[str]:
        return [
            str(c)
            for c, m in zip(self.classes_, self.members, strict=True)
            if not _const(m) and not getattr(m, "calibrated", hasattr(m, "calibrated_classifiers_"))
        ]

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        out = np.empty((X.shape[0], len(self.members)), dtype=np.float64)
        linear = [
            column
            for column, member in enumerate(self.members)
            if isinstance(member, CalibratedLabel) and member.linear
        ]
        if linear:
            # One product with every label's weights: a pass over X instead of one per label
            # (scoring a 100k-item pool on 20 labels: 0.2 s instead of 3 s).
            members = [self.members[column] for column in linear]
            weights = np.hstack([m.estimator.coef_.T for m in members]).astype(X.dtype)
            scores = np.asarray(X @ weights, dtype=np.float64)
            scores += np.array([m.estimator.intercept_[0] for m in members])
            for j, (column, member) in enumerate(zip(linear, members, strict=True)):
                out[:, column] = member.from_scores(scores[:, j])
        for column, member in enumerate(self.members):
            if _const(member):
                out[:, column] = float(member)
            elif column in linear:
                continue
            elif isinstance(member, CalibratedLabel):
                out[:, column] = member.present_proba(X)
            else:
                out[:, column] = member.predict_proba(X)[:, 1]
        return out

    def predict(self, X: Any, threshold: float = 0.5) -> NDArray[np.uint8]:
        """The predicted sets, as an indicator matrix: labels at or above ``threshold``."""
        return (self.predict_proba(X) >= threshold).astype(np.uint8)


@dataclass(frozen=True)
class FittedSets:
    """A fitted :class:`OneVsRest` and its out-of-fold probabilities.

    ``out_of_fold[i, k]`` is row ``i``'s P(label k) from a fit that did not train on row
    ``i``, calibrated as the model's are; for a constant or uncalibrated label, its smoothed
    frequency; NaN where label ``k`` of row ``i`` did not train (``known`` False).
    """

    model: OneVsRest
    out_of_fold: NDArray[np.float64]


def _const(member: Any) -> bool:
    return isinstance(member, float)


def sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``1 / (1 + exp(-z))`` without overflow warnings for large ``|z|``."""
    return np.asarray(np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64))))


def train_multilabel(
    X: Any,
    Y: ArrayLike,
    labels: tuple[str, ...],
    sample_weight: ArrayLike | None = None,
    *,
    classifier: str = DEFAULT_CLASSIFIER,
    seed: int = 0,
) -> OneVsRest:
    """Fit one calibrated classifier per label on ``X`` and the indicator matrix ``Y``
    (``(n_rows, n_labels)``, 1 where the row's set holds the label): :func:`fit_sets`'s
    model."""
    return fit_sets(X, Y, labels, sample_weight, classifier=classifier, seed=seed).model


@dataclass(frozen=True)
class _Plan:
    """One label's fits: its training rows, their 0/1 targets, and the calibration folds
    (positions into ``rows``; none: the label is fitted uncalibrated)."""

    rows: NDArray[np.int64]
    y: NDArray[np.int64]
    folds: list[tuple[NDArray[np.int64], NDArray[np.int64]]]


def fit_sets(
    X: Any,
    Y: ArrayLike,
    labels: tuple[str, ...],
    sample_weight: ArrayLike | None = None,
    *,
    known: ArrayLike | None = None,
    classifier: str = DEFAULT_CLASSIFIER,
    seed: int = 0,
    workers: int | None = None,
) -> FittedSets:
    """Fit one calibrated classifier per label and keep the out-of-fold probabilities.

    Parameters
    ----------
    X, Y
        Feature rows and the ``(n_rows, n_labels)`` indicator matrix of their sets.
    sample_weight
        Per-row training weights (weak sets weigh below people's).
    known
        ``(n_rows, n_labels)``: whether label k of row i trains label k's classifier (None:
        every label of every row). A row out of a label's fit changes nothing of it.
    workers
        Threads that fit (default: the machine's cores); the result is the same for any.

    Raises :class:`NotEnoughLabels` when no label can be learnt (each is always present or
    always absent), since no model could rank items then.
    """
    indicator = np.asarray(Y)
    weights = _check(X, indicator, labels, sample_weight)
    mask = _known(known, indicator.shape)
    # Until fitted, each label is its smoothed frequency (a constant label stays so).
    out_of_fold = np.full(indicator.shape, np.nan, dtype=np.float64)
    members: list[Any] = []
    for column in range(len(labels)):
        rows = mask[:, column]
        prior = (float(indicator[rows, column].sum()) + 1.0) / (float(rows.sum()) + 2.0)
        out_of_fold[rows, column] = prior
        members.append(prior)
    plans = _plans(indicator, mask)
    if not plans:
        raise NotEnoughLabels(
            f"training needs a label that some of the {indicator.shape[0]} rows have and some "
            "have not; every label is on all of them or on none"
        )

    fitted = _fit_in_threads(X, plans, weights, classifier, seed, workers)
    for column, plan in plans.items():
        estimator, oof = fitted[column]
        if oof is None:  # too rare on one side for folds: the classifier's own sigmoid
            members[column] = CalibratedLabel(estimator)
            continue
        row_weights = None if weights is None else weights[plan.rows]
        slope, offset = platt_scaling(oof, plan.y, row_weights)
        members[column] = CalibratedLabel(estimator, slope, offset)
        out_of_fold[plan.rows, column] = sigmoid(slope * oof + offset)
    return FittedSets(OneVsRest(labels, members), out_of_fold)


def _fit_in_threads(
    X: Any,
    plans: dict[int, _Plan],
    weights: NDArray[np.float64] | None,
    classifier: str,
    seed: int,
    workers: int | None,
) -> dict[int, tuple[Any, NDArray[np.float64] | None]]:
    """Per label, the classifier fitted on all its rows and its out-of-fold decision scores
    (None without folds): every fit a task of one thread pool, each with the same seed."""
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    def fit(plan: _Plan, part: NDArray[np.int64] | None) -> Any:
        picked = plan.rows if part is None else plan.rows[part]
        target = plan.y if part is None else plan.y[part]
        model = make_binary_classifier(classifier, seed=seed)
        if weights is None:
            return model.fit(X[picked], target)
        return model.fit(X[picked], target, sample_weight=weights[picked])

    def fold_scores(plan: _Plan, fit_part: Any, test_part: Any) -> NDArray[np.float64]:
        return np.asarray(fit(plan, fit_part).decision_function(X[plan.rows[test_part]]))

    out: dict[int, tuple[Any, NDArray[np.float64] | None]] = {}
    # One BLAS thread per fit: the solvers work on one weight vector at a time, and the
    # parallelism is across fits (labeling.rounds.learner.train says why).
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool,
    ):
        finals = {column: pool.submit(fit, plan, None) for column, plan in plans.items()}
        scores: dict[int, list[Future[NDArray[np.float64]]]] = {
            column: [pool.submit(fold_scores, plan, a, b) for a, b in plan.folds]
            for column, plan in plans.items()
        }
        for column, plan in plans.items():
            oof = None
            if plan.folds:
                oof = np.empty(len(plan.rows), dtype=np.float64)
                for (_fit, test_part), future in zip(plan.folds, scores[column], strict=True):
                    oof[test_part] = future.result()
            out[column] = (finals[column].result(), oof)
    return out


def _plans(indicator: NDArray[Any], mask: NDArray[np.bool_]) -> dict[int, _Plan]:
    """The fits of each label that can be learnt (present and absent among its rows)."""
    from sklearn.model_selection import StratifiedKFold  # scikit-learn: ~1 s; rounds only

    plans: dict[int, _Plan] = {}
    for column in range(indicator.shape[1]):
        rows = np.flatnonzero(mask[:, column])
        y = indicator[rows, column].astype(np.int64)
        present = int(y.sum())
        absent = len(y) - present
        if present == 0 or absent == 0:
            continue
        n_folds = min(CALIBRATION_FOLDS, present, absent)
        folds = list(StratifiedKFold(n_folds).split(np.zeros(len(y)), y)) if n_folds >= 2 else []
        plans[column] = _Plan(rows, y, folds)
    return plans


def platt_scaling(
    scores: NDArray[np.float64], y: NDArray[np.int64], weights: NDArray[np.float64] | None
) -> tuple[float, float]:
    """(slope, offset) of the sigmoid ``P(present) = 1 / (1 + exp(-(slope * s + offset)))``
    that best fits 0/1 targets ``y`` from decision scores ``s`` (weighted log loss), with
    Platt's smoothed targets ``(n1 + 1) / (n1 + 2)`` and ``1 / (n0 + 2)`` so that a cleanly
    separated fold does not drive the slope to infinity."""
    from scipy.optimize import minimize  # comes with scikit-learn; rounds only

    s = np.asarray(scores, dtype=np.float64)
    n1 = float(y.sum())
    n0 = float(len(y) - n1)
    target = np.where(y == 1, (n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0))
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)

    def loss_and_gradient(params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        z = params[0] * s + params[1]
        loss = float(np.dot(w, np.logaddexp(0.0, z) - target * z))
        residual = w * (sigmoid(z) - target)
        return loss, np.array([np.dot(residual, s), residual.sum()])

    start = np.array([0.0, np.log((n1 + 1.0) / (n0 + 1.0))])
    found = minimize(
        loss_and_gradient,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-6, "ftol": 64 * np.finfo(float).eps},
    )
    return float(found.x[0]), float(found.x[1])


def _known(known: ArrayLike | None, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    if known is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(known, dtype=bool)
    if mask.shape != shape:
        raise BadInput(
            f"expected a {shape[0]} x {shape[1]} mask of known labels, found {mask.shape}"
        )
    return mask


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
