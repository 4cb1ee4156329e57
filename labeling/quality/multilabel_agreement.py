"""Agreement between people who answer with sets of labels: the MASI distance, Krippendorff's
alpha over it, and per-label Cohen's kappa.

The single-label figures are in :mod:`labeling.quality.agreement`; these take the same units
(one list of answers per item) and pair annotators the same way, with sets for answers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations
from math import comb
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sqlmodel import Session, col, select

from labeling.quality.agreement import cohen_kappa
from labeling.quality.multilabel import gold_set_accuracy, indicator
from labeling.quality.sources import answers_by_item, gold_checks, people_names, rounded
from labeling.store.labelsets import decode
from labeling.store.models import Annotation, Item

# Annotators are keyed as the caller keys them (store ids, or names): one kind per call.
Rater = TypeVar("Rater", int, str)

# Sets of up to this many labels have their sub-sets counted (2**size each) to sum distances
# over all pairs of answers without comparing every pair; larger sets, rare in practice, are
# compared with every distinct answer directly.
SUBSET_COUNTING_MAX = 10
# Distance matrices are built in blocks of at most this many cells.
_BLOCK_CELLS = 1 << 22


def masi_distance(a: frozenset[str], b: frozenset[str]) -> float:
    """MASI distance (Passonneau 2006): 1 - Jaccard(a, b) x M.

    M is 1 when the sets are equal, 2/3 when one is a subset of the other, 1/3 when they
    overlap otherwise, 0 when disjoint. Two empty sets are equal (distance 0); an empty set
    against a non-empty one is at distance 1.
    """
    if a == b:
        return 0.0
    inter = len(a & b)
    if inter == 0:
        return 1.0
    monotonicity = 2 / 3 if a <= b or b <= a else 1 / 3
    return 1.0 - inter / len(a | b) * monotonicity


def masi_distances(A: ArrayLike, B: ArrayLike) -> NDArray[np.float64]:
    """MASI distance between every row of indicator matrix ``A`` and every row of ``B``."""
    a = np.asarray(A, dtype=np.int64)
    b = np.asarray(B, dtype=np.int64)
    return 1.0 - _masi_similarity(a @ b.T, a.sum(axis=1)[:, None], b.sum(axis=1)[None, :])


def krippendorff_alpha_sets(units: Sequence[Sequence[frozenset[str]]]) -> float | None:
    """Krippendorff's alpha over units of label sets, with the MASI distance.

    A unit is one item's answers, one set per annotator. Units with fewer than two answers are
    not pairable and are left out. With n pairable answers, m_u of them in unit u and
    d = :func:`masi_distance`: alpha = 1 - D_o / D_e, where D_o = (1/n) sum_u 1/(m_u - 1)
    sum_{i != j in u} d(i, j) (ordered pairs within units) and D_e = 1/(n (n - 1)) sum_{i != j}
    d(i, j) over every ordered pair of pairable answers. None when no unit is pairable or every
    pairable answer is the same set (D_e = 0), as the single-label ``krippendorff_alpha``.
    """
    paired = [unit for unit in units if len(unit) >= 2]
    distinct: dict[frozenset[str], int] = {}
    coded = [[distinct.setdefault(s, len(distinct)) for s in unit] for unit in paired]
    if len(distinct) < 2:
        return None
    counts = np.bincount([code for unit in coded for code in unit], minlength=len(distinct))
    n = int(counts.sum())
    expected = all_pairs_distance(list(distinct), counts) / (n * (n - 1))
    first, second, weight = [], [], []
    for unit in coded:
        for x, y in combinations(unit, 2):
            if x != y:
                first.append(x)
                second.append(y)
                weight.append(2.0 / (len(unit) - 1))  # both orders of the pair
    observed = 0.0
    if first:
        universe = sorted({label for labels_given in distinct for label in labels_given})
        S = indicator(list(distinct), universe).astype(np.int64)
        a, b = S[first], S[second]
        d = 1.0 - _masi_similarity((a & b).sum(axis=1), a.sum(axis=1), b.sum(axis=1))
        observed = float(np.dot(d, weight)) / n
    return 1.0 - observed / expected


def all_pairs_distance(sets: Sequence[frozenset[str]], counts: ArrayLike) -> float:
    """Sum of MASI distances over every ordered pair of answers, answer ``k`` being ``sets[k]``
    given ``counts[k]`` times (``sets`` distinct): D_e's numerator, without comparing pairs.

    MASI depends only on the two sizes and the size of the intersection, so the sum needs how
    many pairs have sizes (p, q) and share k labels. Counting, for every set T, the answers of
    each size that contain T gives sum over pairs of C(k, j) for every j (pairs that share T);
    the exact counts per k follow by binomial inversion. Work: 2**size per distinct set, so
    sets above :data:`SUBSET_COUNTING_MAX` labels are compared with every set directly.
    """
    weights = np.asarray(counts, dtype=np.float64)
    small = [k for k, s in enumerate(sets) if len(s) <= SUBSET_COUNTING_MAX]
    large = [k for k, s in enumerate(sets) if len(s) > SUBSET_COUNTING_MAX]
    total = _subset_counting_sum([sets[k] for k in small], weights[small].astype(np.int64))
    if large:
        universe = sorted({label for s in sets for label in s})
        S = indicator(sets, universe)
        with_all = _direct_sum(S[large], weights[large], S, weights)
        among = _direct_sum(S[large], weights[large], S[large], weights[large])
        # Ordered pairs with a large set: (large, any) + (small, large) = 2 (large, any) - both.
        total += 2 * with_all - among
    return total


def _subset_counting_sum(sets: list[frozenset[str]], counts: NDArray[np.int64]) -> float:
    """:func:`all_pairs_distance` over small sets, by counting the sub-sets they share."""
    if not sets:
        return 0.0
    sizes = 1 + max(len(s) for s in sets)
    # contains[j][T] -> per size p, how many answers of size p contain T (|T| = j).
    # Plain lists: this loop runs 2**size times per set, and a list item adds faster than numpy's.
    contains: list[dict[tuple[str, ...], list[int]]] = [{} for _ in range(sizes)]
    for s, count in zip(sets, counts.tolist(), strict=True):
        ordered = sorted(s)
        size = len(ordered)
        for j in range(size + 1):
            by_part = contains[j]
            for part in combinations(ordered, j):
                row = by_part.get(part)
                if row is None:
                    row = by_part[part] = [0] * sizes
                row[size] += count
    # moments[j][p, q] = sum over ordered pairs of sizes p, q of C(k, j), k shared labels.
    moments = []
    for by_part in contains:
        M = np.array(list(by_part.values()), dtype=np.int64).reshape(-1, sizes)
        moments.append(M.T @ M)
    similarity = 0.0
    p, q = np.meshgrid(np.arange(sizes), np.arange(sizes), indexing="ij")
    for k in range(sizes):
        pairs = sum((-1) ** (j - k) * comb(j, k) * moments[j] for j in range(k, sizes))
        shared = np.full_like(p, k)
        similarity += float((pairs * _masi_similarity(shared, p, q)).sum())
    n = int(counts.sum())
    return float(n * n) - similarity


def _direct_sum(
    A: NDArray[np.uint8], a_counts: NDArray[np.float64], B: NDArray[np.uint8], b_counts: Any
) -> float:
    """Sum of counts x counts x MASI distance over every (row of A, row of B), by blocks."""
    total = 0.0
    block = max(1, _BLOCK_CELLS // max(1, len(B)))
    for start in range(0, len(A), block):
        part = masi_distances(A[start : start + block], B)
        total += float(a_counts[start : start + block] @ part @ b_counts)
    return total


def _masi_similarity(inter: ArrayLike, size_a: ArrayLike, size_b: ArrayLike) -> NDArray[Any]:
    """Jaccard x M from the sizes of the intersections and of the two sets (broadcast);
    impossible combinations (k above a size) come out as 0."""
    k, p, q = np.asarray(inter), np.asarray(size_a), np.asarray(size_b)
    union = p + q - k
    jaccard = np.where(union > 0, k / np.maximum(union, 1), 1.0)
    equal = (k == p) & (k == q)
    nested = (k == p) | (k == q)
    monotonicity = np.where(equal, 1.0, np.where(nested, 2 / 3, np.where(k > 0, 1 / 3, 0.0)))
    return np.where((k <= p) & (k <= q), jaccard * monotonicity, 0.0)


def per_label_kappa(
    answers: Mapping[Any, Mapping[Rater, frozenset[str]]], labels: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per label, Cohen's kappa of every pair of annotators on the label's presence.

    ``answers``: item -> {annotator: set}, people's current answers (the shape of
    :func:`~labeling.quality.sources.answers_by_item`). Pairs as the single-label agreement
    pairs them: each two annotators over the items both answered. Per label, ``pairs`` holds
    ``{"a", "b", "n", "kappa", "observed"}`` (annotators as keyed in ``answers``; kappa 1.0
    when both always say the same, as :func:`~labeling.quality.agreement.cohen_kappa`),
    ``kappa`` their mean weighted by items (None without pairs), ``present`` how many of those
    answers hold the label.
    """
    shared: dict[tuple[Rater, Rater], tuple[list[frozenset[str]], list[frozenset[str]]]]
    shared = defaultdict(lambda: ([], []))
    for by_person in answers.values():
        for a, b in combinations(sorted(by_person), 2):
            first, second = shared[(a, b)]
            first.append(by_person[a])
            second.append(by_person[b])
    # Per pair of annotators, the two sides' answers as indicator matrices, read once.
    matrices = {
        pair: (indicator(first, labels).astype(bool), indicator(second, labels).astype(bool))
        for pair, (first, second) in sorted(shared.items())
    }
    found: dict[str, dict[str, Any]] = {}
    for j, label in enumerate(labels):
        pairs: list[dict[str, Any]] = []
        weighted: list[tuple[float, int]] = []
        present = 0
        for (a, b), (X, Y) in matrices.items():
            x, y = X[:, j], Y[:, j]
            present += int(x.sum() + y.sum())
            kappa = cohen_kappa(np.where(x, "1", "0").tolist(), np.where(y, "1", "0").tolist())
            n = len(x)
            pairs.append(
                {"a": a, "b": b, "n": n, "kappa": kappa, "observed": float((x == y).mean())}
            )
            if kappa is not None:
                weighted.append((kappa, n))
        mean = sum(k * n for k, n in weighted) / sum(n for _, n in weighted) if weighted else None
        found[label] = {"kappa": mean, "pairs": pairs, "present": present}
    return found


