"""Multi-label figures: sets of labels as indicator matrices, and what is measured on them.

A set of labels is a ``frozenset[str]``; many sets are an indicator matrix ``Y`` (items x labels,
columns in the workspace's label order). Here: set-prediction scores (micro/macro F1, Hamming
loss, subset accuracy, Jaccard, per label), gold accuracy for sets, and cleanlab's multi-label
label-issue finder; agreement between people on sets is in :mod:`multilabel_agreement`. Pure
functions: the callers read the store and round the figures they show.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeling.errors import BadInput, UnknownLabel
from labeling.quality.sources import rounded


def indicator(
    sets: Sequence[Iterable[str]], labels: Sequence[str], *, ids: Sequence[str] | None = None
) -> NDArray[np.uint8]:
    """The (items, labels) 0/1 matrix of ``sets``, columns in ``labels`` order.

    ``ids``: the items' external ids, to name the item in the error for a label outside
    ``labels`` (else its row, counted from 0).
    """
    column = {label: j for j, label in enumerate(labels)}
    Y = np.zeros((len(sets), len(labels)), dtype=np.uint8)
    for row, labels_given in enumerate(sets):
        if isinstance(labels_given, str):  # a string is iterable too: "joy" would be j, o, y
            where = f"item {ids[row]!r}" if ids is not None else f"row {row}"
            raise BadInput(f"{where}: expected a set of labels, found the string {labels_given!r}")
        for label in labels_given:
            j = column.get(label)
            if j is None:
                where = f"item {ids[row]!r}" if ids is not None else f"row {row}"
                raise UnknownLabel(
                    f"{where}: expected labels among {', '.join(labels)}, found {label!r}"
                )
            Y[row, j] = 1
    return Y


def label_sets(Y: ArrayLike, labels: Sequence[str]) -> list[frozenset[str]]:
    """The sets an indicator matrix holds: row by row, the labels of its non-zero columns."""
    matrix = _as_indicator(Y, "Y", len(labels))
    names = np.asarray(list(labels), dtype=object)
    return [frozenset(names[np.flatnonzero(row)].tolist()) for row in matrix]


# --- Set predictions against true sets ------------------------------------------------------


def micro_f1(Y_true: ArrayLike, Y_pred: ArrayLike, *, zero_division: float = 0.0) -> float:
    """F1 over every (item, label) cell pooled: 2 TP / (2 TP + FP + FN).

    ``zero_division`` when no cell is positive in either matrix, as scikit-learn's
    ``f1_score(average="micro")`` (whose default is 0).
    """
    tp, fp, fn = _cell_counts(Y_true, Y_pred)
    denominator = 2 * tp.sum() + fp.sum() + fn.sum()
    return float(2 * tp.sum() / denominator) if denominator else float(zero_division)


def macro_f1(Y_true: ArrayLike, Y_pred: ArrayLike, *, zero_division: float = 0.0) -> float:
    """Mean over labels of each label's F1, every label counted once.

    A label with no true and no predicted positive has F1 ``zero_division`` (0 by default) and
    still counts in the mean, as in scikit-learn's ``f1_score(average="macro")``.
    """
    tp, fp, fn = _cell_counts(Y_true, Y_pred)
    return float(_f1(tp, fp, fn, zero_division).mean())


def hamming_loss(Y_true: ArrayLike, Y_pred: ArrayLike) -> float:
    """Share of (item, label) cells where the prediction and the truth differ."""
    true, pred = _check_pair(Y_true, Y_pred)
    return float((true != pred).mean())


def subset_accuracy(Y_true: ArrayLike, Y_pred: ArrayLike) -> float:
    """Share of items whose predicted set is exactly the true set (empty = empty counts)."""
    true, pred = _check_pair(Y_true, Y_pred)
    return float((true == pred).all(axis=1).mean())


def jaccard_per_item(Y_true: ArrayLike, Y_pred: ArrayLike) -> NDArray[np.float64]:
    """Per item, |true & predicted| / |true | predicted|; 1 where both sets are empty."""
    true, pred = _check_pair(Y_true, Y_pred)
    inter = (true & pred).sum(axis=1)
    union = (true | pred).sum(axis=1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def mean_jaccard(Y_true: ArrayLike, Y_pred: ArrayLike) -> float:
    """Mean of :func:`jaccard_per_item` (scikit-learn's ``jaccard_score(average="samples",
    zero_division=1)``: an empty answer to an empty truth is right, not undefined)."""
    return float(jaccard_per_item(Y_true, Y_pred).mean())


def per_label_scores(
    Y_true: ArrayLike, Y_pred: ArrayLike, labels: Sequence[str], *, zero_division: float = 0.0
) -> dict[str, dict[str, float | int]]:
    """Per label: precision, recall, F1 and support (items truly holding it).

    A ratio whose denominator is 0 is ``zero_division``, as scikit-learn's
    ``precision_recall_fscore_support(average=None)``; the shape of a round's ``per_class``.
    """
    tp, fp, fn = _cell_counts(Y_true, Y_pred, n_labels=len(labels))
    precision = _ratio(tp, tp + fp, zero_division)
    recall = _ratio(tp, tp + fn, zero_division)
    f1 = _f1(tp, fp, fn, zero_division)
    return {
        label: {
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "f1": float(f1[j]),
            "support": int(tp[j] + fn[j]),
        }
        for j, label in enumerate(labels)
    }


def set_metrics(Y_true: ArrayLike, Y_pred: ArrayLike, labels: Sequence[str]) -> dict[str, Any]:
    """Every set-prediction figure at once, rounded as ``status --json`` carries figures.

    The keys a simulation's curve point and a round's gold metrics need: ``micro_f1``,
    ``macro_f1``, ``hamming_loss``, ``subset_accuracy``, ``jaccard`` (mean per item), with
    ``per_label`` (:func:`per_label_scores`) and ``n`` items.
    """
    true, pred = _check_pair(Y_true, Y_pred, n_labels=len(labels))
    per_label = per_label_scores(true, pred, labels)
    return {
        "micro_f1": rounded(micro_f1(true, pred)),
        "macro_f1": rounded(macro_f1(true, pred)),
        "hamming_loss": rounded(hamming_loss(true, pred)),
        "subset_accuracy": rounded(subset_accuracy(true, pred)),
        "jaccard": rounded(mean_jaccard(true, pred)),
        "per_label": {
            label: {
                key: value if key == "support" else rounded(value) for key, value in row.items()
            }
            for label, row in per_label.items()
        },
        "n": int(true.shape[0]),
    }


def _as_indicator(Y: ArrayLike, name: str, n_labels: int | None = None) -> NDArray[np.bool_]:
    matrix = np.asarray(Y)
    if matrix.ndim != 2:
        raise BadInput(f"{name}: expected a 2-d indicator matrix, found {matrix.ndim} dimensions")
    if n_labels is not None and matrix.shape[1] != n_labels:
        raise BadInput(f"{name}: expected {n_labels} label columns, found {matrix.shape[1]}")
    if matrix.size and not np.isin(matrix, (0, 1)).all():
        raise BadInput(f"{name}: expected only 0 and 1, found {np.unique(matrix)[:5].tolist()}")
    return matrix.astype(bool)


def _check_pair(
    Y_true: ArrayLike, Y_pred: ArrayLike, *, n_labels: int | None = None
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    true = _as_indicator(Y_true, "Y_true", n_labels)
    pred = _as_indicator(Y_pred, "Y_pred", n_labels)
    if true.shape != pred.shape:
        raise BadInput(
            f"expected Y_true and Y_pred of one shape, found {true.shape} and {pred.shape}"
        )
    if true.shape[0] == 0 or true.shape[1] == 0:
        raise BadInput(f"expected at least one item and one label, found shape {true.shape}")
    return true, pred


def _cell_counts(
    Y_true: ArrayLike, Y_pred: ArrayLike, *, n_labels: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Per label: true positives, false positives, false negatives."""
    true, pred = _check_pair(Y_true, Y_pred, n_labels=n_labels)
    tp = (true & pred).sum(axis=0, dtype=np.int64)
    fp = (~true & pred).sum(axis=0, dtype=np.int64)
    fn = (true & ~pred).sum(axis=0, dtype=np.int64)
    return tp, fp, fn


