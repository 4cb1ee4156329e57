"""The strategy contract, the registry, and the helpers every strategy shares.

A strategy is a plain function::

    strategy(model, features, n, *, rng=None, labelled_features=None,
             labelled_labels=None, lf_votes=None) -> (indices, scores)

``model`` is a fitted classifier with ``predict_proba``, or a probability matrix (one row per
pool row), or ``None`` before the first model (only ``random`` and ``cold_start`` accept that).
A multi-label problem is always said, never guessed from the numbers: by a fitted model whose
``multilabel_`` is true (scikit-learn's ``OneVsRestClassifier`` fitted on an indicator matrix
sets it) or by a matrix of per-label probabilities wrapped with :func:`as_multilabel`. Its
``labelled_labels`` are then an indicator matrix (labelled rows, labels) of 0/1.
``features`` is the unlabelled pool (scipy sparse or dense, one row per item; or, on big
pools, a view that reads rows from the feature cache when sliced or indexed, so strategies
take rows by slices and index arrays and never need the whole matrix at once). ``indices`` are
``n`` distinct row positions into that pool, most useful first; ``scores`` hold one number per
pool row, higher meaning "ask sooner", with the chosen rows on top in the same order, so the
caller can rank the whole pool by score and serve the chosen batch first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from strategies.exceptions import (
    EmptyPoolError,
    PoolTooSmallError,
    StrategyError,
    UnknownStrategyError,
)

Indices = NDArray[np.intp]
Scores = NDArray[np.float64]
# Rows per predict_proba call: bounds the temporaries of scoring a huge pool.
PREDICT_CHUNK_ROWS = 100_000


class Strategy(Protocol):
    """What a registered strategy looks like (see the module docstring)."""

    __name__: str

    def __call__(
        self,
        model: Any,
        features: Any,
        n: int,
        *,
        rng: np.random.Generator | int | None = None,
        labelled_features: Any = None,
        labelled_labels: Any = None,
        lf_votes: Any = None,
    ) -> tuple[Indices, Scores]: ...


STRATEGIES: dict[str, Strategy] = {}
#: Names of the strategies that only have a meaning for label sets (multi-label problems).
MULTILABEL_ONLY: set[str] = set()


def register(name: str, *, multilabel_only: bool = False) -> Callable[[Strategy], Strategy]:
    """Decorator: make a strategy function available as ``get_strategy(name)``.

    ``multilabel_only`` lists it in :data:`MULTILABEL_ONLY`: it refuses single-label input.
    """

    def add(function: Strategy) -> Strategy:
        if name in STRATEGIES and STRATEGIES[name] is not function:
            raise StrategyError(f"a strategy named {name!r} is already registered")
        STRATEGIES[name] = function
        if multilabel_only:
            MULTILABEL_ONLY.add(name)
        return function

    return add


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name``; the error lists the known names."""
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise UnknownStrategyError(f"unknown strategy {name!r}; known: {known}") from None


# ------------------------------------------------------------------------------ input checks


