"""Query by committee: ask where models trained on different samples of the labels disagree.

Pick ``qbc`` when a single model is confidently wrong in regions the labels barely cover: its
own probabilities cannot show that, the spread of a bootstrap committee can. It costs one
training per member each round.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from strategies.base import (
    Indices,
    Scores,
    StrategyError,
    as_rng,
    check_request,
    probabilities,
    register,
    result,
    seed_from,
    top_n,
)

COMMITTEE_SIZE = 5
# Breaks ties between rows with equal vote entropy (few distinct values with 5 members) by the
# committee's mean uncertainty; small enough never to reorder different vote entropies.
TIE_BREAK_WEIGHT = 1e-3


class _VoteView:
    """The part of a modAL committee that ``vote_entropy`` reads, over votes already cast."""

    def __init__(self, votes: NDArray[np.intp], n_classes: int) -> None:
        self.votes = votes
        self.classes_ = np.arange(n_classes)

    def __len__(self) -> int:
        return int(self.votes.shape[1])

    def vote(self, X: Any, **_: Any) -> NDArray[np.intp]:
        return self.votes


def bootstrap_committee(
    model: Any,
    labelled_features: Any,
    labelled_labels: Any,
    rng: np.random.Generator,
    *,
    size: int = COMMITTEE_SIZE,
) -> list[Any]:
    """``size`` copies of the model, each fitted on a per-class bootstrap of the labels.

    Resampling within each class keeps every class in every member, so no member is blind to a
    class the labels contain.
    """
    # scikit-learn: ~1 s to import; loaded when first used
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    if labelled_features is None or labelled_labels is None:
        raise StrategyError(
            "strategy 'qbc' needs labelled_features and labelled_labels to train its committee"
        )
    labels = np.asarray(labelled_labels)
    if labels.shape[0] != labelled_features.shape[0]:
        raise StrategyError(
            f"expected one label per labelled row: {labelled_features.shape[0]} rows, "
            f"found {labels.shape[0]} labels"
        )
    classes = np.unique(labels)
    if len(classes) < 2:
        raise StrategyError(f"qbc needs labels of at least 2 classes, found {len(classes)}")
    if hasattr(model, "get_params") and hasattr(model, "fit"):
        base = model
    else:
        base = LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000)
    members = []
    by_class = [np.flatnonzero(labels == c) for c in classes]
    for _ in range(size):
        sample = np.concatenate([rng.choice(rows, size=len(rows)) for rows in by_class])
        member = clone(base)
        if "random_state" in member.get_params():
            member.set_params(random_state=seed_from(rng))
        # One BLAS thread: small solves only lose to thread synchronisation (see learner.train).
        with threadpool_limits(limits=1, user_api="blas"):
            members.append(member.fit(labelled_features[sample], labels[sample]))
    return members


@register("qbc")
def qbc(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """Vote entropy (modAL) over a bootstrap committee of the model (5 members).

    ``model`` gives the estimator to copy (a probability matrix falls back to logistic
    regression); ``labelled_features`` and ``labelled_labels`` are what the members learn from.
    """
    # modAL pulls in torch: ~3 s to import
    from modAL.disagreement import vote_entropy

    check_request(features, n)
    generator = as_rng(rng)
    members = bootstrap_committee(model, labelled_features, labelled_labels, generator)
    classes = np.unique(np.asarray(labelled_labels))
    member_proba = [probabilities(m, features, strategy="qbc") for m in members]
    votes = np.stack([p.argmax(axis=1) for p in member_proba], axis=1)
    mean_proba = np.mean(member_proba, axis=0)
    scores = TIE_BREAK_WEIGHT * (1.0 - mean_proba.max(axis=1))
    # modAL's vote entropy counts votes row by row in Python; only rows where members disagree
    # can score above zero, so only those are handed to it.
    split = np.flatnonzero((votes != votes[:, :1]).any(axis=1))
    if len(split):
        view = _VoteView(votes[split], len(classes))
        scores[split] += np.asarray(vote_entropy(view, features[split]), dtype=np.float64)
    return result(top_n(scores, n, generator), scores)
