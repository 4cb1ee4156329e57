"""Which representation a round learns on: the fixed featurizers, and ``featurizer = "auto"``.

A workspace's ``featurizer`` setting names one featurizer (``tfidf``, ``sentence-embeddings``,
``hybrid``, ``hashing``) or ``auto``, the default. With ``auto`` each round compares a few
candidate (featurizer, classifier) pairs by stratified, seeded cross-validation on the human
labels so far, trains the winner, and records the choice, every candidate's score and the
reason in the round (``metrics["representation"]``; the Model page and ``status --json`` show
it). No single representation wins everywhere: embeddings win on topic data and with few
labels, n-grams where exact tokens decide (spam, codes), and the hybrid is rarely far from the
better of the two (docs/active_learning.md has the measurements).

Rules of the choice (:func:`select`):

* with fewer than :data:`MIN_CV_LABELS` human labels, or fewer than two classes with two labels
  each, cross-validation cannot tell the candidates apart: the round takes the prior,
  :data:`PRIOR` (the hybrid), and says so;
* otherwise each candidate's out-of-fold predictions over ``k`` stratified folds
  (``k = min(5, labels of the smallest class with two or more)``; at most
  :data:`CV_MAX_ROWS` labels, a stratified seeded sample beyond) give its macro-F1;
* another candidate replaces the prior only when it beats the prior's score by more than
  :data:`SWITCH_MARGIN`: with a few dozen labels the scores are noisy, and the prior is the
  safe choice on every data set measured.

Rounds never store hybrid rows: :class:`SideBySide` puts the cached tfidf and embedding rows
next to each other when rows are read.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeling.rounds.featurizers import (
    AUTO,
    HYBRID_SCALES,
    Matrix,
    side_by_side,
)
from labeling.rounds.learner import DEFAULT_CLASSIFIER, train

#: Below this many human labels, cross-validation is not attempted.
MIN_CV_LABELS = 10
#: At most this many labelled rows take part in the comparison (a stratified sample beyond).
CV_MAX_ROWS = 1_000
#: How much better (macro-F1) another candidate must be to replace the prior.
SWITCH_MARGIN = 0.02
MAX_FOLDS = 5


@dataclass(frozen=True)
class Candidate:
    """A (featurizer, classifier) pair a round can train."""

    featurizer: str
    classifier: str = DEFAULT_CLASSIFIER

    @property
    def name(self) -> str:
        return f"{self.featurizer} + {self.classifier}"


#: The candidates of ``auto``, the prior first.
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("hybrid"),
    Candidate("tfidf"),
    Candidate("sentence-embeddings"),
)
PRIOR = CANDIDATES[0]
#: The candidates when the embedding block is not ready (see :func:`candidates_for`).
NGRAM_ONLY: tuple[Candidate, ...] = (Candidate("tfidf"),)


@dataclass(frozen=True)
class Selection:
    """The representation a round trains on, and why."""

    featurizer: str
    classifier: str
    #: ``auto`` or the fixed featurizer the workspace names.
    setting: str
    reason: str
    #: Each candidate compared: featurizer, classifier, cv_macro_f1 (None: not compared).
    candidates: list[dict[str, Any]] = field(default_factory=list)
    n_labels: int = 0
    folds: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fixed(featurizer: str, classifier: str) -> Selection:
    """The selection of a workspace that names its featurizer."""
    return Selection(
        featurizer, classifier, featurizer, f"the workspace's featurizer setting is {featurizer!r}"
    )


def select(
    rows_of: Callable[[str], Matrix],
    y: Sequence[Any] | NDArray[Any],
    *,
    candidates: Sequence[Candidate] = CANDIDATES,
    seed: int = 0,
    note: str = "",
) -> Selection:
    """Pick a candidate by cross-validated macro-F1 on the labelled rows (see the module doc).

    ``rows_of(featurizer)`` gives the labelled rows in that featurizer's representation, in
    the order of ``y``. Deterministic for a given ``seed``. ``note`` is added to the reason
    (e.g. why some candidates are missing).
    """
    labels = np.asarray(y, dtype=object)
    prior = candidates[0]
    suffix = f"; {note}" if note else ""
    if len(candidates) == 1:
        return Selection(
            prior.featurizer,
            prior.classifier,
            AUTO,
            f"the only candidate{suffix}",
            [_row(prior, None)],
            len(labels),
        )
    folds = n_folds(labels)
    if folds < 2:
        reason = (
            f"{len(labels)} human labels are too few to compare candidates (cross-validation "
            f"needs {MIN_CV_LABELS} labels and two classes with two each): {prior.featurizer}, "
            f"the prior{suffix}"
        )
        rows = [_row(c, None) for c in candidates]
        return Selection(prior.featurizer, prior.classifier, AUTO, reason, rows, len(labels))
    picked = _sample(labels, seed)
    scores = {
        c: cv_macro_f1(rows_of(c.featurizer)[picked], labels[picked], c.classifier, folds, seed)
        for c in candidates
    }
    best = max(candidates, key=lambda c: (scores[c], -candidates.index(c)))
    if best != prior and scores[best] <= scores[prior] + SWITCH_MARGIN:
        reason, best = _reason(best, prior, scores, folds, len(picked), kept=True), prior
    else:
        reason = _reason(best, prior, scores, folds, len(picked), kept=False)
    reason += suffix
    rows = [_row(c, scores[c]) for c in candidates]
    return Selection(best.featurizer, best.classifier, AUTO, reason, rows, len(picked), folds)


def _reason(
    best: Candidate,
    prior: Candidate,
    scores: dict[Candidate, float],
    folds: int,
    n_labels: int,
    *,
    kept: bool,
) -> str:
    """Why the round trains what it trains, in words (``kept``: the prior despite ``best``)."""
    where = f"in {folds}-fold cross-validation on {n_labels} labels"
    if kept:
        return (
            f"{prior.featurizer}, the prior: {best.featurizer} scored {scores[best]:.3f} "
            f"macro-F1 {where}, not more than {SWITCH_MARGIN} above {prior.featurizer}'s "
            f"{scores[prior]:.3f}"
        )
    if best == prior:
        return f"{prior.featurizer} scored best ({scores[prior]:.3f} macro-F1 {where})"
    return (
        f"{best.featurizer} scored {scores[best]:.3f} macro-F1 {where}, more than "
        f"{SWITCH_MARGIN} above {prior.featurizer}'s {scores[prior]:.3f}"
    )


def _row(candidate: Candidate, score: float | None) -> dict[str, Any]:
    return {
        "featurizer": candidate.featurizer,
        "classifier": candidate.classifier,
        "cv_macro_f1": None if score is None else round(float(score), 4),
    }


def n_folds(labels: NDArray[Any]) -> int:
    """Folds for the comparison: up to 5, at most the smallest class with two labels or more;
    0 when labels are too few to compare anything."""
    _, counts = np.unique(labels.astype(str), return_counts=True)
    usable = counts[counts >= 2]
    if len(labels) < MIN_CV_LABELS or len(usable) < 2:
        return 0
    return int(min(MAX_FOLDS, usable.min()))


def _sample(labels: NDArray[Any], seed: int) -> NDArray[np.intp]:
    """All rows, or a stratified seeded sample of :data:`CV_MAX_ROWS` of them."""
    everything = np.arange(len(labels))
    if len(labels) <= CV_MAX_ROWS:
        return everything
    from sklearn.model_selection import train_test_split  # scikit-learn: ~1 s

    keep, _ = train_test_split(
        everything, train_size=CV_MAX_ROWS, random_state=seed, stratify=_strata(labels)
    )
    return np.sort(keep)


def _strata(labels: NDArray[Any]) -> NDArray[Any]:
    """Labels with singleton classes merged, so that a stratified split accepts them."""
    text = labels.astype(str)
    values, counts = np.unique(text, return_counts=True)
    rare = set(values[counts < 2].tolist())
    return np.array(["\0rare" if v in rare else v for v in text], dtype=object)


def cv_macro_f1(X: Matrix, y: NDArray[Any], classifier: str, folds: int, seed: int) -> float:
    """Macro-F1 of out-of-fold predictions (stratified, shuffled with ``seed``).

    A class with a single label is never held out (it stays in every training fold); it still
    counts in the macro average through the rows predicted as it.
    """
    from sklearn.metrics import f1_score  # scikit-learn: ~1 s
    from sklearn.model_selection import StratifiedKFold  # scikit-learn: ~1 s

    labels = y.astype(str)
    strata = _strata(labels)
    predicted = np.empty(len(labels), dtype=object)
    held = np.zeros(len(labels), dtype=bool)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # The merged "rare" stratum may hold fewer rows than folds; that is expected here.
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(np.zeros(len(labels)), strata))
    for train_rows, test_rows in splits:
        test_rows = test_rows[strata[test_rows] != "\0rare"]
        train_rows = np.union1d(train_rows, np.flatnonzero(strata == "\0rare"))
        if not len(test_rows) or len(np.unique(labels[train_rows])) < 2:
            continue
        model = train(X[train_rows], labels[train_rows], classifier=classifier, seed=seed)
        predicted[test_rows] = model.predict(X[test_rows])
        held[test_rows] = True
    if not held.any():
        return 0.0
    truth = labels[held]
    return float(
        f1_score(
            truth,
            predicted[held].astype(str),
            average="macro",
            labels=np.unique(truth),
            zero_division=0,
        )
    )


class SideBySide:
    """Rows of several feature blocks (cached views or matrices), scaled and side by side.

    Behaves like :class:`~labeling.rounds.feature_cache.CachedRows`: ``shape``, ``len``,
    ``rows[i]``, ``rows[a:b]``, ``rows[index_array]`` (a CSR matrix of those rows) and
    ``subset(rows)`` (a view, nothing read), so a round's strategies and scoring walk a big
    pool slice by slice whichever representation won.
    """

    ndim = 2
    sparse = True

    def __init__(self, parts: Sequence[Any], scales: Sequence[float] = HYBRID_SCALES) -> None:
        if len({part.shape[0] for part in parts}) != 1:
            raise ValueError("blocks put side by side must have the same rows")
        self.parts, self.scales = list(parts), list(scales)
        self.shape = (parts[0].shape[0], sum(part.shape[1] for part in parts))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> Matrix:
        if isinstance(rows, tuple):
            raise TypeError("SideBySide takes row indices only")
        if isinstance(rows, int | np.integer):
            rows = [int(rows)]
        return side_by_side([part[rows] for part in self.parts], self.scales)

    def subset(self, rows: Any) -> SideBySide:
        parts = [
            part.subset(rows) if hasattr(part, "subset") else part[rows] for part in self.parts
        ]
        return SideBySide(parts, self.scales)


def compose(featurizer: str, blocks: dict[str, Any]) -> Any:
    """The rows of ``featurizer`` from the blocks: a block itself, or the hybrid's two side by
    side (``blocks`` maps ``tfidf`` and ``sentence-embeddings`` to their rows)."""
    if featurizer == "hybrid":
        return SideBySide([blocks["tfidf"], blocks["sentence-embeddings"]], HYBRID_SCALES)
    return blocks[featurizer]


def blocks_needed(featurizer: str) -> list[str]:
    """The cached blocks a featurizer's rows come from."""
    if featurizer == AUTO:
        return [c.featurizer for c in CANDIDATES if c.featurizer != "hybrid"]
    if featurizer == "hybrid":
        return ["tfidf", "sentence-embeddings"]
    return [featurizer]
