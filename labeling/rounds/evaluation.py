"""How good a round is: its model on gold (or cross-validated), and the check of people's labels.

With gold items, the model is scored on them (accuracy, macro-F1, per class, confusion). With
none, on the training labels by stratified cross-validation (at least :data:`MIN_CV_LABELS`),
said as such in ``metrics["evaluation"]``. :func:`label_checks` writes what the quality pages
read: the stop set's predictions and the out-of-sample check of each human label.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from labeling.context import Context
from labeling.quality import label_errors, stopping
from labeling.quality.multilabel import multilabel_label_issues, set_metrics
from labeling.rounds.learner import predict_proba, train
from labeling.rounds.multilabel import CALIBRATION_FOLDS
from labeling.rounds.pool import PoolData
from labeling.rounds.scores import predicted_sets
from labeling.rounds.training import Trained
from labeling.store import labelsets

MIN_CV_LABELS = 10


def class_metrics(y_true: list[str], y_pred: list[str], labels: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, macro-F1, precision/recall/F1 per class and the confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score  # scikit-learn: ~1 s
    from sklearn.metrics import precision_recall_fscore_support as prfs  # scikit-learn: ~1 s

    precision, recall, f1, support = prfs(y_true, y_pred, labels=list(labels), zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 6),
        "macro_f1": round(
            float(f1_score(y_true, y_pred, labels=list(labels), average="macro", zero_division=0)),
            6,
        ),
        "per_class": {
            label: {
                "precision": round(float(precision[i]), 6),
                "recall": round(float(recall[i]), 6),
                "f1": round(float(f1[i]), 6),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=list(labels)).tolist(),
        "n": len(y_true),
    }


def cross_validated(X: Any, y: np.ndarray, w: np.ndarray, ws: Context) -> dict[str, Any] | None:
    """Stratified k-fold metrics of the classifier on ``y`` (None: too few labels per class)."""
    from sklearn.model_selection import StratifiedKFold  # scikit-learn: ~1 s

    counts = Counter(y.tolist())
    folds = min(5, min(counts.values()))
    if len(y) < MIN_CV_LABELS or folds < 2:
        return None
    predicted = np.empty(len(y), dtype=object)
    for fit_rows, test_rows in StratifiedKFold(folds, shuffle=True, random_state=0).split(
        np.zeros(len(y)), y
    ):
        if len(set(y[fit_rows].tolist())) < 2:
            return None
        model = train(X[fit_rows], y[fit_rows], w[fit_rows], classifier=ws.config.classifier)
        proba = predict_proba(model, X[test_rows])
        predicted[test_rows] = model.classes_[proba.argmax(axis=1)]
    return class_metrics(y.tolist(), predicted.tolist(), ws.labels) | {"folds": folds}


def evaluate(ws: Context, data: PoolData, X: Any, trained: Trained) -> dict[str, Any]:
    """The trained model's metrics: on the gold items, or else cross-validated."""
    if ws.multilabel:
        return evaluate_sets(ws, data, X, trained)
    metrics: dict[str, Any] = {}
    gold_rows = np.flatnonzero(data.split == "gold")
    gold_rows = np.array([r for r in gold_rows if data.gold[r] in ws.labels], dtype=np.int64)
    model = trained.model
    if len(gold_rows):
        proba = predict_proba(model, X[gold_rows])
        predicted = model.classes_[proba.argmax(axis=1)].tolist()
        gold = class_metrics([str(data.gold[r]) for r in gold_rows], predicted, ws.labels)
        metrics["evaluation"] = "gold"
        metrics["gold"] = gold
        metrics["gold_accuracy"] = gold["accuracy"]
        metrics["gold_macro_f1"] = gold["macro_f1"]
        return metrics
    cv = cross_validated(X[trained.rows], trained.y, trained.weights, ws)
    metrics["evaluation"] = "cross-validation" if cv else "none"
    if cv:
        metrics["cv"] = cv
        metrics["cv_accuracy"] = cv["accuracy"]
        metrics["cv_macro_f1"] = cv["macro_f1"]
    return metrics


def set_figures(Y_true: np.ndarray, Y_pred: np.ndarray, labels: tuple[str, ...]) -> dict[str, Any]:
    """A multi-label model's figures (labeling.quality.multilabel.set_metrics), under the keys
    single-label figures have too: ``accuracy`` is the exact-match share (subset accuracy),
    ``per_class`` the per-label precision, recall, F1 and support; there is no confusion
    matrix."""
    figures = set_metrics(Y_true, Y_pred, labels)
    return figures | {
        "accuracy": figures["subset_accuracy"],
        "per_class": figures["per_label"],
        "confusion": None,
    }


