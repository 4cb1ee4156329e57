"""The queue's order: each round's predictions and strategy scores of the pool, stored as rows.

:func:`predict_pool` gives every pool item's predicted class; :func:`rank_open` asks the query
strategy to score the items that still have an open place (``n_labels < overlap``). The queue
reads the promoted round's :class:`~labeling.store.models.Score` rows: :func:`store_scores`
writes them (all of a small pool, the top :data:`QUEUE_SCORE_ROWS` of a big one), and
:func:`prune_scores` drops those of rounds that can no longer be promoted back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, func
from sqlmodel import col, select

from labeling.context import Context
from labeling.rounds.featurizers import DEFAULT_CHUNK_ROWS
from labeling.rounds.jobs import RoundError
from labeling.rounds.learner import predict_proba
from labeling.rounds.pool import PoolData
from labeling.rounds.training import Trained
from labeling.store import db, labelsets
from labeling.store.bulk import bulk_insert
from labeling.store.models import Round, Score
from labeling.weak.votes import votes
from strategies import get_strategy
from strategies.base import as_multilabel
from strategies.diversity import SetVotes

# Rounds whose scores are kept (the promoted one and the ones rollback may return to).
KEEP_SCORED_ROUNDS = 3
# Below this score, an item has no open place left; it sits at the end of the ranking.
CLOSED_SCORE = -1.0e30
# Rows per write transaction on SQLite for a round's bulk writes (scores, pruning).
SQLITE_WRITE_CHUNK = 2_000
# Above this many open items, the strategy gets a view that reads feature rows from the
# on-disk cache block by block (see features.CachedRows) instead of a matrix in memory.
IN_MEMORY_ROWS = 100_000
# The queue order is stored for at most this many open items a round: the best-ranked ones.
# Annotators who get past them before the next round are served the rest in the seeded
# random order. Every pool item's prediction still goes to the round's predictions file.
QUEUE_SCORE_ROWS = 50_000
# Strategies that need the fitted estimator itself; the others get the pool's probabilities.
ESTIMATOR_STRATEGIES = frozenset({"qbc"})


@dataclass(frozen=True)
class PoolScores:
    """A round's view of every item (one entry per row of :class:`PoolData`)."""

    scores: np.ndarray  # queue score; CLOSED_SCORE where no open place is left
    names: list[str]  # the model's classes (none without a model)
    codes: np.ndarray  # predicted class as an index into ``names``; -1: none
    confidence: np.ndarray  # probability of the predicted class; nan: none


def predict_pool(
    model: Any, X: Any, n_items: int, pool_rows: np.ndarray, open_mask: np.ndarray
) -> tuple[PoolScores, np.ndarray | None]:
    """Every pool item's predicted class, all scores still closed; and the probabilities of
    the open pool rows (``open_mask`` over ``pool_rows``), or None without a model."""
    scores = np.full(n_items, CLOSED_SCORE, dtype=np.float64)
    names: list[str] = []
    codes = np.full(n_items, -1, dtype=np.int16)
    confidence = np.full(n_items, np.nan, dtype=np.float64)
    proba_open = None
    if model is not None:
        proba_pool = predict_proba(model, X, rows=pool_rows, chunk_rows=DEFAULT_CHUNK_ROWS)
        if getattr(model, "multilabel_", False):
            labels = tuple(str(c) for c in model.classes_)
            names, codes[pool_rows], confidence[pool_rows] = predicted_sets(proba_pool, labels)
            proba_open = as_multilabel(proba_pool[open_mask])
        else:
            names = [str(c) for c in model.classes_]
            codes[pool_rows] = proba_pool.argmax(axis=1)
            confidence[pool_rows] = proba_pool.max(axis=1)
            proba_open = proba_pool[open_mask]
    return PoolScores(scores, names, codes, confidence), proba_open


# At most this many distinct predicted sets a round names (class codes are 16-bit).
MAX_PREDICTED_SETS = 32_767


def predicted_sets(
    proba: np.ndarray, labels: tuple[str, ...]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Multi-label predictions: the distinct predicted sets (each label at P >= 0.5) as stored
    sets, each row's set as an index into them, and each row's set confidence, the
    probability that the set is exactly right if the labels are independent: the product
    over labels of max(p, 1 - p)."""
    present = proba >= 0.5
    packed = np.packbits(present, axis=1)
    distinct, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    if len(distinct) > MAX_PREDICTED_SETS:
        raise RoundError(
            f"the model predicts {len(distinct):,} distinct label sets; at most "
            f"{MAX_PREDICTED_SETS:,} can be stored"
        )
    names = labelsets.from_indicator(present[first], labels)
    confidence = np.prod(np.maximum(proba, 1.0 - proba), axis=1)
    return names, inverse.reshape(-1).astype(np.int16), confidence


def rank_open(
    ws: Context,
    round_id: int,
    data: PoolData,
    X: Any,
    open_rows: np.ndarray,
    proba_open: np.ndarray | None,
    trained: Trained,
    strategy_name: str,
) -> np.ndarray:
    """The strategy's score of each of ``open_rows`` (seeded by the round's id)."""
    model = trained.model
    strategy = get_strategy(strategy_name)
    n = min(ws.config.batch_size, len(open_rows))
    labelled = trained.human_rows if model is not None else None
    lf_votes = None
    if model is None:  # cold start: LF disagreement, where LFs exist, guides diversity
        found = votes(ws)
        if found.names and len(found.item_ids) == len(data.item_ids):
            lf_votes = found.L[open_rows]
            if ws.multilabel:
                lf_votes = SetVotes(lf_votes, len(ws.labels))
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
        labelled_labels=(
            None
            if labelled is None
            else trained.human_indicator
            if trained.indicator is not None
            else trained.human_y
        ),
    )
    return np.asarray(open_scores)


def queue_rows(pool_rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
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


def store_scores(
    ws: Context, round_id: int, item_ids: np.ndarray, pool_rows: np.ndarray, pool: PoolScores
) -> int:
    """Write the queue's score rows (see :func:`queue_rows`); returns how many."""

    # Written in chunks of short transactions, so annotators' claims are never held up long
    # (SQLite has one writer: 2,000 rows hold it ~20 ms; PostgreSQL writes do not block
    # claims); the rows of one chunk at a time are built.
    stored = queue_rows(pool_rows, pool.scores)
    chunk = SQLITE_WRITE_CHUNK if db.is_sqlite(ws.engine) else 20_000
    for start in range(0, len(stored), chunk):
        rows = stored[start : start + chunk]
        row_ids = item_ids[rows].tolist()
        row_scores = pool.scores[rows].tolist()
        row_codes = pool.codes[rows].tolist()
        row_confidence = pool.confidence[rows].tolist()
        records = [
            {
                "round_id": round_id,
                "item_id": row_ids[k],
                "score": row_scores[k],
                "prediction": pool.names[row_codes[k]] if row_codes[k] >= 0 else None,
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


def prune_scores(ws: Context) -> None:
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
