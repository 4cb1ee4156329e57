"""Play the active-learning loop on a fully labelled data set, with its labels as the oracle.

For each strategy and seed the simulator starts from nothing, asks the strategy for a batch,
"labels" it from the file, retrains and scores the test set, until the budget is spent. The
learning curves, averaged over seeds, show how many labels each strategy needs; the
full-supervision score (a model on every pool label) says what "good enough" means. No database
and no CLI here: ``labelloop simulate`` is a thin layer over :func:`simulate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeling.config import WorkspaceConfig
from labeling.errors import BadInput
from labeling.rounds.featurizers import DEFAULT_FEATURIZER
from labeling.rounds.learner import DEFAULT_CLASSIFIER, predict_proba, train, weak_sample_weights
from labeling.rounds.learning_curves import (
    BASELINE,
    label_efficiency,
    summarise_runs,
)
from labeling.rounds.simulate_features import Views, choose, featurize_views, trained_view
from labeling.rounds.zero_shot import align_columns, blend, fade_weight, prior_batch
from strategies import DEFAULT_STRATEGY, STRATEGIES, get_strategy

#: Fraction of full-supervision macro-F1 a strategy must reach to count as "there".
TARGET_FRACTION = 0.95


def simulate(
    train_texts: Sequence[str],
    train_labels: Sequence[Any],
    *,
    test_texts: Sequence[str] | None = None,
    test_labels: Sequence[Any] | None = None,
    test_size: float = 0.25,
    label_names: Sequence[Any] | None = None,
    strategies: Sequence[str] = (BASELINE, DEFAULT_STRATEGY),
    budget: int = 200,
    batch: int = 10,
    seeds: int = 5,
    featurizer: str = DEFAULT_FEATURIZER,
    classifier: str = DEFAULT_CLASSIFIER,
    weak_labels: ArrayLike | None = None,
    weak_confidence: ArrayLike | None = None,
    weak_weight: float = WorkspaceConfig.weak_weight,
    weak_threshold: float = WorkspaceConfig.weak_threshold,
    weak_balance: float = WorkspaceConfig.weak_balance,
    split_seed: int = 0,
    prior_for: Callable[[list[str]], NDArray[np.float64]] | None = None,
    prior_fade: float = 20.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Learning curves of each strategy on a labelled data set: ``simulate --json``'s document
    (docs/cli.md), plus per-seed details, the target score, settings and timings.

    Parameters
    ----------
    train_texts, train_labels, label_names
        The pool and its true labels (the oracle); the label order (default: both sets', sorted).
    test_texts, test_labels, test_size, split_seed
        The test set; when absent, ``test_size`` of the pool is held out (stratified, seeded by
        ``split_seed``) and weak labels, if any, follow their rows.
    strategies, budget, batch, seeds, featurizer, classifier
        Registered strategy names (``random``: the passive baseline); labels per run and per
        round; how many seeds (0 .. seeds-1) to average; registry names from
        :mod:`labeling.rounds.featurizers` and :mod:`labeling.rounds.learner`.
    weak_labels, weak_confidence, weak_threshold, weak_weight, weak_balance
        Optional weak labels of the pool rows (index into ``label_names``, or -1) and their
        confidence in [0, 1]; the confident ones train as in rounds (:class:`_Weak`).
    prior_for, prior_fade
        A zero-shot prior: texts -> P(label), columns in ``label_names`` order, blended into the
        ranking (:func:`_run`); ``prior_macro_f1`` is its own score on test.
    progress
        Called with a short message after each strategy and seed (for a CLI's stderr).
    """
    started = time.perf_counter()
    _check_settings(strategies, budget, batch, seeds, weak_weight, weak_threshold)
    test, weak_rows = (test_texts, test_labels), (weak_labels, weak_confidence)
    data = _prepare(train_texts, train_labels, test, test_size, label_names, weak_rows, split_seed)
    views, featurize_seconds = _featurize(featurizer, data)
    full = _full_supervision(views, data, classifier)
    weak = _weak_training_set(data, weak_threshold, weak_weight, weak_balance)
    prior = None if prior_for is None else (prior_for(data.pool_texts), prior_fade)
    plan = _Plan(views, data, budget, batch, classifier, weak, prior)
    report = _curves(plan, strategies, seeds, TARGET_FRACTION * full["macro_f1"], progress)
    settings = {"budget": budget, "batch": batch, "seeds": seeds, "featurizer": featurizer}
    done = _result(full, report, plan, settings, featurize_seconds, started)
    return done if prior_for is None else {**done, "prior_macro_f1": _prior_alone(prior_for, data)}


def _prior_alone(prior_for: Callable[[list[str]], NDArray[np.float64]], data: _Data) -> float:
    """The zero-shot prior's own macro-F1 on the test set (its most likely label per text)."""
    alone = prior_for(data.test_texts).argmax(axis=1)
    return _evaluate(alone, data.y_test, len(data.labels))["macro_f1"]


