"""Retraining rounds: train on the labels so far, evaluate, score the pool, maybe promote.

A round goes ``queued`` -> ``running`` -> ``succeeded`` or ``failed``. One runs at a time per
workspace: :func:`claim_queued` flips the oldest queued round to running only when none is
running, in one write transaction. While it runs, a thread writes a heartbeat every
:data:`HEARTBEAT_SECONDS`; a running round whose heartbeat is older than
:data:`STALE_SECONDS` belonged to a worker that died, and :func:`recover` marks it failed.

What a round does (see docs/active_learning.md):

1. reads the pool, the gold items, the current labels (majority per item, gold excluded) and
   confident weak labels of unlabelled items (weighted below 1);
2. featurizes through the on-disk feature cache (only new items are featurized);
3. trains the configured classifier, or, with fewer than two classes labelled, ranks by the
   ``cold_start`` strategy with no model;
4. evaluates on gold (accuracy, macro-F1, per class) or, with no gold, by cross-validation,
   said as such;
5. ranks every open pool item with the strategy and stores the scores and predictions;
6. writes the model to ``models/.round-NNNN.tmp`` and renames it to ``models/round-NNNN``;
7. is promoted if it is not worse on gold than the promoted round (within
   ``promote_tolerance``); the first round always is. Promotion flips one flag in one
   transaction, and the queue reads that flag at every claim, so the switch is atomic and
   annotators keep labelling from the old scores until then.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from labeling.context import Context
from labeling.errors import BadInput, LabelloopError, StoreError
from labeling.quality import label_errors, stopping
from labeling.quality.coverage import coverage
from labeling.rounds import learner
from labeling.store import db
from labeling.store.answers import human_labels
from labeling.store.bulk import bulk_insert
from labeling.store.doctor import check
from labeling.store.models import (
    REMOVED,
    Item,
    Round,
    Score,
    WeakLabel,
    utcnow,
)
from labeling.store.processes import process_gone

HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 30.0
# How long a failed round waits for an unreachable store to record why it failed.
FAILURE_PATIENCE_SECONDS = 120.0
# Rounds whose scores are kept (the promoted one and the ones rollback may return to).
KEEP_SCORED_ROUNDS = 3
# Below this score, an item has no open place left; it sits at the end of the ranking.
CLOSED_SCORE = -1.0e30
# Rows per write transaction on SQLite for a round's bulk writes (scores, pruning).
SQLITE_WRITE_CHUNK = 2_000
MIN_CV_LABELS = 10
# Above this many open items, the strategy gets a view that reads feature rows from the
# on-disk cache block by block (see features.CachedRows) instead of a matrix in memory.
IN_MEMORY_ROWS = 100_000
# The queue order is stored for at most this many open items a round: the best-ranked ones.
# Annotators who get past them before the next round are served the rest in the seeded
# random order. Every pool item's prediction still goes to the round's predictions file.
QUEUE_SCORE_ROWS = 50_000
# The tfidf featurizer is fitted on at most this many pool texts (a seeded sample beyond).
FIT_SAMPLE_ROWS = 200_000
# Strategies that need the fitted estimator itself; the others get the pool's probabilities.
ESTIMATOR_STRATEGIES = frozenset({"qbc"})
# Each round's predictions for the whole pool, in its folder (see labeling.rounds.predictions).
PREDICTIONS_FILE = "predictions.npy"
PREDICTION_LABELS_FILE = "predictions.json"
PREDICTION_DTYPE = np.dtype([("item_id", "<i8"), ("label", "<i2"), ("confidence", "<f4")])

Progress = Callable[[str], None]


class RoundError(LabelloopError):
    """A round could not run (another is running, nothing to score...)."""


@dataclass(frozen=True)
class PoolData:
    """Everything a round reads from the store, as arrays in one order (texts are read only
    where items must be featurized: see :func:`texts_of`)."""

    item_ids: np.ndarray
    keys: list[str]
    split: np.ndarray  # "pool" or "gold"
    gold: list[str | None]
    human: dict[int, str]  # item id -> majority label of current answers (pool items only)
    n_labels: np.ndarray
    weak: dict[int, tuple[str, float]]


def _aware(moment: Any) -> Any:
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def round_dir(ws: Context, round_id: int) -> Path:
    return ws.models_dir / f"round-{round_id:04d}"


def _worker_name() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def lower_priority(nice: int) -> int:
    """Run this process at CPU priority ``nice`` (Unix nice value) or lower; returns the value
    in effect.

    Rounds are batch work beside people waiting on clicks: at a lower priority the kernel
    gives the annotators' processes (and the database server) the CPU first when both want it,
    and the round all of it otherwise. Every thread is set, numpy's pools included (on Linux a
    nice value belongs to a thread, and those threads exist before this call). The value only
    ever goes up: an unprivileged process cannot take it back.
    """
    if not hasattr(os, "setpriority") or nice <= 0:
        return os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # not Linux: the process
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:
            pass  # a thread that has ended, or a platform that refuses
    return os.getpriority(os.PRIO_PROCESS, 0)


# --------------------------------------------------------------------------- life cycle


def queue_round(ws: Context, *, trigger: str, strategy: str | None = None) -> Round:
    """Queue a round; if one is already queued, that one is returned (no pile-up), with
    ``strategy`` when one is given."""
    with db.write_session(ws.engine) as session:
        queued = session.exec(
            select(Round).where(Round.status == "queued").order_by(col(Round.id))
        ).first()
        if queued is not None:
            if strategy is not None and queued.strategy != strategy:
                queued.strategy = strategy  # the latest explicit request decides
                session.add(queued)
                session.flush()
            return queued
        round_ = Round(
            status="queued", trigger=trigger, strategy=strategy or ws.config.strategy or None
        )
        session.add(round_)
        session.flush()
        session.refresh(round_)
        return round_


def is_dead(round_: Round) -> bool:
    """Whether a running round's worker is gone: stale heartbeat, or no such local process."""
    stale = utcnow() - timedelta(seconds=STALE_SECONDS)
    return (
        round_.heartbeat is None or _aware(round_.heartbeat) < stale or process_gone(round_.worker)
    )