def _ratio(num: NDArray[np.int64], den: NDArray[np.int64], zero: float) -> NDArray[np.float64]:
    return np.where(den > 0, num / np.maximum(den, 1), zero)


def _f1(
    tp: NDArray[np.int64], fp: NDArray[np.int64], fn: NDArray[np.int64], zero: float
) -> NDArray[np.float64]:
    return _ratio(2 * tp, 2 * tp + fp + fn, zero)


# --- Gold checks on sets --------------------------------------------------------------------


def gold_set_figures(pairs: Iterable[tuple[frozenset[str], frozenset[str]]]) -> dict[str, Any]:
    """Answers against gold sets: ``n``, ``correct`` (exact matches), ``accuracy`` (their
    share) and ``jaccard`` (mean per answer; an empty answer to an empty gold set is 1).
    Figures None when ``n`` is 0."""
    n, correct, jaccard = 0, 0, 0.0
    for given, truth in pairs:
        n += 1
        correct += given == truth
        union = len(given | truth)
        jaccard += len(given & truth) / union if union else 1.0
    return {
        "n": n,
        "correct": correct,
        "accuracy": rounded(correct / n) if n else None,
        "jaccard": rounded(jaccard / n) if n else None,
    }


def gold_set_accuracy(
    rows: Iterable[tuple[str, date, frozenset[str], frozenset[str]]],
) -> dict[str, Any]:
    """Gold figures for sets in the shape of :func:`~labeling.quality.agreement.gold_accuracy`.

    ``rows``: (annotator name, when answered (a date, or a timestamp counted on its day),
    answer, gold set), one per current answer on a gold item. Overall, per annotator and per
    annotator and day: :func:`gold_set_figures`.
    """
    everyone: list[tuple[frozenset[str], frozenset[str]]] = []
    per: dict[str, dict[str, list[tuple[frozenset[str], frozenset[str]]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for name, day, given, truth in rows:
        everyone.append((given, truth))
        # A timestamp counts on its calendar day, as gold_accuracy counts it.
        on = day.date() if isinstance(day, datetime) else day
        per[name][on.isoformat()].append((given, truth))
    annotators = {
        name: gold_set_figures(pair for pairs in days.values() for pair in pairs)
        | {
            "by_day": [
                {"day": day, **gold_set_figures(pairs)} for day, pairs in sorted(days.items())
            ]
        }
        for name, days in sorted(per.items())
    }
    return gold_set_figures(everyone) | {"annotators": annotators}


# --- Likely label errors --------------------------------------------------------------------


class LabelIssues(NamedTuple):
    """Rows whose given set cleanlab flags, most suspicious first, and what looks wrong."""

    rows: NDArray[np.int64]  # as :func:`~labeling.quality.label_errors.likely_label_errors`
    scores: NDArray[np.float64]  # per row: cleanlab's label quality in [0, 1], low = suspect
    missing: list[frozenset[str]]  # per row: labels not given that the model says present
    extra: list[frozenset[str]]  # per row: labels given that the model says absent


def multilabel_label_issues(
    given_sets: Sequence[frozenset[str]], pred_probs: ArrayLike, labels: Sequence[str]
) -> LabelIssues:
    """Likely errors in people's label sets: cleanlab's multi-label issue finder.

    ``pred_probs``: out-of-sample per-label probabilities of presence (items x labels, columns
    in ``labels`` order; rows need not sum to 1). Per label, cleanlab's confident learning
    (``find_multilabel_issues_per_class``, one-vs-rest) says whether the label's presence or
    absence looks wrong; a row with any such label is flagged, and the flagged rows are ranked
    by cleanlab's ``get_label_quality_scores`` (self-confidence per label, then an exponential
    moving average over them sorted high to low, so the worst label weighs most), lowest first,
    as its ``find_label_issues(return_indices_ranked_by="self_confidence")`` ranks them. A
    label given to every row or to none cannot be estimated and is left out of the check.
    """
    from cleanlab.multilabel_classification import filter as cl_filter  # cleanlab: ~2 s
    from cleanlab.multilabel_classification import rank as cl_rank  # cleanlab: ~2 s

    Y = indicator(given_sets, labels)
    proba = _check_proba(pred_probs, len(given_sets), len(labels))
    varies = np.flatnonzero(Y.any(axis=0) & ~Y.all(axis=0))
    if len(varies) == 0:
        return LabelIssues(np.array([], dtype=np.int64), np.array([]), [], [])
    kept, kept_proba = Y[:, varies], proba[:, varies]
    # cleanlab takes each row's labels as a list of column numbers.
    columns = np.nonzero(kept)[1]
    as_lists = [part.tolist() for part in np.split(columns, np.cumsum(kept.sum(axis=1))[:-1])]
    # One process: a pool per label costs more than it saves, and rounds share the machine.
    wrong = np.asarray(
        cl_filter.find_multilabel_issues_per_class(as_lists, kept_proba, n_jobs=1), bool
    )
    if len(varies) > 1:
        quality = np.asarray(cl_rank.get_label_quality_scores(as_lists, kept_proba), float)
    else:  # cleanlab's scorer wants two columns; of one, the score is its self-confidence
        quality = np.where(kept[:, 0] == 1, kept_proba[:, 0], 1.0 - kept_proba[:, 0])
    flagged = np.flatnonzero(wrong.any(axis=1))
    rows = flagged[np.argsort(quality[flagged], kind="stable")].astype(np.int64)
    names = np.array([labels[int(j)] for j in varies], dtype=object)
    given = kept[rows].astype(bool)
    suspect = wrong[rows]
    return LabelIssues(
        rows,
        quality[rows],
        [frozenset(names[s & ~g].tolist()) for s, g in zip(suspect, given, strict=True)],
        [frozenset(names[s & g].tolist()) for s, g in zip(suspect, given, strict=True)],
    )


def _check_proba(pred_probs: ArrayLike, n_items: int, n_labels: int) -> NDArray[np.float64]:
    proba = np.asarray(pred_probs, dtype=np.float64)
    if proba.shape != (n_items, n_labels):
        raise BadInput(
            f"pred_probs: expected shape ({n_items}, {n_labels}) (items, labels), "
            f"found {proba.shape}"
        )
    if not np.isfinite(proba).all() or proba.min(initial=0) < 0 or proba.max(initial=0) > 1:
        raise BadInput("pred_probs: expected probabilities in [0, 1], found values outside")
    return proba