def check_request(features: Any, n: int) -> int:
    """Validate the pool and the batch size; return the pool's row count."""
    shape = getattr(features, "shape", None)
    if shape is None or len(shape) != 2:
        raise StrategyError(
            f"expected the pool features as a 2-d matrix, found {type(features).__name__}"
        )
    n_rows = int(shape[0])
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise StrategyError(f"expected n as an integer, found {type(n).__name__}")
    if n_rows == 0:
        raise EmptyPoolError("the pool is empty: no unlabelled items to choose from")
    if n < 1:
        raise StrategyError(f"expected n >= 1 items to choose, found {n}")
    if n > n_rows:
        raise PoolTooSmallError(f"asked for {n} items but the pool holds only {n_rows}")
    return n_rows


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A numpy Generator from a seed, a Generator, or ``None`` (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def seed_from(rng: np.random.Generator) -> int:
    """An integer seed for scikit-learn estimators, drawn from ``rng``."""
    return int(rng.integers(0, 2**31 - 1))


class MultiLabelProbabilities(np.ndarray[Any, np.dtype[np.float64]]):
    """Per-label probabilities of presence, marked multi-label (made by :func:`as_multilabel`).

    One row per item, one column per label in the config's order; rows need not sum to 1.
    ``multilabel_`` is the same marker a fitted one-vs-rest model carries, so
    :func:`is_multilabel` reads models and matrices alike. Rows taken from it keep the mark.
    """

    multilabel_ = True


def as_multilabel(matrix: Any) -> MultiLabelProbabilities:
    """``matrix`` (items, labels) of per-label P(present), marked as a multi-label problem.

    The mark is how a caller holding probabilities (rather than a model) says "multi-label":
    rows of per-label probabilities may sum to 1 by chance, so the sums never decide it.
    """
    proba = np.asarray(matrix, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 1:
        raise StrategyError(
            "expected multi-label probabilities of shape (items, labels >= 1), "
            f"found shape {proba.shape}"
        )
    if proba.size and not (np.isfinite(proba).all() and proba.min() >= 0 and proba.max() <= 1):
        raise StrategyError(
            "expected per-label probabilities in [0, 1], "
            f"found values from {np.nanmin(proba)} to {np.nanmax(proba)}"
        )
    return proba.view(MultiLabelProbabilities)


def is_multilabel(model: Any) -> bool:
    """Whether ``model`` (a fitted model, a probability matrix, a view) is marked multi-label."""
    return bool(getattr(model, "multilabel_", False))


def probabilities(model: Any, features: Any, *, strategy: str) -> NDArray[np.float64]:
    """Class probabilities for every pool row, from a fitted model or given directly.

    A multi-label problem (:func:`is_multilabel`) gives per-label probabilities, returned
    marked (:class:`MultiLabelProbabilities`), so that what is read from them knows it.
    """
    n_rows = features.shape[0]
    if model is None:
        raise StrategyError(
            f"strategy {strategy!r} needs a fitted model or a probability matrix; found None "
            "(use 'cold_start' or 'random' before the first model)"
        )
    multilabel = is_multilabel(model)
    if hasattr(model, "predict_proba"):
        predicted = _predict_in_chunks(model, features)
        return as_multilabel(predicted) if multilabel else predicted
    if multilabel:
        marked = as_multilabel(model)
        if marked.shape[0] != n_rows:
            raise StrategyError(
                f"expected probabilities of shape ({n_rows}, labels) for {n_rows} pool rows, "
                f"found shape {marked.shape}"
            )
        return marked
    proba = np.asarray(model, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != n_rows or proba.shape[1] < 2:
        raise StrategyError(
            f"expected probabilities of shape ({n_rows}, classes >= 2) for {n_rows} pool rows, "
            f"found shape {proba.shape}"
        )
    if not np.isfinite(proba).all() or (proba < 0).any():
        raise StrategyError("probabilities must be finite and non-negative")
    return proba


def _predict_in_chunks(model: Any, features: Any) -> NDArray[np.float64]:
    n_rows = features.shape[0]
    in_memory = sp.issparse(features) or isinstance(features, np.ndarray)
    if n_rows <= PREDICT_CHUNK_ROWS and in_memory:
        return np.asarray(model.predict_proba(features), dtype=np.float64)
    # Rows read on demand (a round's feature cache view) are only ever sliced.
    rows = features.tocsr() if sp.issparse(features) else features
    parts = [
        model.predict_proba(rows[start : start + PREDICT_CHUNK_ROWS])
        for start in range(0, n_rows, PREDICT_CHUNK_ROWS)
    ]
    return np.asarray(np.vstack(parts), dtype=np.float64)


class ProbabilityView:
    """A stand-in classifier that answers ``predict_proba`` with known probabilities.

    modAL's scoring functions take a classifier and call ``predict_proba(X)``; the rounds
    already hold the pool's probabilities (computed once, in chunks), so this hands them over
    without a second pass. It answers only for the rows it was built for, and is multi-label
    (``multilabel_``) when the probabilities are marked so.
    """

    def __init__(self, proba: NDArray[np.float64], *, X_training: Any = None) -> None:
        self.proba = proba
        self.multilabel_ = is_multilabel(proba)
        self.classes_ = np.arange(proba.shape[1])
        # Read by modAL's ranked batch: distances to already labelled rows keep batches diverse.
        self.X_training = X_training
        self.on_transformed = False

    def predict_proba(self, X: Any, **_: Any) -> NDArray[np.float64]:
        if X.shape[0] != self.proba.shape[0]:
            raise StrategyError(
                f"probabilities are known for {self.proba.shape[0]} rows, asked for {X.shape[0]}"
            )
        return self.proba

    def transform_without_estimating(self, X: Any) -> Any:
        return X


# ------------------------------------------------------------------------------ selection


def top_n(scores: NDArray[np.floating[Any]], n: int, rng: np.random.Generator) -> Indices:
    """The ``n`` highest-scoring positions, best first; ties broken at random under ``rng``.

    Random tie-breaking matters: early models give many rows the same score, and taking them
    in file order would serve near-duplicates that happen to sit together.
    """
    order = rng.permutation(len(scores))
    shuffled = np.asarray(scores, dtype=np.float64)[order]
    shuffled = np.where(np.isnan(shuffled), -np.inf, shuffled)
    everything = n >= len(shuffled)
    head = np.arange(len(shuffled)) if everything else np.argpartition(-shuffled, n - 1)[:n]
    head = head[np.argsort(-shuffled[head], kind="stable")]
    return order[head].astype(np.intp)


def batch_first(scores: NDArray[np.floating[Any]], chosen: Indices) -> Scores:
    """Scores with the chosen rows lifted above all others, in the order chosen.

    Batch strategies pick rows that are not simply the top scores (diversity), yet the caller
    ranks the whole pool by score; lifting the batch keeps both views consistent.
    """
    out = np.asarray(scores, dtype=np.float64).copy()
    out[~np.isfinite(out)] = np.nan
    ceiling = float(np.nanmax(out)) if np.isfinite(out).any() else 0.0
    out = np.nan_to_num(out, nan=ceiling - 1.0)
    out[chosen] = ceiling + np.arange(len(chosen), 0, -1, dtype=np.float64)
    return out


def result(chosen: Indices, scores: NDArray[np.floating[Any]]) -> tuple[Indices, Scores]:
    """The ``(indices, scores)`` pair in the contract's types."""
    return np.asarray(chosen, dtype=np.intp), np.asarray(scores, dtype=np.float64)


def as_matrix(features: Any) -> Any:
    """``features`` as a matrix in memory: itself, or every row of a view that reads rows on
    demand (see the module docstring). For code that needs the whole, small, matrix."""
    if features is None or sp.issparse(features) or isinstance(features, np.ndarray):
        return features
    return features[np.arange(features.shape[0])]


def cap_rows(
    matrix: Any, limit: int, rng: np.random.Generator
) -> tuple[Any, NDArray[np.intp] | None]:
    """At most ``limit`` rows of ``matrix`` (a seeded sample, in memory), and which rows were
    kept (None: all of them)."""
    if matrix is None or matrix.shape[0] <= limit:
        return as_matrix(matrix), None
    keep = np.sort(rng.choice(matrix.shape[0], size=limit, replace=False))
    return matrix[keep], keep