def recover(ws: Context) -> list[int]:
    """Mark failed every running round whose worker died.

    Dead means: its heartbeat is older than :data:`STALE_SECONDS`, or its worker was a process
    of this machine that no longer exists.
    """
    with db.write_session(ws.engine) as session:
        running = session.exec(select(Round).where(Round.status == "running")).all()
        dead = [r for r in running if is_dead(r)]
        for round_ in dead:
            round_.status = "failed"
            round_.error = (
                f"the worker running it ({round_.worker or 'unknown'}) stopped: no heartbeat "
                f"for more than {STALE_SECONDS:.0f} s"
            )
            round_.finished_at = utcnow()
            session.add(round_)
        return [r.id for r in dead if r.id is not None]


def claim_queued(ws: Context, *, round_id: int | None = None) -> int | None:
    """Start the oldest queued round (or ``round_id``) unless a round is running."""
    with db.write_session(ws.engine) as session:
        running = session.exec(select(Round.id).where(Round.status == "running")).first()
        if running is not None:
            return None
        query = select(Round).where(Round.status == "queued")
        if round_id is not None:
            query = query.where(Round.id == round_id)
        if session.get_bind().dialect.name != "sqlite":
            query = query.with_for_update(skip_locked=True)
        round_ = session.exec(query.order_by(col(Round.id))).first()
        if round_ is None:
            return None
        now = utcnow()
        round_.status = "running"
        round_.started_at = now
        round_.heartbeat = now
        round_.worker = _worker_name()
        round_.stage = "starting"
        session.add(round_)
        return round_.id


class _Heartbeat:
    """Writes the round's heartbeat and stage every few seconds from a thread."""

    def __init__(self, ws: Context, round_id: int) -> None:
        self.ws = ws
        self.round_id = round_id
        self.stage = "starting"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="round-heartbeat")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def set(self, stage: str) -> None:
        self.stage = stage
        self._beat()

    def _beat(self) -> None:
        try:
            with db.write_session(self.ws.engine) as session:
                session.execute(
                    update(Round)
                    .where(col(Round.id) == self.round_id, col(Round.status) == "running")
                    .values(heartbeat=utcnow(), stage=self.stage)
                )
        except Exception:  # a missed beat is retried; it must never kill the round
            pass

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._beat()


# --------------------------------------------------------------------------- reading the store


def load_pool(ws: Context) -> PoolData:
    with db.read_session(ws.engine) as session:
        rows = session.execute(
            select(  # type: ignore[call-overload]
                Item.id, Item.content_hash, Item.split, Item.gold_label, Item.n_labels
            )
            .where(col(Item.split) != REMOVED)  # removed items take no part (id order kept)
            .order_by(col(Item.id))
        ).all()
        human = human_labels(session, ws.labels)
        weak_rows = session.exec(select(WeakLabel.item_id, WeakLabel.label, WeakLabel.confidence))
        weak = {item_id: (label, float(conf)) for item_id, label, conf in weak_rows}
    return PoolData(
        item_ids=np.array([r[0] for r in rows], dtype=np.int64),
        keys=[r[1] for r in rows],
        split=np.array([r[2] for r in rows], dtype=object),
        gold=[r[3] for r in rows],
        human=human,
        n_labels=np.array([r[4] for r in rows], dtype=np.int64),
        weak=weak,
    )


