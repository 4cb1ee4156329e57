"""Label models for multi-label data: one binary label model per label.

In ``L`` a vote is a label index (present), ``n_labels + index`` (absent, see
:func:`weak_supervision.lf.absent`) or ``ABSTAIN``. For each label, the LFs that voted on it
give a binary matrix (1 present, 0 absent, -1 abstain) and get their own label model, so an
LF's accuracy is learnt per label. Where both the LabelModel and majority vote apply, the one
with more right answers on the reference sets (gold, else people's) is kept, per label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from weak_supervision.errors import LabelModelError
from weak_supervision.label_model import MODELS, estimate_class_balance, fit_label_model
from weak_supervision.lf import ABSTAIN

#: The model of a label no LF voted on.
UNCOVERED = "none"


@dataclass(frozen=True)
class LabelChoice:
    """Which model labels one label, and why.

    ``snorkel_correct`` and ``majority_correct`` count right present/absent calls on the
    ``n_reference`` reference rows both models cover (``None`` when they were not compared).
    """

    label: str
    model: str  # "snorkel", "majority" or "none"
    message: str | None
    lfs: int  # LFs that voted on this label
    one_sided: bool  # every vote on this label said the same (present, or absent)
    covered: int  # rows with a vote on this label
    n_reference: int
    snorkel_correct: int | None
    majority_correct: int | None


@dataclass
class WeakSets:
    """Weak label sets for the rows of ``L``.

    ``probabilities[i, k]`` is P(row i has label k), NaN where no LF voted on label k there.
    ``indicator`` holds the weak set (labels at P >= 0.5; an uncovered label is taken as
    absent); ``has_set`` marks the rows with at least one covered label. ``confidence`` is the
    probability the set is right on the covered labels, read as a round's prediction is: the
    product over covered labels of max(p, 1 - p); 0 where ``has_set`` is False.
    """

    probabilities: np.ndarray
    indicator: np.ndarray
    has_set: np.ndarray
    confidence: np.ndarray
    choices: list[LabelChoice]

    @property
    def coverage(self) -> float:
        """Share of rows with a weak set."""
        return float(self.has_set.mean()) if self.has_set.size else 0.0


def binary_votes(L: np.ndarray, index: int, n_labels: int) -> np.ndarray:
    """The votes on one label, as a binary ``L`` over the LFs that voted on it:
    1 present, 0 absent, -1 abstain (an LF voting another label abstains here)."""
    L = np.asarray(L)
    present = np.equal(L, index)
    gone = np.equal(L, n_labels + index)
    used = (present | gone).any(axis=0)
    out = np.full((L.shape[0], int(used.sum())), ABSTAIN, dtype=np.int64)
    out[present[:, used]] = 1
    out[gone[:, used]] = 0
    return out


def fit_label_models_per_label(
    L: np.ndarray,
    labels: tuple[str, ...] | list[str],
    *,
    reference: np.ndarray | None = None,
    model: str = "auto",
    seed: int = 0,
) -> WeakSets:
    """Fit a binary label model per label and give each row its weak set.

    Parameters
    ----------
    L
        Votes, rows x LFs: ``k`` present, ``n_labels + k`` absent, ``-1`` abstain.
    labels
        The label names, in the order of ``L``'s codes.
    reference
        Known sets to judge the models by, ``(rows, n_labels)``: 1 has, 0 has not, -1 unknown
        (gold where there is gold, else people's answers). Its rows' answers also give each
        label's class balance once there are enough.
    model
        ``auto`` (the LabelModel where at least 3 LFs voted on the label, unless it is
        one-sided or loses to majority vote on ``reference``), ``snorkel`` (the same, but no
        comparison) or ``majority``.
    """
    if model not in MODELS:
        raise LabelModelError(f"unknown label model {model!r}, expected one of {list(MODELS)}")
    labels = tuple(labels)
    n_labels = len(labels)
    L = _check_votes(L, n_labels)
    if reference is None:
        reference = np.full((L.shape[0], n_labels), ABSTAIN, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    if reference.shape != (L.shape[0], n_labels):
        raise LabelModelError(
            f"reference must have shape {(L.shape[0], n_labels)}, found {reference.shape}"
        )
    probabilities = np.full((L.shape[0], n_labels), np.nan)
    choices = []
    for k, label in enumerate(labels):
        p, choice = _fit_one_label(
            binary_votes(L, k, n_labels), label, reference[:, k], model, seed
        )
        probabilities[:, k] = p
        choices.append(choice)
    covered = ~np.isnan(probabilities)
    has_set = covered.any(axis=1)
    indicator = (np.nan_to_num(probabilities, nan=0.0) >= 0.5).astype(np.uint8)
    sure = np.where(covered, np.maximum(probabilities, 1 - probabilities), 1.0)
    confidence = np.where(has_set, sure.prod(axis=1), 0.0)
    return WeakSets(probabilities, indicator, has_set, confidence, choices)


def _fit_one_label(
    B: np.ndarray, label: str, reference: np.ndarray, model: str, seed: int
) -> tuple[np.ndarray, LabelChoice]:
    """P(present) per row for one label (NaN where no LF voted on it) and the choice made."""
    covered = (B != ABSTAIN).any(axis=1)
    p = np.full(B.shape[0], np.nan)
    voted = B[B != ABSTAIN]
    one_sided = voted.size > 0 and bool((voted == voted[0]).all())
    rows = covered & (reference != ABSTAIN)
    if not covered.any():
        choice = LabelChoice(
            label, UNCOVERED, "no LF voted on this label", B.shape[1], False, 0, 0, None, None
        )
        return p, choice
    majority = fit_label_model(B, 2, model="majority").probabilities[:, 1]
    majority_right = _right(majority, reference, rows)
    chosen, used, message, snorkel_right = majority, "majority", None, None
    if model != "majority" and one_sided:
        # With every vote on one side, LFs never disagree: the LabelModel has nothing to
        # learn their accuracies from, and majority vote says what the LFs say.
        side = "present" if voted[0] == 1 else "absent"
        message = f"its LFs only vote {side}: majority vote (the LabelModel needs both sides)"
    elif model != "majority":
        balance = estimate_class_balance(reference, 2)
        weak = fit_label_model(B, 2, model="snorkel", class_balance=balance, seed=seed)
        message = weak.message  # set when it could not run (fewer than 3 LFs voted)
        if weak.model == "snorkel":
            snorkel = weak.probabilities[:, 1]
            snorkel_right = _right(snorkel, reference, rows)
            if model == "auto" and snorkel_right < majority_right:
                message = (
                    f"the LabelModel was right on {snorkel_right} of {int(rows.sum())} "
                    f"reference items, majority vote on {majority_right}: majority vote used"
                )
            else:
                chosen, used = snorkel, "snorkel"
    p[covered] = chosen[covered]
    choice = LabelChoice(
        label=label,
        model=used,
        message=message,
        lfs=B.shape[1],
        one_sided=one_sided,
        covered=int(covered.sum()),
        n_reference=int(rows.sum()),
        snorkel_correct=snorkel_right,
        majority_correct=majority_right,
    )
    return p, choice


def _right(p_present: np.ndarray, reference: np.ndarray, rows: np.ndarray) -> int:
    """Rows of ``rows`` where P >= 0.5 agrees with the reference (1 has, 0 has not)."""
    return int(((p_present[rows] >= 0.5) == (reference[rows] == 1)).sum())


def _check_votes(L: np.ndarray, n_labels: int) -> np.ndarray:
    if n_labels < 2:
        raise LabelModelError(f"expected at least 2 labels, found {n_labels}")
    matrix = np.asarray(L)
    if matrix.ndim != 2:
        raise LabelModelError(f"L must be a 2-d matrix (rows x LFs), found shape {matrix.shape}")
    if matrix.size and not np.issubdtype(matrix.dtype, np.integer):
        raise LabelModelError(f"L must hold integers, found dtype {matrix.dtype}")
    matrix = matrix.astype(np.int64, copy=False)
    if matrix.size and (matrix.min() < ABSTAIN or matrix.max() >= 2 * n_labels):
        raise LabelModelError(
            f"L values must be -1 (abstain), 0..{n_labels - 1} (present) or "
            f"{n_labels}..{2 * n_labels - 1} (absent), found {matrix.min()}..{matrix.max()}"
        )
    return matrix
