"""Multi-label scores: each label has its own P(present), and an answer is a set of labels.

Pick ``max_label_uncertainty`` to chase the one label the model is least sure of,
``mean_label_uncertainty`` to prefer items unsure on many labels at once, and
``cardinality_inconsistency`` for items whose expected number of labels is unusual (often the
ones the model misses whole labels on). The set readings of least confidence, margin and
entropy that every uncertainty strategy uses on multi-label input live here too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from strategies.base import (
    MULTILABEL_ONLY,
    STRATEGIES,
    Indices,
    Scores,
    StrategyError,
    as_rng,
    check_request,
    is_multilabel,
    probabilities,
    register,
    result,
    top_n,
)

SET_MEASURES = ("least_confidence", "margin", "entropy")


# ------------------------------------------------------------------------------ per-label scores


def label_uncertainty(proba: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per item and label, ``1 - |2p - 1|``: 1 at p = 0.5, 0 at p = 0 or 1.

    ``|2p - 1|`` is the label's margin (the gap between "present" and "absent"); one minus it
    turns "smallest margin" into "highest score", the strategies' "ask sooner".
    """
    return np.asarray(1.0 - np.abs(2.0 * np.asarray(proba) - 1.0), dtype=np.float64)


def binary_entropy(p: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """``-p log p - (1 - p) log(1 - p)`` elementwise, in nats, 0 at p = 0 and p = 1."""
    inside = (p > 0) & (p < 1)
    q = np.where(inside, p, 0.5)  # 0 log 0 = 0: the ends are set to 0 below
    return np.asarray(np.where(inside, -(q * np.log(q) + (1 - q) * np.log(1 - q)), 0.0))


def set_uncertainty(proba: NDArray[np.float64], measure: str) -> Scores:
    """``least_confidence``, ``margin`` or ``entropy`` of the model's distribution over sets.

    Per-label probabilities from one-vs-rest models treat labels as independent, so the
    probability of a set is the product over labels of ``p`` (label in it) or ``1 - p`` (not).
    Read on that distribution the single-label measures keep their meaning:

    - least confidence: ``1 - P(best set)``, where the best set holds each label with p > 0.5,
      ``P(best set) = prod_j max(p_j, 1 - p_j)``;
    - margin: ``1 - (P(best set) - P(second set))``; the second set flips the least certain
      label, so ``P(second) = P(best) * max_j min(p_j, 1 - p_j) / max(p_j, 1 - p_j)``;
    - entropy: the entropy of the set, ``sum_j H(p_j)`` (binary entropies, in nats as modAL's).

    With one label each equals the two-class measure; least confidence and margin stay in
    [0, 1] whatever the number of labels.
    """
    p = np.asarray(proba, dtype=np.float64)
    if measure == "entropy":
        return np.asarray(binary_entropy(p).sum(axis=1), dtype=np.float64)
    surer = np.maximum(p, 1.0 - p)
    best = np.exp(np.log(surer).sum(axis=1))
    if measure == "least_confidence":
        return np.asarray(1.0 - best, dtype=np.float64)
    if measure == "margin":
        flip = ((1.0 - surer) / surer).max(axis=1)
        return np.asarray(1.0 - best * (1.0 - flip), dtype=np.float64)
    raise StrategyError(f"expected a measure among {', '.join(SET_MEASURES)}, found {measure!r}")


def cardinality_gap(proba: NDArray[np.float64], labelled_cardinality: float) -> Scores:
    """``|sum_j p_j - c|``: how far each item's expected number of labels is from ``c``."""
    return np.asarray(np.abs(np.asarray(proba).sum(axis=1) - labelled_cardinality), np.float64)


# ------------------------------------------------------------------------------ input checks


def indicator_matrix(labels: Any, n_labels: int | None, *, strategy: str) -> NDArray[np.uint8]:
    """``labels`` as a 0/1 matrix (labelled rows, labels), checked; ``n_labels`` its width."""
    found = labels.toarray() if sp.issparse(labels) else np.asarray(labels)
    width = "labels" if n_labels is None else str(n_labels)
    if found.ndim != 2 or (n_labels is not None and found.shape[1] != n_labels):
        raise StrategyError(
            f"strategy {strategy!r} expected labelled_labels as an indicator matrix of shape "
            f"(labelled rows, {width}) for a multi-label problem, found shape {found.shape}"
        )
    if found.size and not np.isin(found, (0, 1)).all():
        raise StrategyError(
            f"strategy {strategy!r} expected labelled_labels of 0 and 1 (label absent, present), "
            f"found values {np.unique(found)[:5].tolist()}"
        )
    return found.astype(np.uint8)


def require_multilabel(proba: Any, strategy: str) -> None:
    """Refuse single-label input for a strategy that only has a meaning for label sets."""
    if is_multilabel(proba):
        return
    others = ", ".join(sorted(set(STRATEGIES) - MULTILABEL_ONLY))
    raise StrategyError(
        f"strategy {strategy!r} is for multi-label problems: give a model whose multilabel_ is "
        "true or probabilities wrapped with as_multilabel(); for single-label problems use "
        f"one of {others}"
    )


def multilabel_probabilities(model: Any, features: Any, strategy: str) -> NDArray[np.float64]:
    """The pool's per-label probabilities, refused unless the problem is marked multi-label."""
    proba = probabilities(model, features, strategy=strategy)
    require_multilabel(proba, strategy)
    return proba


# ------------------------------------------------------------------------------ strategies


@register("max_label_uncertainty", multilabel_only=True)
def max_label_uncertainty(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """Items whose least certain label is least certain: ``max_j (1 - |2 p_j - 1|)``.

    The smallest per-label margin decides: the "max" way of combining per-label scores that
    Esuli & Sebastiani (2009) compare; compare the max loss strategy of Li, Wang & Sung (2004).
    """
    check_request(features, n)
    proba = multilabel_probabilities(model, features, "max_label_uncertainty")
    scores = label_uncertainty(proba).max(axis=1)
    return result(top_n(scores, n, as_rng(rng)), scores)


@register("mean_label_uncertainty", multilabel_only=True)
def mean_label_uncertainty(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """Items unsure on many labels: ``mean_j (1 - |2 p_j - 1|)``, one minus the mean margin.

    The "average" way of combining per-label scores that Esuli & Sebastiani (2009) compare;
    compare the mean max loss strategy of Li, Wang & Sung (2004).
    """
    check_request(features, n)
    proba = multilabel_probabilities(model, features, "mean_label_uncertainty")
    scores = label_uncertainty(proba).mean(axis=1)
    return result(top_n(scores, n, as_rng(rng)), scores)


@register("cardinality_inconsistency", multilabel_only=True)
def cardinality_inconsistency(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """Items whose expected number of labels is furthest from the labelled items' mean.

    Score ``|sum_j p_j - c|``, ``c`` the mean number of labels per labelled item (the label
    cardinality). Label cardinality inconsistency is Li & Guo's (2013) measure, there with
    the count of labels predicted present; the expected count ``sum_j p_j`` keeps the ranking
    smooth. ``labelled_labels`` is the indicator matrix (labelled rows, labels) of 0/1, the
    empty set a row of zeros; without labelled rows there is no ``c`` and the strategy refuses.
    """
    check_request(features, n)
    proba = multilabel_probabilities(model, features, "cardinality_inconsistency")
    if labelled_labels is None or np.shape(labelled_labels)[0] == 0:
        raise StrategyError(
            "strategy 'cardinality_inconsistency' needs labelled_labels (an indicator matrix of "
            "the labelled items' sets) to know their mean number of labels; found none"
        )
    labels = indicator_matrix(labelled_labels, proba.shape[1], strategy="cardinality_inconsistency")
    scores = cardinality_gap(proba, float(labels.sum(axis=1).mean()))
    return result(top_n(scores, n, as_rng(rng)), scores)