# Ids per IN (...) when reading scattered texts: under every backend's parameter limit.
_IN_BATCH = 900


def texts_of(ws: Context, item_ids: np.ndarray) -> list[str]:
    """The texts of ``item_ids`` (ascending), in that order, read from the store.

    A dense run of ids (a cold featurize, or the items of a new import) is read as one id
    range; scattered ids go in batches of ``IN (...)``.
    """
    ids = [int(i) for i in item_ids]
    if not ids:
        return []
    found: dict[int, str] = {}
    with db.read_session(ws.engine) as session:
        low, high = min(ids), max(ids)
        if high - low + 1 <= 2 * len(ids):
            wanted = set(ids)
            for item_id, text in session.exec(
                select(Item.id, Item.text).where(col(Item.id).between(low, high))
            ):
                if item_id in wanted:
                    found[item_id] = text
        else:
            for start in range(0, len(ids), _IN_BATCH):
                batch = ids[start : start + _IN_BATCH]
                for item_id, text in session.exec(
                    select(Item.id, Item.text).where(col(Item.id).in_(batch))
                ):
                    found[int(item_id or 0)] = text
    return [found[i] for i in ids]


# --------------------------------------------------------------------------- the work


def _featurizer(ws: Context, data: PoolData, progress: Progress) -> Any:
    """The workspace's fitted featurizer: fitted once on the pool, then reused by every round.

    Reusing it keeps its version (and so the feature cache) stable across rounds; delete
    ``models/features/`` to refit after the pool has changed a lot. A featurizer that learns
    from texts (tfidf) is fitted on the pool, or a seeded sample of
    :data:`FIT_SAMPLE_ROWS` pool texts on bigger pools; stateless ones read no texts.
    """
    import joblib

    from labeling.rounds.features import make_featurizer

    folder = ws.models_dir / "features"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"featurizer-{ws.config.featurizer}.joblib"
    if path.exists():
        return joblib.load(path)
    featurizer = make_featurizer(ws.config.featurizer)
    if not featurizer.stateless:
        progress("fitting the featurizer")
        rows = np.flatnonzero(data.split == "pool")
        if len(rows) == 0:
            rows = np.arange(len(data.item_ids))
        if len(rows) > FIT_SAMPLE_ROWS:
            rows = np.sort(np.random.default_rng(0).choice(rows, FIT_SAMPLE_ROWS, replace=False))
        featurizer.fit(texts_of(ws, data.item_ids[rows]))
    tmp = path.with_suffix(".tmp")
    joblib.dump(featurizer, tmp)
    tmp.replace(path)
    return featurizer


def _features(ws: Context, data: PoolData, progress: Progress) -> tuple[Any, str]:
    """Every item's feature rows as a :class:`~labeling.rounds.features.CachedRows` view.

    Items not in the cache are featurized first, their texts read a chunk at a time.
    """
    from labeling.rounds.features import FeatureCache

    featurizer = _featurizer(ws, data, progress)
    progress("featurizing")
    rows = FeatureCache(ws.models_dir / "features" / "cache").rows(
        featurizer, data.keys, lambda positions: texts_of(ws, data.item_ids[positions])
    )
    return rows, featurizer.version


