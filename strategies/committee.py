"""Query by committee: ask where models trained on different samples of the labels disagree.

Pick ``qbc`` when a single model is confidently wrong in regions the labels barely cover: its
own probabilities cannot show that, the spread of a bootstrap committee can. It costs one
training per member each round.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from strategies.base import (
    Indices,
    Scores,
    StrategyError,
    as_multilabel,
    as_rng,
    check_request,
    is_multilabel,
    probabilities,
    register,
    result,
    seed_from,
    top_n,
)
from strategies.multilabel import binary_entropy, indicator_matrix, set_uncertainty

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
    class the labels contain. Multi-label (``model`` marked so): ``labelled_labels`` is an
    indicator matrix, the default member is one-vs-rest, and each bootstrap keeps every label
    present and absent somewhere where the labels have it so (:func:`bootstrap_label_sets`).
    """
    # scikit-learn: ~1 s to import; loaded when first used
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from threadpoolctl import threadpool_limits

    multilabel = is_multilabel(model)
    labels = committee_labels(model, labelled_features, labelled_labels)
    base = model if hasattr(model, "get_params") and hasattr(model, "fit") else None
    if base is None:  # a probability matrix: logistic regression, one per label if multi-label
        base = LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000)
        base = OneVsRestClassifier(base) if multilabel else base
    members = []
    by_class = [] if multilabel else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for _ in range(size):
        if multilabel:
            sample = bootstrap_label_sets(labels, rng)
        else:
            sample = np.concatenate([rng.choice(rows, size=len(rows)) for rows in by_class])
        member = clone(base)
        if "random_state" in member.get_params():
            member.set_params(random_state=seed_from(rng))
        # One BLAS thread: small solves only lose to thread synchronisation (see learner.train).
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            # A label no labelled item has (or every one has): one-vs-rest predicts it constant.
            warnings.filterwarnings("ignore", message="Label .* is present in all training")
            members.append(member.fit(labelled_features[sample], labels[sample]))
    return members


def committee_labels(model: Any, labelled_features: Any, labelled_labels: Any) -> NDArray[Any]:
    """The labels a committee learns from, checked: one per labelled row, two kinds at least
    (classes; or, multi-label, an indicator matrix with some label present and some absent)."""
    if labelled_features is None or labelled_labels is None:
        raise StrategyError(
            "strategy 'qbc' needs labelled_features and labelled_labels to train its committee"
        )
    multilabel = is_multilabel(model)
    if multilabel:
        labels = indicator_matrix(labelled_labels, _label_count(model), strategy="qbc")
    else:
        labels = np.asarray(labelled_labels)
    if labels.shape[0] != labelled_features.shape[0]:
        raise StrategyError(
            f"expected one label per labelled row: {labelled_features.shape[0]} rows, "
            f"found {labels.shape[0]} labels"
        )
    n_classes = len(np.unique(labels))
    if n_classes < 2:
        raise StrategyError(
            "qbc needs labelled sets with some label present and some absent"
            if multilabel
            else f"qbc needs labels of at least 2 classes, found {n_classes}"
        )
    return labels


def _label_count(model: Any) -> int | None:
    """How many labels a multi-label model or matrix has, where it says."""
    if hasattr(model, "predict_proba"):
        classes = getattr(model, "classes_", None)
        return None if classes is None else len(classes)
    return int(np.shape(model)[1])


def bootstrap_label_sets(labels: NDArray[np.uint8], rng: np.random.Generator) -> Indices:
    """A bootstrap of the rows of an indicator matrix, topped up so that every label present
    (absent) in some row of ``labels`` is present (absent) in some row drawn: a member that
    never saw a label would vote it absent everywhere and look like disagreement."""
    n_rows = labels.shape[0]
    sample = rng.choice(n_rows, size=n_rows)
    extra = []
    for value in (1, 0):
        missing = (labels == value).any(axis=0) & ~(labels[sample] == value).any(axis=0)
        for label in np.flatnonzero(missing):
            extra.append(rng.choice(np.flatnonzero(labels[:, label] == value)))
    return np.concatenate([sample, np.asarray(extra, dtype=np.intp)]).astype(np.intp)


def label_vote_entropy(member_proba: Sequence[NDArray[np.float64]]) -> Scores:
    """Per label, the entropy of the members' present/absent votes (present: p > 0.5), averaged
    over labels: vote entropy (Dagan & Engelson 1995, modAL's ``vote_entropy``) label by label."""
    share = np.mean([np.asarray(p) > 0.5 for p in member_proba], axis=0)
    return np.asarray(binary_entropy(share).mean(axis=1), dtype=np.float64)


def committee_label_scores(members: Sequence[Any], features: Any) -> Scores:
    """qbc's multi-label score: :func:`label_vote_entropy`, ties to the committee's least
    confidence over label sets."""
    member_proba = [as_multilabel(probabilities(m, features, strategy="qbc")) for m in members]
    mean_proba = np.mean(member_proba, axis=0)
    tie_break = TIE_BREAK_WEIGHT * set_uncertainty(mean_proba, "least_confidence")
    return label_vote_entropy(member_proba) + tie_break


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
    Multi-label: members vote each label present or absent, the score is the mean over labels
    of the vote entropy, and ties go to the committee's least confidence over label sets.
    """
    # modAL pulls in torch: ~3 s to import
    from modAL.disagreement import vote_entropy

    check_request(features, n)
    generator = as_rng(rng)
    members = bootstrap_committee(model, labelled_features, labelled_labels, generator)
    if is_multilabel(model):
        scores = committee_label_scores(members, features)
        return result(top_n(scores, n, generator), scores)
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
