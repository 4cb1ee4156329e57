"""What the LFs did: per-LF polarity, coverage, overlaps, conflicts, accuracy and faults.

Definitions follow Snorkel's ``LFAnalysis`` (coverage, overlaps and conflicts are shares of all
rows). Accuracies always come with their counts and a 95% Wilson interval, so 3 right out of 3
reads as "between 44% and 100%", not as certainty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from weak_supervision.errors import WeakSupervisionError
from weak_supervision.lf import ABSTAIN

if TYPE_CHECKING:
    import pandas as pd

#: z for a two-sided 95% interval.
_Z95 = 1.959963984540054


def wilson_interval(correct: int, n: int, *, z: float = _Z95) -> tuple[float, float] | None:
    """Wilson score interval for ``correct`` successes out of ``n``; ``None`` when n is 0.

    Unlike the normal approximation it stays inside [0, 1] and is honest for small ``n``.
    """
    if n <= 0:
        return None
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_with_counts(
    votes: np.ndarray, truth: np.ndarray, prefix: str
) -> dict[str, float | int | None]:
    """Accuracy of ``votes`` where both a vote and a true label (not -1) exist, with counts."""
    both = (votes != ABSTAIN) & (truth != ABSTAIN)
    n = int(both.sum())
    correct = int((votes[both] == truth[both]).sum())
    interval = wilson_interval(correct, n)
    return {
        f"{prefix}_correct": correct,
        f"{prefix}_n": n,
        f"{prefix}_accuracy": correct / n if n else None,
        f"{prefix}_ci_low": round(interval[0], 4) if interval else None,
        f"{prefix}_ci_high": round(interval[1], 4) if interval else None,
    }


def weak_label_gold_accuracy(weak_labels: np.ndarray, gold: np.ndarray) -> dict[str, Any]:
    """Accuracy of weak labels on the gold rows that have one, with counts.

    Gold rows without a weak label (no LF voted, or the label model tied) are left out and
    counted in ``gold_uncovered``; ``gold_accuracy`` of ``fit_weak_labels`` scores them with
    a random class instead, so the two differ by design and are shown side by side.
    """
    found = accuracy_with_counts(np.asarray(weak_labels), np.asarray(gold), "gold_covered")
    n_gold = int((np.asarray(gold) != ABSTAIN).sum())
    return found | {"gold_uncovered": n_gold - int(found["gold_covered_n"] or 0)}


def analyze_lfs(
    L: np.ndarray,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    human: Sequence[int] | np.ndarray | None = None,
    gold: Sequence[int] | np.ndarray | None = None,
    faults: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One dict per LF (JSON-ready: ``None`` where a number is undefined).

    Parameters
    ----------
    L
        Votes, rows x LFs, ``-1`` abstain, label indices in ``labels`` order.
    human, gold
        Per-row true labels as indices, ``-1`` where there is none: human annotations and the
        gold set's labels. Accuracy is measured on the rows where both LF and truth exist.
    faults
        LF name -> number of rows on which it raised (from ``ApplyResult.faults``).
    """
    L, human_arr, gold_arr = _check(L, names, labels, human, gold)
    n_rows = L.shape[0]
    voted = L != ABSTAIN
    votes_per_row = voted.sum(axis=1)
    records = []
    for j, name in enumerate(names):
        column = L[:, j]
        mine = voted[:, j]
        others_voted = mine & (votes_per_row > 1)
        conflict = mine & _disagrees_with_others(L, j)
        record: dict[str, Any] = {
            "lf": name,
            "polarity": [labels[k] for k in sorted(set(column[mine].tolist()))],
            "votes": int(mine.sum()),
            "coverage": _share(int(mine.sum()), n_rows),
            "overlaps": _share(int(others_voted.sum()), n_rows),
            "conflicts": _share(int(conflict.sum()), n_rows),
        }
        record.update(accuracy_with_counts(column, human_arr, "human"))
        record.update(accuracy_with_counts(column, gold_arr, "gold"))
        record["faults"] = int((faults or {}).get(name, 0))
        records.append(record)
    return records


