"""A retraining round, run: train on the labels so far, evaluate, score the pool, maybe promote.

:func:`run_round` runs a claimed round (:mod:`labeling.rounds.jobs`) through these stages; in
brackets, the stage names the heartbeat writes on the round and ``labelloop retrain`` prints
(see docs/rounds.md):

1. **read pool** ("reading labels"): the pool, the gold items, the current labels (majority per
   item, gold excluded) and the weak labels (:mod:`labeling.rounds.pool`);
2. **features** ("fitting the featurizer" the first time, "featurizing"): every item's rows of
   each feature block the ``featurizer`` setting needs (tfidf, embeddings), through the
   on-disk feature cache, only new items featurized (:mod:`labeling.rounds.pool`);
3. **train** ("training"): the representation (the fixed featurizer, or with ``auto`` the
   cross-validated choice of :mod:`labeling.rounds.representations`), then the classifier on
   human labels plus confident weak labels (:mod:`labeling.rounds.training`); with fewer than
   two classes labelled, no model, and the pool is ranked by ``cold_start`` (over the
   embeddings when the round has them);
4. **evaluate** ("evaluating"): on gold, or else by cross-validation, said as such
   (:mod:`labeling.rounds.evaluation`);
5. **score** ("scoring the pool"): predict every pool item and rank the open ones with the
   strategy (:mod:`labeling.rounds.scores`);
6. **quality checks** ("checking labels"): the stop set, the out-of-sample check of people's
   labels, the pool's predicted mix, coverage;
7. **save** ("saving"): the queue's score rows, then the round folder, written to
   ``models/.round-NNNN.tmp`` and renamed (:mod:`labeling.rounds.artifacts`);
8. **promote**: if it is not worse on gold than the promoted round
   (:mod:`labeling.rounds.promotion`).

A failure at any stage is recorded on the round (:func:`labeling.rounds.jobs.record_failure`)
and its temporary folder removed; the promoted round stays as it was.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import numpy as np

from labeling.config import CONFIG_FILE
from labeling.context import Context
from labeling.errors import BadInput, LabelloopError
from labeling.quality.coverage import coverage
from labeling.rounds.artifacts import cleanup_tmp, save_model
from labeling.rounds.evaluation import evaluate, label_checks
from labeling.rounds.jobs import (
    Heartbeat,
    RoundError,
    StageCallback,
    claim_queued,
    queue_round,
    record_failure,
    recover,
)
from labeling.rounds.pool import EMBEDDINGS, PoolData, bulk_only_count, feature_blocks, load_pool
from labeling.rounds.predictions import PREDICTION_LABELS_FILE, PREDICTIONS_FILE, prediction_table
from labeling.rounds.promotion import finish, get_round, list_rounds
from labeling.rounds.representations import compose
from labeling.rounds.scores import PoolScores, predict_pool, rank_open, store_scores
from labeling.rounds.training import Trained, choose_representation, train_round_model
from labeling.rounds.zero_shot import fade_weight
from labeling.rounds.zero_shot_round import RoundPrior, blended, rank_with_prior, round_prior
from labeling.store import db, labelsets
from labeling.store.models import Round
from strategies import DEFAULT_STRATEGY, MULTILABEL_ONLY, STRATEGIES, get_strategy

COLD_START_NOTE = (
    "cold start: fewer than two classes labelled, so no model was trained; the queue "
    "is ordered for diversity"
)

ZERO_SHOT_START_NOTE = (
    "cold start: fewer than two classes labelled, so no model was trained; the queue "
    "is ordered by the zero-shot prior (each label's surest items, and typical ones)"
)


def retrain(
    ws: Context,
    *,
    strategy: str | None = None,
    trigger: str = "cli",
    progress: StageCallback | None = None,
) -> Round:
    """Queue a round and run it here, now (the CLI and the Python API)."""
    if strategy is not None:
        check_strategy(ws, strategy, "option '--strategy'")
    recover(ws)
    round_ = queue_round(ws, trigger=trigger, strategy=strategy)
    assert round_.id is not None
    claimed = claim_queued(ws, round_id=round_.id)
    if claimed is None:
        running = [r for r in list_rounds(ws) if r.status == "running"]
        raise RoundError(
            f"round {running[0].id if running else '?'} is running; one round runs at a time. "
            f"Round {round_.id} is queued and the worker of `labelloop serve` will run it."
        )
    return run_round(ws, claimed, progress=progress)


def run_round(ws: Context, round_id: int, *, progress: StageCallback | None = None) -> Round:
    """Run a claimed (``running``) round to the end; failures are recorded, not raised."""
    echo = progress or (lambda _stage: None)
    with Heartbeat(ws, round_id) as beat:

        def stage(text: str) -> None:
            beat.set(text)
            echo(text)

        try:
            run_stages(ws, round_id, stage)
        except Exception as exc:  # recorded on the round: the worker and the queue go on
            detail = str(exc) if isinstance(exc, LabelloopError) else repr(exc)
            record_failure(ws, round_id, detail, traceback.format_exc()[-4000:])
            cleanup_tmp(ws, round_id)
    return get_round(ws, round_id)


def run_stages(ws: Context, round_id: int, stage: StageCallback) -> None:
    """The round's stages in order; ``stage`` is called with each one's name as it starts."""
    started = time.perf_counter()
    strategy_name = _strategy_of(ws, round_id)
    data, pool_rows = _read_pool(ws, stage)
    blocks = feature_blocks(ws, data, stage)
    prior, prior_metrics = round_prior(ws, data, blocks, stage)
    stage("training")
    selection = choose_representation(ws, data, blocks)
    X = compose(selection.featurizer, blocks.rows)
    trained = train_round_model(ws, data, X, selection.classifier)
    if trained.model is None:
        strategy_name = "zero_shot_start" if prior is not None else "cold_start"
    metrics: dict[str, Any] = {
        "n_human": trained.n_human,
        "n_weak": trained.n_weak,
        "n_bulk": bulk_only_count(ws),  # of the n_human, labelled by bulk batches alone
    }
    metrics |= _evaluate(ws, data, X, trained, stage)
    # Cold start clusters the embeddings when the round has them (meanings group better).
    cold_rows = blocks.rows.get(EMBEDDINGS, X)
    scored, open_rows = _score(
        ws, round_id, data, pool_rows, (X, cold_rows), trained, (strategy_name, prior), stage
    )
    if prior_metrics:
        if prior is not None and trained.model is not None:
            prior_metrics["weight"] = round(
                fade_weight(trained.n_human, ws.config.zero_shot_fade), 4
            )
        elif prior is not None:
            metrics["note"] = ZERO_SHOT_START_NOTE
        metrics["zero_shot"] = prior_metrics
    checks, extras, arrays = _check_quality(ws, data, X, pool_rows, scored, trained, stage)
    metrics |= checks
    stage("saving")
    written = store_scores(ws, round_id, data.item_ids, pool_rows, scored)
    metrics |= {
        "strategy": strategy_name,
        "featurizer": blocks.version(selection.featurizer),
        "classifier": selection.classifier if trained.model is not None else None,
        "representation": selection.as_dict(),
        "pool": len(pool_rows),
        "open": len(open_rows),
        "queue_scored": written,
        "seconds": round(time.perf_counter() - started, 2),
    }
    path = save_model(ws, round_id, trained.model, metrics, extras, arrays)
    finish(
        ws, round_id, metrics, path, strategy_name, n_human=trained.n_human, n_weak=trained.n_weak
    )


def _strategy_of(ws: Context, round_id: int) -> str:
    """The round's query strategy; an unknown name fails here, before any work."""
    with db.read_session(ws.engine) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        name = round_.strategy or ws.config.strategy or DEFAULT_STRATEGY
    source = (
        f"{CONFIG_FILE}: key 'strategy'"
        if name == ws.config.strategy
        else "the round's strategy"
        if round_.strategy
        else "the default strategy"
    )
    check_strategy(ws, name, source)
    return name