def _featurize(featurizer: str, data: _Data) -> tuple[Views, float]:
    """The pool's and the test set's features per view (featurizers fitted on the pool), and
    the seconds it took."""
    started = time.perf_counter()
    views = featurize_views(featurizer, data.pool_texts, data.test_texts)
    return views, time.perf_counter() - started


def _full_supervision(views: Views, data: _Data, classifier: str) -> dict[str, Any]:
    """Test scores of a model trained on every pool label: what "good enough" means. With
    ``auto``, the best candidate's (the target is then reachable by the best fixed choice)."""
    best: dict[str, Any] = {}
    for name, model_name in trained_view(views, classifier):
        full_model = train(views.pool[name], data.y_pool, classifier=model_name, seed=0)
        scores = _evaluate(full_model.predict(views.test[name]), data.y_test, len(data.labels))
        if not best or scores["macro_f1"] > best["macro_f1"]:
            best = {**scores, "featurizer": name}
    return best


def _curves(
    plan: _Plan,
    strategies: Sequence[str],
    seeds: int,
    target: float,
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """Each strategy's learning curves over ``seeds`` runs, summarised against ``target``."""
    report: dict[str, Any] = {}
    for name in strategies:
        strategy_started = time.perf_counter()
        runs = []
        for seed in range(seeds):
            runs.append(_run(name, seed, plan))
            if progress is not None:
                progress(f"{name}: seed {seed + 1}/{seeds} done")
        report[name] = summarise_runs(runs, target)
        report[name]["seconds"] = round(time.perf_counter() - strategy_started, 2)
    return report


def _result(
    full: dict[str, float],
    report: dict[str, Any],
    plan: _Plan,
    settings: dict[str, Any],
    featurize_seconds: float,
    started: float,
) -> dict[str, Any]:
    """What :func:`simulate` returns."""
    data, weak = plan.data, plan.weak
    return {
        "full_supervision": full,
        "target_macro_f1": round(TARGET_FRACTION * full["macro_f1"], 4),
        "strategies": report,
        "label_efficiency": label_efficiency(report),
        "settings": {
            "pool": len(data.pool_texts),
            "test": len(data.test_texts),
            "labels": [str(label) for label in data.labels],
            **settings,
            "classifier": plan.classifier,
            "weak_labels_used": int(len(weak[1])) if weak is not None else 0,
        },
        "seconds": {
            "featurize": round(featurize_seconds, 2),
            "total": round(time.perf_counter() - started, 2),
        },
    }


@dataclass(frozen=True)
class _Data:
    """Pool and test set with labels as indices into ``labels``."""

    pool_texts: list[str]
    y_pool: NDArray[np.intp]
    test_texts: list[str]
    y_test: NDArray[np.intp]
    labels: list[Any]
    weak: tuple[NDArray[np.intp], NDArray[np.float64]] | None


def check_run(strategies: Sequence[str], budget: int, batch: int, seeds: int) -> None:
    """Refuse a simulation without strategies, with an unknown one, or a count below 1."""
    if not strategies:
        raise BadInput("expected at least one strategy to simulate")
    for name in strategies:
        if name not in STRATEGIES:
            get_strategy(name)  # raises with the known names
    for option, value in (("budget", budget), ("batch", batch), ("seeds", seeds)):
        if value < 1:
            raise BadInput(f"{option} must be at least 1, found {value}")


def _check_settings(
    strategies: Sequence[str],
    budget: int,
    batch: int,
    seeds: int,
    weak_weight: float,
    weak_threshold: float,
) -> None:
    check_run(strategies, budget, batch, seeds)
    if not 0 < weak_weight < 1:
        raise BadInput(f"weak_weight must be between 0 and 1 (exclusive), found {weak_weight}")
    if not 0 <= weak_threshold <= 1:
        raise BadInput(f"weak_threshold must be between 0 and 1, found {weak_threshold}")


def _prepare(
    train_texts: Sequence[str],
    train_labels: Sequence[Any],
    test: tuple[Sequence[str] | None, Sequence[Any] | None],
    test_size: float,
    label_names: Sequence[Any] | None,
    weak_rows: tuple[ArrayLike | None, ArrayLike | None],
    split_seed: int,
) -> _Data:
    """Validate the inputs, split off a test set when needed, map labels to indices.

    ``test`` holds the test texts and labels (or two None), ``weak_rows`` the weak labels and
    confidences of the pool rows (or None).
    """
    pool_texts, pool_labels = list(train_texts), list(train_labels)
    if len(pool_texts) != len(pool_labels):
        raise BadInput(f"got {len(pool_texts)} texts but {len(pool_labels)} labels")
    weak = _check_weak(*weak_rows, len(pool_texts))
    test_texts, test_labels = test
    if (test_texts is None) != (test_labels is None):
        raise BadInput("give both test texts and test labels, or neither")
    if test_texts is None or test_labels is None:
        if not 0 < test_size < 1:
            raise BadInput(f"test_size must be between 0 and 1, found {test_size}")
        rows = np.arange(len(pool_texts))
        from sklearn.model_selection import train_test_split  # scikit-learn: ~1 s

        keep, held = train_test_split(
            rows, test_size=test_size, random_state=split_seed, stratify=pool_labels
        )
        keep = np.sort(keep)
        tests = ([pool_texts[i] for i in held], [pool_labels[i] for i in held])
        pool_texts = [pool_texts[i] for i in keep]
        pool_labels = [pool_labels[i] for i in keep]
        weak = (weak[0][keep], weak[1][keep]) if weak is not None else None
    else:
        tests = (list(test_texts), list(test_labels))
        if len(tests[0]) != len(tests[1]):
            raise BadInput(f"got {len(tests[0])} test texts but {len(tests[1])} test labels")
    labels = list(label_names) if label_names is not None else sorted(set(pool_labels + tests[1]))
    index = {label: position for position, label in enumerate(labels)}
    unknown = sorted({str(v) for v in pool_labels + tests[1] if v not in index})
    if unknown:
        raise BadInput(f"labels not in the label list {labels}: {', '.join(unknown[:5])}")
    y_pool = np.array([index[v] for v in pool_labels], dtype=np.intp)
    y_test = np.array([index[v] for v in tests[1]], dtype=np.intp)
    if len(np.unique(y_pool)) < 2:
        raise BadInput("the pool must hold at least 2 classes to simulate learning")
    if not len(y_test):
        raise BadInput("the test set is empty")
    return _Data(pool_texts, y_pool, tests[0], y_test, labels, weak)


def _check_weak(
    weak_labels: ArrayLike | None, weak_confidence: ArrayLike | None, n_rows: int
) -> tuple[NDArray[np.intp], NDArray[np.float64]] | None:
    if weak_labels is None:
        return None
    labels = np.asarray(weak_labels, dtype=np.intp)
    confidence = (
        np.ones(n_rows) if weak_confidence is None else np.asarray(weak_confidence, dtype=float)
    )
    if labels.shape != (n_rows,) or confidence.shape != (n_rows,):
        raise BadInput(
            f"expected one weak label and confidence per pool row ({n_rows}), found "
            f"{labels.shape[0] if labels.ndim else 0} labels, "
            f"{confidence.shape[0] if confidence.ndim else 0} confidences"
        )
    return labels, confidence


class _Weak(NamedTuple):
    """Pool rows with a confident weak label (at ``weak_threshold`` or above), and how rounds
    weigh them while the oracle has not labelled them
    (:func:`labeling.rounds.learner.weak_sample_weights`: ``weight * confidence``, all of them
    together at most ``balance`` times the oracle labels so far)."""

    rows: NDArray[np.intp]
    labels: NDArray[np.intp]
    confidence: NDArray[np.float64]
    weight: float
    balance: float


def _weak_training_set(
    data: _Data, threshold: float, weight: float, balance: float
) -> _Weak | None:
    """Pool rows with a confident weak label."""
    if data.weak is None:
        return None
    labels, confidence = data.weak
    if labels.max(initial=-1) >= len(data.labels):
        raise BadInput(f"weak labels must be -1 or below {len(data.labels)} (label indices)")
    rows = np.flatnonzero((labels >= 0) & (confidence >= threshold))
    return _Weak(rows, labels[rows], confidence[rows], weight, balance)


class _Plan(NamedTuple):
    """What every run of a simulation shares: features, data, budget and training setup."""

    views: Views
    data: _Data
    budget: int
    batch: int
    classifier: str
    weak: _Weak | None
    prior: tuple[NDArray[np.float64], float] | None = None  # pool rows' prior, fade


def _run(name: str, seed: int, plan: _Plan) -> list[dict[str, Any]]:
    """One learning curve: rounds of query, oracle labels, retrain, test. Every strategy but
    ``random`` (random from the first batch on) starts with ``cold_start`` until the labels
    hold two classes (or weak labels already give a model); with a zero-shot prior, with
    :func:`~labeling.rounds.zero_shot.prior_batch` instead, and then ranks on the blend
    ``w * prior + (1 - w) * model``, ``w = prior_fade / (prior_fade + labels)``. The curve
    stays the model's own scores."""
    views, data, budget, batch, _classifier, weak, prior = plan
    rng = np.random.default_rng(seed)
    n_pool = data.y_pool.shape[0]
    budget = min(budget, n_pool)
    is_labelled = np.zeros(n_pool, dtype=bool)
    order: list[int] = []
    model, view = _step_model(plan, is_labelled, order, seed)
    curve = []
    while len(order) < budget:
        unlabelled = np.flatnonzero(~is_labelled)
        size = min(batch, budget - len(order))
        X_pool = views.pool[view] if model is not None else views.cold_start_rows(view)
        if prior is not None and name != BASELINE and model is None:
            picked, _ = prior_batch(prior[0][unlabelled], X_pool[unlabelled], size, rng=rng)
            chosen = unlabelled[picked]
        else:
            predict = predict_proba if prior is None else _blended(prior, unlabelled, len(order))
            chosen = query_batch(
                name,
                model,
                X_pool,
                unlabelled,
                order,
                size,
                rng,
                known=data.y_pool,
                predict=predict,
            )
        order.extend(int(i) for i in chosen)
        is_labelled[chosen] = True
        model, view = _step_model(plan, is_labelled, order, seed)
        predicted = (
            model.predict(views.test[view])
            if model is not None
            else np.full(len(data.y_test), data.y_pool[order[0]])
        )
        point = _evaluate(predicted, data.y_test, len(data.labels))
        curve.append({"labels": len(order), **point, "featurizer": view})
    return curve


def _blended(
    prior: tuple[NDArray[np.float64], float], unlabelled: NDArray[np.intp], n_labels: int
) -> Callable[[Any, Any], Any]:
    """``predict`` for :func:`query_batch`: the model's probabilities of the unlabelled rows
    blended with their prior (as a workspace's queue reads them)."""
    weight = fade_weight(n_labels, prior[1])

    def predict(model: Any, rows: Any) -> Any:
        aligned = align_columns(prior[0][unlabelled], range(prior[0].shape[1]), model.classes_)
        return blend(aligned, predict_proba(model, rows), weight)

    return predict


def _step_model(
    plan: _Plan, is_labelled: NDArray[np.bool_], order: list[int], seed: int
) -> tuple[Any, str]:
    """A simulated round's view (chosen as a round would) and its model (None: cold start)."""
    labelled = np.asarray(order, dtype=np.intp)
    selection = choose(plan.views, labelled, plan.data.y_pool[labelled], plan.classifier, seed)
    X_pool = plan.views.pool[selection.featurizer]
    model = _fit(X_pool, plan.data.y_pool, is_labelled, plan.weak, selection.classifier, seed)
    return model, selection.featurizer


def query_batch(
    name: str,
    model: Any,
    X_pool: Any,
    unlabelled: NDArray[np.intp],
    order: list[int],
    size: int,
    rng: np.random.Generator,
    *,
    known: Any,
    predict: Callable[[Any, Any], Any],
) -> NDArray[np.intp]:
    """Pool rows to label next: the strategy's picks, or cold start before any model.

    ``known`` holds every pool row's true label (or label set), read for the rows labelled so
    far (``order``); ``predict(model, rows)`` gives the strategy its probabilities (``qbc``
    takes the model itself). Single-label and multi-label simulations share it.
    """
    if model is None and name != BASELINE:
        name = "cold_start"
    labelled = np.asarray(order, dtype=np.intp)
    pool = X_pool[unlabelled]
    proba = predict(model, pool) if model is not None else None
    picked, _ = get_strategy(name)(
        model if name == "qbc" else proba,
        pool,
        size,
        rng=rng,
        labelled_features=X_pool[labelled] if len(labelled) else None,
        labelled_labels=known[labelled] if len(labelled) else None,
    )
    return unlabelled[picked]


def _fit(
    X_pool: Any,
    y_pool: NDArray[np.intp],
    is_labelled: NDArray[np.bool_],
    weak: _Weak | None,
    classifier: str,
    seed: int,
) -> Any:
    """A model on the oracle labels so far plus confident weak labels; None below 2 classes."""
    rows = np.flatnonzero(is_labelled)
    y = y_pool[rows]
    weights = np.ones(len(rows))
    if weak is not None:
        fresh = ~is_labelled[weak.rows]
        weak_w = weak_sample_weights(
            weak.confidence[fresh],
            weak_weight=weak.weight,
            n_human=len(rows),
            weak_balance=weak.balance,
        )
        rows = np.concatenate([rows, weak.rows[fresh]])
        y = np.concatenate([y, weak.labels[fresh]])
        weights = np.concatenate([weights, weak_w])
    if len(np.unique(y)) < 2:
        return None
    return train(X_pool[rows], y, weights, classifier=classifier, seed=seed)


def _evaluate(predicted: ArrayLike, truth: NDArray[np.intp], n_labels: int) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score  # scikit-learn: ~1 s

    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(
            float(
                f1_score(truth, predicted, average="macro", labels=range(n_labels), zero_division=0)
            ),
            4,
        ),
    }