def gold_set_accuracy_of(session: Session, labels: tuple[str, ...]) -> dict[str, Any]:
    """Gold figures of a multi-label workspace: exact matches (``accuracy``) and the mean
    Jaccard of people's sets against gold sets (labeling.quality.multilabel)."""
    people = people_names(session)
    rows = session.exec(
        select(Annotation.annotator_id, Annotation.label, Annotation.created_at, Item.gold_label)
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(*gold_checks(labels, multilabel=True))
    ).all()
    return gold_set_accuracy(
        (people[who], created, decode(label), decode(gold))
        for who, label, created, gold in rows
        if who in people and label is not None and gold is not None
    )


def set_agreement(
    session: Session,
    labels: tuple[str, ...],
    *,
    answers: dict[int, dict[int, str]] | None = None,
) -> dict[str, Any]:
    """The agreement figures for sets: Krippendorff's alpha with the MASI distance, per label
    Cohen's kappa on presence, and per pair of people their exact-match share (``observed``)
    and the mean of their per-label kappas (``kappa``). ``per_class``: of the pairs of answers
    where at least one holds the label, the share where both do (as for single labels)."""
    people = people_names(session)
    if answers is None:
        answers = answers_by_item(session, "pool")
    shared = {
        item: {who: decode(value) for who, value in by.items() if who in people}
        for item, by in answers.items()
        if len(by) >= 2
    }
    shared = {item: by for item, by in shared.items() if len(by) >= 2}
    units = [list(by.values()) for by in shared.values()]
    per_label = per_label_kappa(shared, labels)
    return {
        "items": len(units),
        "alpha": rounded(krippendorff_alpha_sets(units)),
        "alpha_items": len(units),
        "alpha_distance": "masi",
        "pairs": _pair_figures(shared, per_label, labels, people),
        "confusion": None,
        "per_class": _per_class(units, labels),
        "per_label_kappa": {label: rounded(per_label[label]["kappa"]) for label in labels},
    }