def check_strategy(ws: Context, name: str, source: str) -> None:
    """Refuse, naming ``source``, a strategy that is unknown or made for the other task type
    (a multi-label-only strategy in a single-label workspace)."""
    try:
        get_strategy(name)
    except Exception as exc:
        raise BadInput(f"{source}: {exc}") from exc
    if name in MULTILABEL_ONLY and not ws.multilabel:
        others = ", ".join(sorted(set(STRATEGIES) - MULTILABEL_ONLY))
        raise BadInput(
            f"{source}: {name!r} ranks label sets and this workspace is single-label "
            f"(task = {ws.config.task!r}); use one of {others}"
        )


def _read_pool(ws: Context, stage: StageCallback) -> tuple[PoolData, np.ndarray]:
    stage("reading labels")
    data = load_pool(ws)
    pool_rows = np.flatnonzero(data.split == "pool")
    if len(pool_rows) == 0:
        raise RoundError("the pool is empty: import items before retraining")
    return data, pool_rows


def _evaluate(
    ws: Context, data: PoolData, X: Any, trained: Trained, stage: StageCallback
) -> dict[str, Any]:
    if trained.model is None:
        return {"evaluation": "none", "note": COLD_START_NOTE}
    stage("evaluating")
    return evaluate(ws, data, X, trained)


