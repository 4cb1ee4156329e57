"""The simulator for label sets: ``labelloop simulate --task multi-label``.

The loop is the single-label simulator's (:mod:`labeling.rounds.simulate`): start from nothing,
ask a strategy for a batch, take the batch's true sets from the file, retrain, score the test
set. What differs: the oracle's answers are sets (an indicator matrix), the model is the one a
multi-label round trains (:func:`labeling.rounds.multilabel.train_multilabel`), the strategies
read per-label probabilities, and every curve point carries the set figures of
:func:`labeling.quality.multilabel.set_metrics` (micro-F1, macro-F1, Hamming loss, subset
accuracy). ``labels_to_95pct`` is read on the metric chosen (``macro-f1`` or ``micro-f1``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeling.config import MULTI_LABEL, SINGLE_LABEL, TASKS
from labeling.data.readers import check_file, detect_format, open_reader
from labeling.errors import BadInput, ImportFailed, LabelloopError
from labeling.quality.multilabel import indicator, set_metrics
from labeling.rounds.featurizers import AUTO, BASE_FEATURIZER, DEFAULT_FEATURIZER
from labeling.rounds.learner import DEFAULT_CLASSIFIER, NotEnoughLabels
from labeling.rounds.learning_curves import (
    BASELINE,
    label_efficiency,
    summarise_runs,
    write_chart,
)
from labeling.rounds.multilabel import OneVsRest, train_multilabel
from labeling.rounds.simulate import TARGET_FRACTION, check_run, query_batch
from labeling.rounds.simulate_features import Views, featurize_views
from labeling.rounds.simulate_zero_shot import simulate_files
from labeling.store.labelsets import DEFAULT_LABEL_SEP, check_separator, parse_cell
from strategies import DEFAULT_STRATEGY, MULTILABEL_ONLY, as_multilabel

#: ``--metric`` names and the curve-point keys they read.
METRICS = {"macro-f1": "macro_f1", "micro-f1": "micro_f1"}
DEFAULT_METRIC = "macro-f1"
# The figures of set_metrics a curve point carries (``accuracy`` is subset accuracy again, so
# the points have the single-label simulator's keys too).
POINT_FIGURES = ("micro_f1", "macro_f1", "hamming_loss", "subset_accuracy")


def simulate_sets(
    train_texts: Sequence[str],
    train_sets: Sequence[Sequence[str]],
    *,
    labels: Sequence[str],
    test_texts: Sequence[str] | None = None,
    test_sets: Sequence[Sequence[str]] | None = None,
    test_size: float = 0.25,
    strategies: Sequence[str] = (BASELINE, DEFAULT_STRATEGY),
    budget: int = 200,
    batch: int = 10,
    seeds: int = 5,
    featurizer: str = DEFAULT_FEATURIZER,
    classifier: str = DEFAULT_CLASSIFIER,
    metric: str = DEFAULT_METRIC,
    split_seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Learning curves of each strategy on texts labelled with sets: ``simulate --json``'s
    document for ``--task multi-label`` (docs/active_learning.md), spelled out whole by
    :func:`_document`.

    Parameters
    ----------
    train_texts, train_sets
        The pool and its true sets of label names (the oracle; a set may be empty).
    labels
        The label order: the columns of every indicator matrix; a name outside it is refused.
    test_texts, test_sets
        The test set; when absent, ``test_size`` of the pool is held out (seeded by
        ``split_seed``; sets are not stratified).
    strategies
        Registered strategy names, the multi-label-only ones included; ``random`` is the
        baseline, every other strategy uses ``cold_start`` until a label is both present and
        absent among the labels bought (no model can be trained before).
    featurizer
        ``auto`` means ``tfidf``, as in multi-label rounds; or a fixed featurizer name.
    metric
        ``macro-f1`` or ``micro-f1``: the figure full supervision and ``labels_to_95pct``
        are read on.
    """
    started = time.perf_counter()
    key = _check_settings(strategies, budget, batch, seeds, metric)
    data = _prepare(train_texts, train_sets, labels, test_texts, test_sets, test_size, split_seed)
    setting = BASE_FEATURIZER if featurizer == AUTO else featurizer
    views = featurize_views(setting, data.pool_texts, data.test_texts)
    featurize_seconds = time.perf_counter() - started
    plan = _SetPlan(views, setting, data, budget, batch, classifier)
    full = _full_supervision(plan)
    target = TARGET_FRACTION * full[key]
    report = {name: _strategy_runs(name, plan, seeds, target, key, progress) for name in strategies}
    return _document(
        plan, report, full, metric=metric, key=key, target=target, seeds=seeds,
        featurizer=featurizer, featurize_seconds=featurize_seconds, started=started,
    )  # fmt: skip