def _pair_figures(
    shared: dict[int, dict[int, frozenset[str]]],
    per_label: dict[str, dict[str, Any]],
    labels: tuple[str, ...],
    people: dict[int, str],
) -> list[dict[str, Any]]:
    """Per pair of people: the items both answered, the mean of their per-label kappas and
    the share of those items where their sets are the same."""
    pairs: dict[tuple[int, int], dict[str, Any]] = {}
    for label in labels:
        for pair in per_label[label]["pairs"]:
            entry = pairs.setdefault(
                (pair["a"], pair["b"]), {"n": pair["n"], "kappas": [], "same": 0}
            )
            if pair["kappa"] is not None:
                entry["kappas"].append(pair["kappa"])
    for by_person in shared.values():
        for a, b in combinations(sorted(by_person), 2):
            pairs[(a, b)]["same"] += by_person[a] == by_person[b]
    return [
        {
            "a": people[a],
            "b": people[b],
            "n": entry["n"],
            "kappa": rounded(sum(entry["kappas"]) / len(entry["kappas"]))
            if entry["kappas"]
            else None,
            "observed": rounded(entry["same"] / entry["n"]),
        }
        for (a, b), entry in sorted(pairs.items())
    ]


def _per_class(
    units: list[list[frozenset[str]]], labels: tuple[str, ...]
) -> dict[str, float | None]:
    """Per label, of the pairs of answers where at least one holds it, the share where both do."""
    either = dict.fromkeys(labels, 0)
    both = dict.fromkeys(labels, 0)
    for unit in units:
        for x, y in combinations(unit, 2):
            for label in x | y:
                if label in either:
                    either[label] += 1
                    both[label] += label in x and label in y
    return {
        label: rounded(both[label] / either[label]) if either[label] else None for label in labels
    }