def evaluate_sets(ws: Context, data: PoolData, X: Any, trained: Trained) -> dict[str, Any]:
    """:func:`evaluate` for a multi-label model: a label is predicted at P >= 0.5; gold items
    whose set is known, or else k-fold cross-validation on the labelled sets."""
    metrics: dict[str, Any] = {}
    model = trained.model
    gold_rows = np.array(
        [r for r in np.flatnonzero(data.split == "gold") if data.gold[r] is not None],
        dtype=np.int64,
    )
    if len(gold_rows):
        truth = labelsets.indicator([str(data.gold[r]) for r in gold_rows], ws.labels)
        predicted = predict_proba(model, X[gold_rows]) >= 0.5
        gold = set_figures(truth, predicted, ws.labels)
        metrics["evaluation"] = "gold"
        metrics["gold"] = gold
        metrics["gold_accuracy"] = gold["accuracy"]
        metrics["gold_macro_f1"] = gold["macro_f1"]
        metrics["gold_micro_f1"] = gold["micro_f1"]
        return metrics
    cv = cross_validated_sets(trained, ws)
    metrics["evaluation"] = "cross-validation" if cv else "none"
    if cv:
        metrics["cv"] = cv
        metrics["cv_accuracy"] = cv["accuracy"]
        metrics["cv_macro_f1"] = cv["macro_f1"]
        metrics["cv_micro_f1"] = cv["micro_f1"]
    return metrics


def cross_validated_sets(trained: Trained, ws: Context) -> dict[str, Any] | None:
    """Figures of the one-vs-rest model on people's sets from its out-of-fold probabilities
    (the calibration folds, labeling.rounds.multilabel.FittedSets); None below
    :data:`MIN_CV_LABELS` sets."""
    proba = trained.human_out_of_fold
    Y = trained.human_indicator
    if proba is None or Y is None or len(Y) < MIN_CV_LABELS:
        return None
    return set_figures(Y, proba >= 0.5, ws.labels) | {"folds": CALIBRATION_FOLDS}


def _review_sets(
    ws: Context, data: PoolData, human_rows: np.ndarray, human_y: np.ndarray, proba: np.ndarray
) -> dict[str, Any]:
    """``review.json`` for sets: each labelled item's given set, the out-of-sample predicted
    set (P >= 0.5) and its confidence, the probability of the given set (labels independent)
    and whether cleanlab's multi-label issue finder flags it."""
    given = [labelsets.decode(value) for value in human_y.tolist()]
    issues = multilabel_label_issues(given, proba, ws.labels)
    flagged = set(issues.rows.tolist())
    Y = labelsets.indicator(human_y.tolist(), ws.labels).astype(bool)
    names, codes, confidence = predicted_sets(proba, ws.labels)
    predicted = [names[code] for code in codes.tolist()]
    p_given = np.prod(np.where(Y, proba, 1.0 - proba), axis=1)
    return {
        "labels": list(ws.labels),
        "fields": ["item_id", "given", "predicted", "confidence", "p_given", "flagged"],
        "items": [
            [
                int(data.item_ids[row]),
                str(human_y[k]),
                predicted[k],
                round(float(confidence[k]), 6),
                round(float(p_given[k]), 6),
                k in flagged,
            ]
            for k, row in enumerate(human_rows)
        ],
    }


def label_checks(
    ws: Context,
    data: PoolData,
    X: Any,
    pool_rows: np.ndarray,
    names: list[str],
    codes: np.ndarray,
    trained: Trained,
) -> dict[str, Any]:
    """The stop set's predictions and the out-of-sample check of people's labels.

    Both go to files in the round folder: ``stop_set.json`` (stopping hint) and
    ``review.json`` (each human-labelled item's given label, cross-validated prediction and
    confidence, the probability of the given label, and whether cleanlab flags it).
    """
    extras: dict[str, Any] = {}
    pool_ids = data.item_ids[pool_rows]
    stop_ids = stopping.stop_set_ids(ws, pool_ids)
    stop_ids = np.asarray(stop_ids, dtype=np.int64)
    # item_ids are ascending (read in id order): find each stop-set item's row by bisection.
    at = np.searchsorted(data.item_ids, stop_ids).clip(0, max(len(data.item_ids) - 1, 0))
    known = (data.item_ids[at] == stop_ids) & (codes[at] >= 0)
    extras[stopping.STOP_SET_FILE] = {
        "item_ids": stop_ids[known].tolist(),
        "predictions": [names[c] for c in codes[at[known]].tolist()],
    }
    if ws.multilabel:  # the out-of-fold probabilities of the calibration folds: no more fits
        proba = trained.human_out_of_fold
        if proba is not None and len(proba) >= MIN_CV_LABELS:
            extras[label_errors.REVIEW_FILE] = _review_sets(
                ws, data, trained.human_rows, trained.human_y, proba
            )
        return extras
    human_rows = trained.human_rows
    human_y = trained.human_y.astype(str)
    proba = label_errors.out_of_sample_proba(
        X[human_rows], human_y, ws.labels, classifier=ws.config.classifier
    )
    if proba is not None:
        extras[label_errors.REVIEW_FILE] = _review(ws, data, human_rows, human_y, proba)
    return extras


def _review(
    ws: Context, data: PoolData, human_rows: np.ndarray, human_y: np.ndarray, proba: np.ndarray
) -> dict[str, Any]:
    flagged = set(label_errors.likely_label_errors(human_y, proba, ws.labels).tolist())
    column = {label: i for i, label in enumerate(ws.labels)}
    best = proba.argmax(axis=1)
    return {
        "labels": list(ws.labels),
        "fields": ["item_id", "given", "predicted", "confidence", "p_given", "flagged"],
        "items": [
            [
                int(data.item_ids[row]),
                str(given),
                ws.labels[int(best[k])],
                round(float(proba[k, best[k]]), 6),
                round(float(proba[k, column[str(given)]]), 6),
                k in flagged,
            ]
            for k, (row, given) in enumerate(zip(human_rows, human_y, strict=True))
        ],
    }