def _full_supervision(plan: _SetPlan) -> dict[str, float]:
    """Test figures of a model trained on every pool set: what "good enough" means."""
    views, view, data = plan.views, plan.view, plan.data
    model = train_multilabel(
        views.pool[view], data.Y_pool, data.labels, classifier=plan.classifier, seed=0
    )
    return curve_figures(data.Y_test, model.predict(views.test[view]), data.labels)


def _strategy_runs(
    name: str,
    plan: _SetPlan,
    seeds: int,
    target: float,
    key: str,
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """One strategy's learning curves over ``seeds`` runs, summarised against ``target``."""
    started = time.perf_counter()
    runs = []
    for seed in range(seeds):
        runs.append(run_sets(name, seed, plan))
        if progress is not None:
            progress(f"{name}: seed {seed + 1}/{seeds} done")
    summary = summarise_runs(runs, target, metric=key)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def _document(
    plan: _SetPlan,
    report: dict[str, Any],
    full: dict[str, float],
    *,
    metric: str,
    key: str,
    target: float,
    seeds: int,
    featurizer: str,
    featurize_seconds: float,
    started: float,
) -> dict[str, Any]:
    """What :func:`simulate_sets` returns, every key in one place."""
    data = plan.data
    return {
        "task": "multi-label",
        "metric": metric,
        "full_supervision": {**full, "featurizer": plan.view},
        "target_metric": key,
        f"target_{key}": round(target, 4),
        "strategies": report,
        "label_efficiency": label_efficiency(report),
        "settings": {
            "pool": len(data.pool_texts),
            "test": len(data.test_texts),
            "labels": list(data.labels),
            "label_cardinality": round(float(data.Y_pool.sum(axis=1).mean()), 3),
            "budget": plan.budget,
            "batch": plan.batch,
            "seeds": seeds,
            "featurizer": featurizer,
            "classifier": plan.classifier,
        },
        "seconds": {
            "featurize": round(featurize_seconds, 2),
            "total": round(time.perf_counter() - started, 2),
        },
    }


def curve_figures(
    Y_true: NDArray[Any], Y_pred: NDArray[Any], labels: Sequence[str]
) -> dict[str, float]:
    """A curve point's figures: set_metrics' micro-F1, macro-F1, Hamming loss and subset
    accuracy (also under ``accuracy``, the single-label simulator's key)."""
    figures = set_metrics(Y_true, Y_pred, labels)
    point = {name: float(figures[name]) for name in POINT_FIGURES}
    point["accuracy"] = point["subset_accuracy"]
    return point


@dataclass(frozen=True)
class SetData:
    """Pool and test set with their sets as indicator matrices, columns in ``labels`` order."""

    pool_texts: list[str]
    Y_pool: NDArray[np.uint8]
    test_texts: list[str]
    Y_test: NDArray[np.uint8]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class _SetPlan:
    """What every run shares: features, data, budget and training setup."""

    views: Views
    view: str
    data: SetData
    budget: int
    batch: int
    classifier: str


def _check_settings(
    strategies: Sequence[str], budget: int, batch: int, seeds: int, metric: str
) -> str:
    """The curve-point key of ``metric``, once the settings are checked."""
    check_run(strategies, budget, batch, seeds)
    if metric not in METRICS:
        raise BadInput(
            f"option '--metric': expected one of {', '.join(METRICS)} for multi-label "
            f"simulation, found {metric!r}"
        )
    return METRICS[metric]


def _prepare(
    train_texts: Sequence[str],
    train_sets: Sequence[Sequence[str]],
    labels: Sequence[str],
    test_texts: Sequence[str] | None,
    test_sets: Sequence[Sequence[str]] | None,
    test_size: float,
    split_seed: int,
) -> SetData:
    """Check the inputs, hold out a test set when none is given, build the matrices."""
    names = tuple(str(label) for label in labels)
    if len(names) < 1 or len(set(names)) != len(names):
        raise BadInput(f"expected distinct label names, found {list(names)}")
    pool_texts, pool_sets = list(train_texts), [list(s) for s in train_sets]
    if len(pool_texts) != len(pool_sets):
        raise BadInput(f"got {len(pool_texts)} texts but {len(pool_sets)} label sets")
    if (test_texts is None) != (test_sets is None):
        raise BadInput("give both test texts and test label sets, or neither")
    Y = indicator(pool_sets, names)
    if test_texts is None or test_sets is None:
        if not 0 < test_size < 1:
            raise BadInput(f"test_size must be between 0 and 1, found {test_size}")
        from sklearn.model_selection import train_test_split  # scikit-learn: ~1 s

        keep, held = train_test_split(
            np.arange(len(pool_texts)), test_size=test_size, random_state=split_seed
        )
        keep = np.sort(keep)
        tests, Y_test = [pool_texts[i] for i in held], Y[held]
        pool_texts, Y = [pool_texts[i] for i in keep], Y[keep]
    else:
        tests = list(test_texts)
        if len(tests) != len(test_sets):
            raise BadInput(f"got {len(tests)} test texts but {len(test_sets)} test label sets")
        Y_test = indicator([list(s) for s in test_sets], names)
    if not len(tests):
        raise BadInput("the test set is empty")
    if not (Y.any(axis=0) & ~Y.all(axis=0)).any():
        raise BadInput(
            "the pool must hold a label that some rows have and some have not to simulate "
            "learning; every label is on all of its rows or on none"
        )
    return SetData(pool_texts, Y, tests, Y_test, names)


def run_sets(name: str, seed: int, plan: _SetPlan) -> list[dict[str, Any]]:
    """One learning curve: rounds of query, oracle sets, retrain, test."""
    data, X_pool = plan.data, plan.views.pool[plan.view]
    rng = np.random.default_rng(seed)
    n_pool = data.Y_pool.shape[0]
    budget = min(plan.budget, n_pool)
    is_labelled = np.zeros(n_pool, dtype=bool)
    order: list[int] = []
    model: OneVsRest | None = None
    curve = []
    while len(order) < budget:
        unlabelled = np.flatnonzero(~is_labelled)
        size = min(plan.batch, budget - len(order))
        chosen = _query(name, model, plan, unlabelled, order, size, rng)
        order.extend(int(i) for i in chosen)
        is_labelled[chosen] = True
        labelled = np.asarray(order, dtype=np.intp)
        model = _fit(X_pool[labelled], data.Y_pool[labelled], data.labels, plan.classifier, seed)
        if model is not None:
            predicted = model.predict(plan.views.test[plan.view])
        else:  # no model: every test item gets the labels most bought items have
            common = data.Y_pool[labelled].mean(axis=0) >= 0.5
            predicted = np.tile(common.astype(np.uint8), (data.Y_test.shape[0], 1))
        point = curve_figures(data.Y_test, predicted, data.labels)
        curve.append({"labels": len(order), **point, "featurizer": plan.view})
    return curve


def _query(
    name: str,
    model: OneVsRest | None,
    plan: _SetPlan,
    unlabelled: NDArray[np.intp],
    order: list[int],
    size: int,
    rng: np.random.Generator,
) -> NDArray[np.intp]:
    """Pool rows to label next (:func:`labeling.rounds.simulate.query_batch` on sets)."""
    X_pool = (
        plan.views.pool[plan.view] if model is not None else plan.views.cold_start_rows(plan.view)
    )
    return query_batch(
        name,
        model,
        X_pool,
        unlabelled,
        order,
        size,
        rng,
        known=plan.data.Y_pool,
        predict=lambda fitted, rows: as_multilabel(fitted.predict_proba(rows)),
    )


def _fit(
    X: Any, Y: NDArray[np.uint8], labels: tuple[str, ...], classifier: str, seed: int
) -> OneVsRest | None:
    """The multi-label round's model on the sets bought so far; None while no label can be
    learnt (a cold start, as in rounds)."""
    if len(Y) < 2:
        return None
    try:
        return train_multilabel(X, Y, labels, classifier=classifier, seed=seed)
    except NotEnoughLabels:
        return None


# --- Files ----------------------------------------------------------------------------------


def read_label_sets(
    path: Path,
    *,
    text_field: str,
    label_field: str,
    sep: str = DEFAULT_LABEL_SEP,
    labels: Sequence[str] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """Texts and label sets of a fully labelled file, each label cell read as import reads it
    (:func:`labeling.store.labelsets.parse_cell`).

    A missing field, an empty text, an empty label cell (simulate needs every row labelled;
    ``[]`` is the empty set), a malformed cell or, when ``labels`` is given, a name outside
    it is refused naming the file, the row and the field.
    """
    check_file(path, str(path))
    fmt = detect_format(path)
    row_word = "line" if fmt in ("csv", "tsv", "jsonl") else "row"
    known = None if labels is None else set(labels)
    texts: list[str] = []
    sets: list[list[str]] = []
    for chunk in open_reader(path, fmt).chunks():
        for number, row in zip(chunk.numbers, chunk.rows, strict=True):
            where = f"{path}: {row_word} {number}"
            for name, option in ((text_field, "--text-field"), (label_field, "--label-field")):
                if name not in row:
                    raise ImportFailed(
                        f"{where}: no field {name!r} (option '{option}'); "
                        f"fields are: {', '.join(map(str, row))}"
                    )
            text = row[text_field]
            if not isinstance(text, str) or not text.strip():
                raise ImportFailed(
                    f"{where}, field {text_field!r}: expected a text, found {text!r}"
                )
            try:
                names = parse_cell(row[label_field], sep)
            except ValueError as exc:
                raise ImportFailed(f"{where}, field {label_field!r}: {exc}") from exc
            if names is None:
                raise ImportFailed(
                    f"{where}, field {label_field!r}: empty; simulate needs every row's set "
                    "(write [] for a row with none of the labels)"
                )
            unknown = sorted(set(names) - known) if known is not None else []
            if unknown:
                raise ImportFailed(
                    f"{where}, field {label_field!r}: unknown label {unknown[0]!r}; expected "
                    f"one of the {len(labels or [])} labels {_some(labels or [])}"
                )
            texts.append(text)
            sets.append(names)
    if not texts:
        raise ImportFailed(f"{path}: no data rows")
    return texts, sets


def _some(names: Sequence[str], shown: int = 8) -> str:
    """The first few names, for a message."""
    head = ", ".join(names[:shown])
    return head + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")


def simulate_set_files(
    data: str | Path,
    *,
    text_field: str,
    label_field: str,
    label_sep: str = DEFAULT_LABEL_SEP,
    labels: Sequence[str] | None = None,
    test: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`simulate_sets` on labelled files, as ``labelloop simulate --task multi-label``
    runs it. ``labels``: the label order (any other name is refused); default: the names the
    data file holds, sorted (a name only the test file holds is then refused). ``options``:
    :func:`simulate_sets`' keywords (``strategies`` None: the default strategy; ``random``
    always runs as the baseline)."""
    if labels is not None:
        check_separator(tuple(labels), label_sep)
    texts, sets = read_label_sets(
        Path(data), text_field=text_field, label_field=label_field, sep=label_sep, labels=labels
    )
    names = list(labels) if labels is not None else sorted({n for s in sets for n in s})
    test_texts = test_sets = None
    if test is not None:
        test_texts, test_sets = read_label_sets(
            Path(test), text_field=text_field, label_field=label_field, sep=label_sep, labels=names
        )
    strategies = options.pop("strategies", None) or [DEFAULT_STRATEGY]
    try:
        return simulate_sets(
            texts,
            sets,
            labels=names,
            test_texts=test_texts,
            test_sets=test_sets,
            strategies=list(dict.fromkeys([BASELINE, *strategies])),
            **options,
        )
    except (ValueError, KeyError) as exc:
        raise LabelloopError(str(exc)) from exc


def simulate_task_files(
    data: str | Path,
    *,
    task: str = SINGLE_LABEL,
    label_sep: str = DEFAULT_LABEL_SEP,
    labels: Sequence[str] | None = None,
    metric: str = DEFAULT_METRIC,
    lfs_file: str | Path | None = None,
    chart: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """``labelloop simulate`` for either task type: single-label files go to
    :func:`labeling.rounds.simulate.simulate_files` unchanged, multi-label ones to
    :func:`simulate_set_files`.

    Single-label: ``metric`` must be ``macro-f1`` (what it always measured; micro-F1 of one
    label per item is accuracy, reported beside it), ``labels`` is not taken, and a
    multi-label-only strategy is refused naming it. Multi-label: ``lfs_file`` is refused
    (weak label sets do not train rounds yet).
    """
    if task not in TASKS:
        raise BadInput(f"option '--task': expected one of {', '.join(TASKS)}, found {task!r}")
    if task == MULTI_LABEL:
        if options.pop("zero_shot", False) or options.pop("descriptions", None):
            raise BadInput(
                "option '--zero-shot': the zero-shot start is single-label for now; leave it out"
            )
        if lfs_file is not None:
            raise BadInput(
                "option '--lfs': weak labels do not train multi-label simulations yet "
                "(LFs that vote label sets are not built); leave it out"
            )
        report = simulate_set_files(
            data, label_sep=label_sep, labels=labels, metric=metric, **options
        )
        if chart is not None:
            write_chart(report, chart)
        return report
    if metric != DEFAULT_METRIC:
        raise BadInput(
            f"option '--metric': a single-label simulation reads macro-f1, found {metric!r} "
            "(micro-F1 of one label per item is the accuracy it reports too); "
            "other metrics need --task multi-label"
        )
    if labels is not None:
        raise BadInput("option '--labels' applies to --task multi-label only")
    refused = [name for name in options.get("strategies") or [] if name in MULTILABEL_ONLY]
    if refused:
        raise BadInput(
            f"strategy {refused[0]!r} is for label sets only (--task multi-label); "
            f"the file is single-label"
        )
    return simulate_files(data, lfs_file=lfs_file, chart=chart, **options)