def _score(
    ws: Context,
    round_id: int,
    data: PoolData,
    pool_rows: np.ndarray,
    features: tuple[Any, Any],
    trained: Trained,
    ranking: tuple[str, RoundPrior | None],
    stage: StageCallback,
) -> tuple[PoolScores, np.ndarray]:
    """Every pool item's prediction, and the strategy's scores of the open ones.

    ``features``: the rows the model reads, and the rows cold start clusters; ``ranking``:
    the strategy and the zero-shot prior (None: none), which ranks the queue before the first
    model and is blended into the strategy's probabilities after."""
    stage("scoring the pool")
    X, cold_rows = features
    strategy_name, prior = ranking
    open_mask = data.n_labels[pool_rows] < ws.config.overlap
    open_rows = pool_rows[open_mask]
    scored, proba_open = predict_pool(trained.model, X, len(data.item_ids), pool_rows, open_mask)
    if len(open_rows) and prior is not None and trained.model is None:
        n = ws.config.batch_size
        scored.scores[open_rows] = rank_with_prior(prior, cold_rows, open_rows, n, round_id)
    elif len(open_rows):
        if prior is not None and proba_open is not None:
            proba_open = blended(
                prior,
                proba_open,
                open_rows,
                ws.labels,
                scored.names,
                trained.n_human,
                ws.config.zero_shot_fade,
            )
        scored.scores[open_rows] = rank_open(
            ws,
            round_id,
            data,
            X if trained.model is not None else cold_rows,
            open_rows,
            proba_open,
            trained,
            strategy_name,
        )
    return scored, open_rows


def _check_quality(
    ws: Context,
    data: PoolData,
    X: Any,
    pool_rows: np.ndarray,
    scored: PoolScores,
    trained: Trained,
    stage: StageCallback,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """Metrics, JSON files and arrays for the round folder: with a model, the label checks,
    the pool's predicted mix and every prediction; always, the coverage."""
    metrics: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    if trained.model is not None:
        stage("checking labels")
        names, codes = scored.names, scored.codes
        extras = label_checks(ws, data, X, pool_rows, names, codes, trained)
        mix = np.bincount(codes[pool_rows].astype(np.int64), minlength=len(names))
        if ws.multilabel:  # items predicted to hold each label
            by_set = {names[k]: int(n) for k, n in enumerate(mix.tolist()) if n}
            metrics["pool_mix"] = {
                k: v for k, v in labelsets.per_label(by_set, ws.labels, True).items() if v
            }
        else:
            metrics["pool_mix"] = dict(
                sorted((names[k], int(n)) for k, n in enumerate(mix.tolist()) if n)
            )
        extras[PREDICTION_LABELS_FILE] = {"labels": names}
        arrays[PREDICTIONS_FILE] = prediction_table(
            data.item_ids, pool_rows, codes, scored.confidence
        )
    with db.read_session(ws.engine) as session:
        metrics["coverage"] = coverage(
            session, ws.labels, ws.config.weak_threshold, multilabel=ws.multilabel
        )
    metrics["coverage"].pop("per_class", None)
    return metrics, extras, arrays
