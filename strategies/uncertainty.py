"""Baseline and single-model uncertainty strategies, scored by modAL's functions.

Pick ``least_confidence`` for a quick, robust default; ``margin`` when many classes make the
top two the only ones that matter; ``entropy`` when every class's share should count. On a
multi-label problem each measure reads the model's distribution over label sets
(:func:`strategies.multilabel.set_uncertainty`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from strategies.base import (
    Indices,
    ProbabilityView,
    Scores,
    as_rng,
    check_request,
    is_multilabel,
    probabilities,
    register,
    result,
    top_n,
)
from strategies.multilabel import set_uncertainty


@register("random")
def random(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """Uniformly random items: the baseline every other strategy must beat. Ignores the model."""
    n_rows = check_request(features, n)
    scores = as_rng(rng).random(n_rows)
    return result(top_n(scores, n, as_rng(0)), scores)


def _uncertainty_scores(model: Any, features: Any, measure: str, strategy: str) -> Scores:
    """One modAL measure over the pool, turned so that higher means less certain; on a
    multi-label problem the same measure over label sets."""
    proba = probabilities(model, features, strategy=strategy)
    if is_multilabel(proba):
        return set_uncertainty(proba, measure)
    # modAL pulls in torch: ~3 s to import
    from modAL.uncertainty import classifier_entropy, classifier_margin, classifier_uncertainty

    view = ProbabilityView(proba)
    if measure == "least_confidence":
        return np.asarray(classifier_uncertainty(view, features), dtype=np.float64)
    if measure == "margin":
        # modAL's margin is top-1 minus top-2 probability: small means unsure.
        return 1.0 - np.asarray(classifier_margin(view, features), dtype=np.float64)
    return np.asarray(classifier_entropy(view, features), dtype=np.float64)


def uncertainty_scores(model: Any, features: Any, measure: str = "least_confidence") -> Scores:
    """Scores of ``least_confidence``, ``margin`` or ``entropy`` for every pool row."""
    return _uncertainty_scores(model, features, measure, measure)


@register("least_confidence")
def least_confidence(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """Items whose most likely class is least likely: 1 - max probability (modAL).

    Multi-label: 1 - P(most likely set), labels independent (see ``set_uncertainty``).
    """
    check_request(features, n)
    scores = _uncertainty_scores(model, features, "least_confidence", "least_confidence")
    return result(top_n(scores, n, as_rng(rng)), scores)


@register("margin")
def margin(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """Items whose two most likely classes are closest: 1 - (p1 - p2) (modAL's margin).

    Multi-label: the same over the two most likely sets (see ``set_uncertainty``).
    """
    check_request(features, n)
    scores = _uncertainty_scores(model, features, "margin", "margin")
    return result(top_n(scores, n, as_rng(rng)), scores)


@register("entropy")
def entropy(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """Items with the most spread-out class distribution: Shannon entropy (modAL).

    Multi-label: the entropy of the set, the sum of per-label binary entropies.
    """
    check_request(features, n)
    scores = _uncertainty_scores(model, features, "entropy", "entropy")
    return result(top_n(scores, n, as_rng(rng)), scores)