def lf_summary(
    L: np.ndarray,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    human: Sequence[int] | np.ndarray | None = None,
    gold: Sequence[int] | np.ndarray | None = None,
    faults: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """``analyze_lfs`` as a DataFrame indexed by LF name, for notebooks and tables."""
    # pandas and pyarrow (~0.5 s, ~100 MB): loaded only when LFs run or are analysed
    import pandas as pd

    records = analyze_lfs(L, names, labels, human=human, gold=gold, faults=faults)
    columns = list(records[0]) if records else ["lf"]
    return pd.DataFrame(records, columns=columns).set_index("lf")


def coverage_totals(
    L: np.ndarray,
    labels: Sequence[str],
    *,
    human: Sequence[int] | np.ndarray | None = None,
    weak: Sequence[int] | np.ndarray | None = None,
    weak_confidence: Sequence[float] | np.ndarray | None = None,
    weak_threshold: float = 0.0,
    rows: int | None = None,
) -> dict[str, Any]:
    """How much of the rows has a label, by source: the one definition every surface shows.

    ``status``, the Metrics page, the report, the LF page and ``lf analyze`` all read these
    numbers (through ``labeling.quality.coverage.coverage`` for a workspace), so they cannot
    disagree.

    - ``lf``: rows with at least one LF vote.
    - ``human``: rows with a label from people.
    - ``weak``: rows with a *confident* weak label (``weak_confidence >= weak_threshold``);
      ``weak_any``: rows with a weak label of any confidence.
    - ``combined``: rows with a label from people or a confident weak label, which is what a
      round trains on. LF votes alone do not count: a tie or an unconfident weak label gives
      the row no label.

    Per class the same, with the people's label winning over the weak one in ``combined``.
    Every figure comes as a share of the rows and, under ``counts``, as a number of rows.
    ``rows``: the number of rows when the arrays hold only those with something on them (the
    others count as covered by nothing); by default, the arrays' length.
    """
    names = [f"lf{j}" for j in range(np.asarray(L).shape[1] if np.ndim(L) == 2 else 0)]
    L, human_arr, _ = _check(L, names, labels, human, None)
    n_rows = L.shape[0]
    if rows is not None and rows < n_rows:
        raise WeakSupervisionError(f"rows must be at least the {n_rows} rows given, found {rows}")
    total = n_rows if rows is None else rows
    weak_arr = _truth(weak, n_rows, len(labels), "weak")
    if weak_confidence is None:
        confident = weak_arr != ABSTAIN
    else:
        confidence = np.asarray(weak_confidence, dtype=float).reshape(-1)
        if confidence.shape[0] != n_rows:
            raise WeakSupervisionError(
                f"L has {n_rows} rows but {confidence.shape[0]} weak confidences"
            )
        confident = (weak_arr != ABSTAIN) & (confidence >= weak_threshold)
    by_lfs = (L != ABSTAIN).any(axis=1)
    by_humans = human_arr != ABSTAIN
    # The label a row trains with: the people's where it exists, else a confident weak one.
    final = np.where(by_humans, human_arr, np.where(confident, weak_arr, ABSTAIN))
    counts = {
        "human": int(by_humans.sum()),
        "lf": int(by_lfs.sum()),
        "weak": int(confident.sum()),
        "weak_any": int((weak_arr != ABSTAIN).sum()),
        "combined": int((final != ABSTAIN).sum()),
    }
    per_class = {}
    for k, label in enumerate(labels):
        per_class[label] = {
            "human": _share(int((human_arr == k).sum()), total),
            "lf": _share(int(np.equal(L, k).any(axis=1).sum()), total),
            "weak": _share(int(((weak_arr == k) & confident).sum()), total),
            "combined": _share(int((final == k).sum()), total),
        }
    return {
        "pool": total,
        **{key: _share(n, total) for key, n in counts.items()},
        "counts": counts,
        "per_class": per_class,
        "weak_threshold": weak_threshold,
    }


def _disagrees_with_others(L: np.ndarray, j: int) -> np.ndarray:
    """Rows where another LF voted a label different from LF ``j``'s vote."""
    others = np.delete(L, j, axis=1)
    mine = L[:, j : j + 1]
    return ((others != ABSTAIN) & (others != mine)).any(axis=1)


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _check(
    L: np.ndarray,
    names: Sequence[str],
    labels: Sequence[str],
    human: Sequence[int] | np.ndarray | None,
    gold: Sequence[int] | np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    matrix = np.asarray(L)
    if matrix.ndim != 2:
        raise WeakSupervisionError(f"L must be rows x LFs, found shape {matrix.shape}")
    if matrix.shape[1] != len(names):
        raise WeakSupervisionError(
            f"L has {matrix.shape[1]} columns but {len(names)} LF names were given"
        )
    if matrix.size and (matrix.min() < ABSTAIN or matrix.max() >= len(labels)):
        raise WeakSupervisionError(
            f"L values must be -1 or in 0..{len(labels) - 1}, found {matrix.min()}..{matrix.max()}"
        )
    n_rows = matrix.shape[0]
    return (
        matrix.astype(np.int64, copy=False),
        _truth(human, n_rows, len(labels), "human"),
        _truth(gold, n_rows, len(labels), "gold"),
    )


def _truth(
    values: Sequence[int] | np.ndarray | None, n_rows: int, n_classes: int, what: str
) -> np.ndarray:
    if values is None:
        return np.full(n_rows, ABSTAIN, dtype=np.int64)
    array = np.asarray(values, dtype=np.int64).reshape(-1)
    if array.shape[0] != n_rows:
        raise WeakSupervisionError(f"L has {n_rows} rows but {array.shape[0]} {what} labels")
    if array.size and (array.min() < ABSTAIN or array.max() >= n_classes):
        raise WeakSupervisionError(
            f"{what} labels must be -1 or in 0..{n_classes - 1}, found {array.min()}..{array.max()}"
        )
    return array
