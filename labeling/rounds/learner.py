"""The classifier behind each round: built from a config name, trained, asked for probabilities.

Logistic regression is the default because its probabilities mean something, and every query
strategy ranks by them. ``sgd`` (a linear model trained by stochastic gradient descent with log
loss) is for very many labels: it trains in one pass per epoch instead of a full solver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from sklearn.base import ClassifierMixin

from labeling.errors import BadInput

DEFAULT_CLASSIFIER = "logreg"
# Rows scored per predict_proba call: a 1M-row pool is scored without a 1M x classes temporary
# per intermediate step of the estimator.
PREDICT_CHUNK_ROWS = 100_000


class UnknownClassifier(BadInput):
    """A classifier name outside the registry."""


class NotEnoughLabels(BadInput):
    """Training data a classifier cannot learn from (one class, too few rows)."""


def _logreg(seed: int) -> ClassifierMixin:
    from sklearn.linear_model import LogisticRegression  # scikit-learn: ~1 s; rounds only

    # class_weight="balanced": early rounds are often lopsided (the first labels of a rare class
    # are precious), and an unweighted model would ignore the minority until it is common.
    # newton-cg: with 2^19 hashed columns and several classes, L-BFGS spent 80 s on 2,000 rows
    # (its per-step cost grows with the weight count); newton-cg needed 1.4 s for the same fit.
    return LogisticRegression(
        C=10.0,
        class_weight="balanced",
        solver="newton-cg",
        max_iter=500,
        random_state=seed,
    )


def _sgd(seed: int) -> ClassifierMixin:
    from sklearn.linear_model import SGDClassifier  # scikit-learn: ~1 s; rounds only

    return SGDClassifier(
        loss="log_loss",
        alpha=1e-5,
        class_weight="balanced",
        max_iter=50,
        tol=1e-4,
        random_state=seed,
    )


CLASSIFIERS: dict[str, Callable[[int], ClassifierMixin]] = {"logreg": _logreg, "sgd": _sgd}


def make_classifier(name: str = DEFAULT_CLASSIFIER, *, seed: int = 0) -> ClassifierMixin:
    """An unfitted classifier by config name (``logreg`` or ``sgd``)."""
    try:
        factory = CLASSIFIERS[name]
    except KeyError:
        known = ", ".join(sorted(CLASSIFIERS))
        raise UnknownClassifier(f"unknown classifier {name!r}; known: {known}") from None
    return factory(seed)


def make_binary_classifier(name: str = DEFAULT_CLASSIFIER, *, seed: int = 0) -> ClassifierMixin:
    """An unfitted classifier for one label of a multi-label model (present against absent).

    ``logreg`` is fitted by liblinear here: on two classes it needs no multinomial solver,
    and on the 100k-item benchmark (benchmarks/bench_multilabel_round.py) it reached the
    same gold F1 as newton-cg in about 60% of its time. It also releases the GIL while it
    trains, so labels fit in parallel threads (labeling.rounds.multilabel).
    """
    if name != "logreg":
        return make_classifier(name, seed=seed)
    from sklearn.linear_model import LogisticRegression  # scikit-learn: ~1 s; rounds only

    return LogisticRegression(
        C=10.0, class_weight="balanced", solver="liblinear", max_iter=500, random_state=seed
    )


def train(
    X: Any,
    y: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    classifier: str | ClassifierMixin = DEFAULT_CLASSIFIER,
    seed: int = 0,
) -> ClassifierMixin:
    """Fit a fresh classifier on ``X`` (rows) and ``y`` (labels), optionally weighted.

    ``classifier`` is a registry name or an estimator to clone. Raises :class:`NotEnoughLabels`
    when only one class is present, since no model can rank items then; a class with a single
    example is allowed (logistic regression handles it; it is simply weakly learnt).
    """
    from sklearn.base import clone  # scikit-learn: ~1 s; rounds only
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    labels = np.asarray(y)
    _check_training_set(X, labels, sample_weight)
    model = (
        make_classifier(classifier, seed=seed) if isinstance(classifier, str) else clone(classifier)
    )
    fit_kwargs: dict[str, Any] = {}
    if sample_weight is not None:
        fit_kwargs["sample_weight"] = np.asarray(sample_weight, dtype=np.float64)
    # The solvers' BLAS calls work on one weight vector at a time: threads only add
    # synchronisation, and next to a busy process (the UI, a featurizing worker) they made
    # L-BFGS 20x slower here. One thread is the fast setting for these problem sizes.
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(X, labels, **fit_kwargs)
    return model


def _check_training_set(X: Any, labels: NDArray[Any], sample_weight: ArrayLike | None) -> None:
    n_rows = X.shape[0]
    if labels.ndim != 1 or len(labels) != n_rows:
        raise BadInput(f"expected one label per row: {n_rows} rows, found {labels.shape} labels")
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (n_rows,):
            raise BadInput(f"expected {n_rows} sample weights, found shape {weights.shape}")
        if (weights < 0).any() or not np.isfinite(weights).all():
            raise BadInput("sample weights must be finite and non-negative")
    classes = np.unique(labels)
    if len(classes) < 2:
        found = f"only {classes[0].item()!r}" if len(classes) else "no labels"
        raise NotEnoughLabels(
            f"training needs labels of at least 2 classes; found {found} in {n_rows} rows"
        )


def predict_proba(
    model: Any, X: Any, *, chunk_rows: int = PREDICT_CHUNK_ROWS, rows: Any = None
) -> NDArray[np.float64]:
    """Class probabilities for every row of ``X``, computed ``chunk_rows`` rows at a time.

    With ``rows`` (an index array), for those rows of ``X`` only, without first copying them
    out: a million-row selection would otherwise double the feature matrix in memory.
    """
    if rows is not None:
        picked = np.asarray(rows)
        out = np.empty((len(picked), len(model.classes_)), dtype=np.float64)
        source = X.tocsr() if sp.issparse(X) else X
        for start in range(0, len(picked), chunk_rows):
            part = picked[start : start + chunk_rows]
            out[start : start + len(part)] = model.predict_proba(source[part])
        return out
    n_rows = X.shape[0]
    if n_rows <= chunk_rows:
        return np.asarray(model.predict_proba(X), dtype=np.float64)
    out = np.empty((n_rows, len(model.classes_)), dtype=np.float64)
    rows = X.tocsr() if sp.issparse(X) else X
    for start in range(0, n_rows, chunk_rows):
        stop = min(start + chunk_rows, n_rows)
        out[start:stop] = model.predict_proba(rows[start:stop])
    return out


def weak_sample_weights(
    confidence: np.ndarray, *, weak_weight: float, n_human: int, weak_balance: float
) -> np.ndarray:
    """Training weights of confident weak labels beside ``n_human`` human labels (weight 1).

    Each weak label weighs ``weak_weight`` times its label model's confidence; then, when
    there are human labels and ``weak_balance`` > 0, all weak labels together are scaled down
    to weigh at most ``weak_balance`` times the human labels. Without the cap, 930 weak labels
    at 0.5 outweighed 57 human labels eight to one, and rounds with 57 and 106 human labels
    scored the same on gold; benchmarks/bench_weak_weight.py measures the choice
    (docs/rounds.md). Rounds and ``simulate`` both weigh through this function.
    """
    weights = weak_weight * np.asarray(confidence, dtype=np.float64)
    total = float(weights.sum())
    cap = weak_balance * n_human
    if n_human > 0 and weak_balance > 0 and total > cap:
        weights *= cap / total
    return weights