def _metrics(y_true: list[str], y_pred: list[str], labels: tuple[str, ...]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.metrics import precision_recall_fscore_support as prfs

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


def _cross_validated(X: Any, y: np.ndarray, w: np.ndarray, ws: Context) -> dict[str, Any] | None:
    from sklearn.model_selection import StratifiedKFold

    from labeling.rounds.learner import predict_proba, train

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
    return _metrics(y.tolist(), predicted.tolist(), ws.labels) | {"folds": folds}


def _train(
    ws: Context, data: PoolData, X: Any
) -> tuple[Any, dict[str, Any], np.ndarray, np.ndarray]:
    """Fit on human labels plus confident weak labels; returns model, counts, rows, labels."""
    from labeling.rounds.learner import NotEnoughLabels, train

    index = {int(item_id): row for row, item_id in enumerate(data.item_ids)}
    rows: list[int] = []
    y: list[str] = []
    weights: list[float] = []
    for item_id, label in data.human.items():
        rows.append(index[item_id])
        y.append(label)
        weights.append(1.0)
    n_human = len(rows)
    config = ws.config
    weak_confidence: list[float] = []
    for item_id, (label, confidence) in data.weak.items():
        row = index.get(item_id)
        if (
            row is None
            or data.split[row] != "pool"
            or item_id in data.human
            or confidence < config.weak_threshold
            or label not in ws.labels
        ):
            continue
        rows.append(row)
        y.append(label)
        weak_confidence.append(confidence)
    weights.extend(
        learner.weak_sample_weights(
            np.array(weak_confidence, dtype=np.float64),
            weak_weight=config.weak_weight,
            n_human=n_human,
            weak_balance=config.weak_balance,
        ).tolist()
    )
    counts = {"n_human": n_human, "n_weak": len(rows) - n_human}
    row_array = np.array(rows, dtype=np.int64)
    y_array = np.array(y, dtype=object)
    if len(set(y)) < 2:
        return None, counts, row_array, y_array
    try:
        model = train(
            X[row_array], y_array, np.array(weights), classifier=config.classifier, seed=0
        )
    except NotEnoughLabels:
        return None, counts, row_array, y_array
    return model, counts | {"weights": weights}, row_array, y_array


def run_round(ws: Context, round_id: int, *, progress: Progress | None = None) -> Round:
    """Run a claimed (``running``) round to the end; failures are recorded, not raised."""
    echo = progress or (lambda _stage: None)
    with _Heartbeat(ws, round_id) as beat:

        def stage(text: str) -> None:
            beat.set(text)
            echo(text)

        try:
            _work(ws, round_id, stage)
        except Exception as exc:  # recorded on the round: the worker and the queue go on
            detail = str(exc) if isinstance(exc, LabelloopError) else repr(exc)
            _record_failure(ws, round_id, detail, traceback.format_exc()[-4000:])
            _cleanup_tmp(ws, round_id)
    return get_round(ws, round_id)


def _record_failure(
    ws: Context,
    round_id: int,
    detail: str,
    trace: str,
    *,
    patience: float | None = None,
) -> None:
    """Mark the round failed with the real reason, waiting for the store if it is away.

    A round often fails *because* the store went away (a PostgreSQL restart, a dropped
    network): the first write of the failure fails too. Left at that, the round stayed
    ``running`` until some later :func:`recover` saw its heartbeat go stale, and said only
    "no heartbeat". So the write is retried (backing off to :data:`HEARTBEAT_SECONDS`) for up
    to ``patience`` seconds (default :data:`FAILURE_PATIENCE_SECONDS`); the heartbeat thread
    keeps the round alive meanwhile, and the first write that gets through records the reason.
    """
    wait = FAILURE_PATIENCE_SECONDS if patience is None else patience
    deadline = time.monotonic() + wait
    delay = 0.25
    while True:
        try:
            with db.write_session(ws.engine) as session:
                round_ = session.get(Round, round_id)
                assert round_ is not None
                round_.status = "failed"
                round_.error = detail[:2000]
                round_.finished_at = utcnow()
                round_.stage = None
                metrics = json.loads(round_.metrics or "{}")
                metrics["traceback"] = trace
                round_.metrics = json.dumps(metrics)
                session.add(round_)
            return
        except DBAPIError as store_exc:
            if time.monotonic() + delay > deadline:
                raise StoreError(
                    f"round {round_id} failed ({detail[:300]}) and the store stayed unreachable "
                    f"for {wait:.0f} s, so the failure could not be recorded; the round shows "
                    "as running until `labelloop doctor`, `labelloop retrain` or the worker "
                    "finds its heartbeat stale and marks it failed"
                ) from store_exc
            time.sleep(delay)
            delay = min(delay * 2, HEARTBEAT_SECONDS)


def _cleanup_tmp(ws: Context, round_id: int) -> None:
    tmp = ws.models_dir / f".round-{round_id:04d}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)


def _work(ws: Context, round_id: int, stage: Progress) -> None:
    from labeling.rounds.learner import predict_proba
    from strategies import DEFAULT_STRATEGY, get_strategy

    started = time.perf_counter()
    with db.read_session(ws.engine) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        strategy_name = round_.strategy or ws.config.strategy or DEFAULT_STRATEGY
    get_strategy(strategy_name)  # an unknown name fails here, before any work
    stage("reading labels")
    data = load_pool(ws)
    pool_rows = np.flatnonzero(data.split == "pool")
    if len(pool_rows) == 0:
        raise RoundError("the pool is empty: import items before retraining")
    X, featurizer_version = _features(ws, data, stage)
    stage("training")
    model, counts, train_rows, train_y = _train(ws, data, X)
    metrics: dict[str, Any] = {"n_human": counts["n_human"], "n_weak": counts["n_weak"]}
    gold_rows = np.flatnonzero(data.split == "gold")
    gold_rows = np.array([r for r in gold_rows if data.gold[r] in ws.labels], dtype=np.int64)
    if model is None:
        strategy_name = "cold_start"
        metrics["evaluation"] = "none"
        metrics["note"] = (
            "cold start: fewer than two classes labelled, so no model was trained; the queue "
            "is ordered for diversity"
        )
    else:
        stage("evaluating")
        if len(gold_rows):
            proba = predict_proba(model, X[gold_rows])
            predicted = model.classes_[proba.argmax(axis=1)].tolist()
            gold = _metrics([str(data.gold[r]) for r in gold_rows], predicted, ws.labels)
            metrics["evaluation"] = "gold"
            metrics["gold"] = gold
            metrics["gold_accuracy"] = gold["accuracy"]
            metrics["gold_macro_f1"] = gold["macro_f1"]
        else:
            weights = np.array(counts.get("weights", [1.0] * len(train_y)))
            cv = _cross_validated(X[train_rows], train_y, weights, ws)
            metrics["evaluation"] = "cross-validation" if cv else "none"
            if cv:
                metrics["cv"] = cv
                metrics["cv_accuracy"] = cv["accuracy"]
                metrics["cv_macro_f1"] = cv["macro_f1"]
    stage("scoring the pool")
    open_mask = data.n_labels[pool_rows] < ws.config.overlap
    open_rows = pool_rows[open_mask]
    scores = np.full(len(data.item_ids), CLOSED_SCORE, dtype=np.float64)
    # Each item's predicted class as an index into ``names`` (-1: none), and its probability.
    names: list[str] = []
    codes = np.full(len(data.item_ids), -1, dtype=np.int16)
    confidence = np.full(len(data.item_ids), np.nan, dtype=np.float64)
    proba_open = None
    if model is not None:
        from labeling.rounds.features import DEFAULT_CHUNK_ROWS

        names = [str(c) for c in model.classes_]
        proba_pool = predict_proba(model, X, rows=pool_rows, chunk_rows=DEFAULT_CHUNK_ROWS)
        codes[pool_rows] = proba_pool.argmax(axis=1)
        confidence[pool_rows] = proba_pool.max(axis=1)
        proba_open = proba_pool[open_mask]
        del proba_pool
    if len(open_rows):
        strategy = get_strategy(strategy_name)
        n = min(ws.config.batch_size, len(open_rows))
        labelled = train_rows[: counts["n_human"]] if model is not None else None
        lf_votes = None
        if model is None:  # cold start: LF disagreement, where LFs exist, guides diversity
            from labeling.weak.votes import votes

            found = votes(ws)
            if found.names and len(found.item_ids) == len(data.item_ids):
                lf_votes = found.L[open_rows]
        # A big pool's open rows stay on disk: the strategy reads the rows it needs.
        features = X[open_rows] if len(open_rows) <= IN_MEMORY_ROWS else X.subset(open_rows)
        # The pool's probabilities are known already: strategies that only need those get
        # them instead of the model (no second pass over the features).
        ranker = model if model is None or strategy_name in ESTIMATOR_STRATEGIES else proba_open
        _chosen, open_scores = strategy(
            ranker,
            features,
            n,
            lf_votes=lf_votes,
            rng=np.random.default_rng(round_id),
            labelled_features=X[labelled] if labelled is not None and len(labelled) else None,
            labelled_labels=train_y[: counts["n_human"]] if labelled is not None else None,
        )
        del features
        scores[open_rows] = open_scores
    extras: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    if model is not None:
        stage("checking labels")
        extras = _quality_extras(ws, data, X, pool_rows, names, codes, train_rows, train_y, counts)
        mix = np.bincount(codes[pool_rows].astype(np.int64), minlength=len(names))
        metrics["pool_mix"] = dict(
            sorted((names[k], int(n)) for k, n in enumerate(mix.tolist()) if n)
        )
        extras[PREDICTION_LABELS_FILE] = {"labels": names}
        arrays[PREDICTIONS_FILE] = _prediction_table(data.item_ids, pool_rows, codes, confidence)
    with db.read_session(ws.engine) as session:
        metrics["coverage"] = coverage(session, ws.labels, ws.config.weak_threshold)
    metrics["coverage"].pop("per_class", None)
    stage("saving")
    written = _store_scores(ws, round_id, data, pool_rows, scores, names, codes, confidence)
    metrics |= {
        "strategy": strategy_name,
        "featurizer": featurizer_version,
        "classifier": ws.config.classifier if model is not None else None,
        "pool": len(pool_rows),
        "open": len(open_rows),
        "queue_scored": written,
        "seconds": round(time.perf_counter() - started, 2),
    }
    path = _save_model(ws, round_id, model, metrics, extras, arrays)
    _finish(ws, round_id, metrics, path, strategy_name, counts)


def _prediction_table(
    item_ids: np.ndarray, pool_rows: np.ndarray, codes: np.ndarray, confidence: np.ndarray
) -> np.ndarray:
    """Every pool item's prediction, sorted by item id (read by labeling.rounds.predictions)."""
    table = np.empty(len(pool_rows), dtype=PREDICTION_DTYPE)
    table["item_id"] = item_ids[pool_rows]
    table["label"] = codes[pool_rows]
    table["confidence"] = confidence[pool_rows]
    return table[np.argsort(table["item_id"], kind="stable")]


def _queue_rows(pool_rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The pool rows whose scores are stored: all of a small pool; the best open ones of a big one.

    Up to :data:`QUEUE_SCORE_ROWS` pool items, every pool row is stored (closed ones too, as
    they can open again). Beyond, only the :data:`QUEUE_SCORE_ROWS` best-scored open rows:
    writing a million score rows each round is most of a round's time on SQLite, and
    annotators reach only the top of the queue before the next round re-ranks it.
    """
    if len(pool_rows) <= QUEUE_SCORE_ROWS:
        return pool_rows
    candidates = pool_rows[scores[pool_rows] > CLOSED_SCORE]
    if len(candidates) <= QUEUE_SCORE_ROWS:
        return np.sort(candidates)
    top = np.argpartition(-scores[candidates], QUEUE_SCORE_ROWS - 1)[:QUEUE_SCORE_ROWS]
    return np.sort(candidates[top])


def _store_scores(
    ws: Context,
    round_id: int,
    data: PoolData,
    pool_rows: np.ndarray,
    scores: np.ndarray,
    names: list[str],
    codes: np.ndarray,
    confidence: np.ndarray,
) -> int:
    """Write the queue's score rows (see :func:`_queue_rows`); returns how many."""

    # Written in chunks of short transactions, so annotators' claims are never held up long
    # (SQLite has one writer: 2,000 rows hold it ~20 ms; PostgreSQL writes do not block
    # claims); the rows of one chunk at a time are built.
    stored = _queue_rows(pool_rows, scores)
    chunk = SQLITE_WRITE_CHUNK if db.is_sqlite(ws.engine) else 20_000
    for start in range(0, len(stored), chunk):
        rows = stored[start : start + chunk]
        item_ids = data.item_ids[rows].tolist()
        row_scores = scores[rows].tolist()
        row_codes = codes[rows].tolist()
        row_confidence = confidence[rows].tolist()
        records = [
            {
                "round_id": round_id,
                "item_id": item_ids[k],
                "score": row_scores[k],
                "prediction": names[row_codes[k]] if row_codes[k] >= 0 else None,
                "confidence": (
                    None if row_confidence[k] != row_confidence[k] else round(row_confidence[k], 6)
                ),
                "closed": row_scores[k] <= CLOSED_SCORE,
            }
            for k in range(len(rows))
        ]
        with db.write_session(ws.engine) as session:
            bulk_insert(session, Score.__table__, records)  # type: ignore[attr-defined]
    db.refresh_statistics(ws.engine, Score.__table__.name)  # type: ignore[attr-defined]
    return len(stored)


def _quality_extras(
    ws: Context,
    data: PoolData,
    X: Any,
    pool_rows: np.ndarray,
    names: list[str],
    codes: np.ndarray,
    train_rows: np.ndarray,
    train_y: np.ndarray,
    counts: dict[str, Any],
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
    human_rows = train_rows[: counts["n_human"]]
    human_y = train_y[: counts["n_human"]].astype(str)
    proba = label_errors.out_of_sample_proba(
        X[human_rows], human_y, ws.labels, classifier=ws.config.classifier
    )
    if proba is not None:
        flagged = set(label_errors.likely_label_errors(human_y, proba, ws.labels).tolist())
        column = {label: i for i, label in enumerate(ws.labels)}
        best = proba.argmax(axis=1)
        extras[label_errors.REVIEW_FILE] = {
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
    return extras


def _save_model(
    ws: Context,
    round_id: int,
    model: Any,
    metrics: dict[str, Any],
    extras: dict[str, Any] | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> str:
    import joblib

    final = round_dir(ws, round_id)
    tmp = ws.models_dir / f".round-{round_id:04d}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    if model is not None:
        joblib.dump(model, tmp / "model.joblib")
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    for name, content in (extras or {}).items():
        (tmp / name).write_text(json.dumps(content))
    for name, array in (arrays or {}).items():
        np.save(tmp / name, array, allow_pickle=False)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return str(final.relative_to(ws.root))


def _promotable(
    metrics: dict[str, Any], current: Round | None, tolerance: float
) -> tuple[bool, str]:
    if current is None:
        return True, "the first round is always promoted"
    old = json.loads(current.metrics or "{}").get("gold_macro_f1")
    new = metrics.get("gold_macro_f1")
    if old is None:
        return True, f"round {current.id} had no gold score to beat"
    if new is None:
        return False, "no gold score, while the promoted round has one"
    if new >= old - tolerance:
        return True, f"gold macro-F1 {new:.3f} vs {old:.3f} (tolerance {tolerance})"
    return False, f"gold macro-F1 {new:.3f} is worse than round {current.id}'s {old:.3f}"


def _finish(
    ws: Context,
    round_id: int,
    metrics: dict[str, Any],
    path: str,
    strategy: str,
    counts: dict[str, Any],
) -> None:
    with db.write_session(ws.engine) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        current = session.exec(select(Round).where(col(Round.promoted).is_(True))).first()
        promote, why = _promotable(metrics, current, ws.config.promote_tolerance)
        metrics["promotion"] = why
        round_.status = "succeeded"
        round_.strategy = strategy
        round_.n_human = counts["n_human"]
        round_.n_weak = counts["n_weak"]
        round_.model_path = path
        round_.metrics = json.dumps(metrics)
        round_.finished_at = utcnow()
        round_.stage = None
        session.add(round_)
        session.flush()
        if promote:
            _set_promoted(session, round_id)
    _prune_scores(ws)


def _set_promoted(session: Session, round_id: int) -> None:
    session.execute(update(Round).where(col(Round.promoted).is_(True)).values(promoted=False))
    session.execute(
        update(Round).where(col(Round.id) == round_id).values(promoted=True, promoted_at=utcnow())
    )


def _prune_scores(ws: Context) -> None:
    """Drop the scores of old rounds; keep the promoted round and the last few promoted."""
    with db.write_session(ws.engine) as session:
        keep = session.exec(
            select(Round.id)
            .where(col(Round.promoted_at).is_not(None))
            .order_by(col(Round.promoted_at).desc())
            .limit(KEEP_SCORED_ROUNDS)
        ).all()
        latest = session.exec(select(func.max(Round.id))).one()
        kept = set(keep) | ({latest} if latest is not None else set())
        # Rounds are few; a round whose scores are gone already costs one index probe.
        dropped = session.exec(select(Round.id).where(col(Round.id).not_in(kept))).all()
    # Deleted in short transactions on SQLite: one writer at a time, and a million-row delete
    # in one go would hold annotators' claims for seconds. PostgreSQL deletes do not block
    # claims: one statement a round.
    sqlite = db.is_sqlite(ws.engine)
    for round_id in dropped:
        while True:
            condition = col(Score.round_id) == round_id
            if sqlite:
                chunk = select(Score.item_id).where(condition).limit(SQLITE_WRITE_CHUNK)
                condition = condition & col(Score.item_id).in_(chunk.scalar_subquery())
            with db.write_session(ws.engine) as session:
                done = session.execute(delete(Score).where(condition))
            if not sqlite or not done.rowcount:  # type: ignore[attr-defined]
                break


# --------------------------------------------------------------------------- the API


def get_round(ws: Context, round_id: int) -> Round:
    with db.read_session(ws.engine) as session:
        round_ = session.get(Round, round_id)
        if round_ is None:
            raise BadInput(f"no round {round_id}")
        return round_


def list_rounds(ws: Context) -> list[Round]:
    with db.read_session(ws.engine) as session:
        return list(session.exec(select(Round).order_by(col(Round.id))).all())


def retrain(
    ws: Context,
    *,
    strategy: str | None = None,
    trigger: str = "cli",
    progress: Progress | None = None,
) -> Round:
    """Queue a round and run it here, now (the CLI and the Python API)."""
    if strategy is not None:
        from strategies import get_strategy

        try:
            get_strategy(strategy)
        except Exception as exc:
            raise BadInput(f"option '--strategy': {exc}") from exc
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


def promote(ws: Context, round_id: int) -> Round:
    """Make a succeeded round's scores order the queue (whatever its metrics)."""
    with db.write_session(ws.engine) as session:
        round_ = session.get(Round, round_id)
        if round_ is None:
            raise BadInput(f"no round {round_id}")
        if round_.status != "succeeded":
            raise BadInput(f"round {round_id} is {round_.status}; only a succeeded round")
        has_scores = session.exec(select(Score.item_id).where(Score.round_id == round_id)).first()
        if has_scores is None:
            raise BadInput(f"round {round_id}'s scores were pruned; retrain instead")
        _set_promoted(session, round_id)
    return get_round(ws, round_id)


def rollback(ws: Context) -> Round:
    """Promote again the round that was promoted before the current one."""
    with db.write_session(ws.engine) as session:
        history = session.exec(
            select(Round)
            .where(col(Round.promoted_at).is_not(None), Round.status == "succeeded")
            .order_by(col(Round.promoted_at).desc())
        ).all()
        current = next((r for r in history if r.promoted), None)
        if current is None:
            raise BadInput("no round is promoted; nothing to roll back")
        earlier = [r for r in history if r.id != current.id]
        for candidate in earlier:
            has_scores = session.exec(
                select(Score.item_id).where(Score.round_id == candidate.id)
            ).first()
            if has_scores is not None:
                _set_promoted(session, candidate.id)  # type: ignore[arg-type]
                target = candidate.id
                break
        else:
            raise BadInput(f"round {current.id} is the only promoted round with scores left")
    assert target is not None
    return get_round(ws, target)


def labelled_item_count(ws: Context) -> int:
    """Pool items with at least one current label: what a round's ``n_human`` counts."""
    with db.read_session(ws.engine) as session:
        return int(
            session.exec(
                select(func.count()).where(Item.split == "pool", col(Item.n_labels) > 0)
            ).one()
        )


def maybe_trigger(ws: Context) -> Round | None:
    """Queue a round when ``retrain_every`` more items are labelled than the last round used."""
    every = ws.config.retrain_every
    if every <= 0:
        return None
    with db.read_session(ws.engine) as session:
        busy = session.exec(
            select(Round.id).where(col(Round.status).in_(("queued", "running")))
        ).first()
        last = session.exec(
            select(Round).where(Round.status == "succeeded").order_by(col(Round.id).desc())
        ).first()
    if busy is not None:
        return None
    done = labelled_item_count(ws)
    since = done - (last.n_human if last is not None else 0)
    if since >= every:
        return queue_round(ws, trigger=f"every {every} labels")
    return None


def round_summary(round_: Round) -> dict[str, Any]:
    metrics = json.loads(round_.metrics or "{}")
    metrics.pop("traceback", None)
    return {
        "round": round_.id,
        "status": round_.status,
        "trigger": round_.trigger,
        "strategy": round_.strategy,
        "promoted": round_.promoted,
        "n_human": round_.n_human,
        "n_weak": round_.n_weak,
        "gold_accuracy": metrics.get("gold_accuracy"),
        "gold_macro_f1": metrics.get("gold_macro_f1"),
        "evaluation": metrics.get("evaluation"),
        "stage": round_.stage,
        "error": round_.error,
        "created_at": round_.created_at.isoformat() if round_.created_at else None,
        "finished_at": round_.finished_at.isoformat() if round_.finished_at else None,
        "model_path": round_.model_path,
        "metrics": metrics,
    }


def round_checks(ws: Context, *, fix: bool = False) -> list[dict[str, Any]]:
    """``doctor``'s checks of rounds: none left running by a dead worker (``fix`` fails them),
    and the promoted round's model folder on disk."""
    with db.read_session(ws.engine) as session:
        running = session.exec(select(Round).where(Round.status == "running")).all()
        promoted = session.exec(select(Round).where(col(Round.promoted).is_(True))).all()
    checks = []
    dead = recover(ws) if fix else []
    stuck = [
        f"round {r.id} is running (worker {r.worker or 'unknown'})"
        for r in running
        if r.id not in dead and is_dead(r)
    ]
    checks.append(check("rounds left running by a dead worker", stuck, len(dead)))
    missing = [
        f"round {r.id} is promoted but {r.model_path} is missing"
        for r in promoted
        if r.model_path and not (Path(ws.root) / r.model_path).exists()
    ]
    if len(promoted) > 1:
        missing.append(f"{len(promoted)} rounds are marked promoted; one at most should be")
    checks.append(check("promoted round", missing))
    return checks
