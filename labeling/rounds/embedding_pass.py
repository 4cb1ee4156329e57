"""The embedding pass: fill the feature cache's embedding block for every item that lacks it.

Featurizers that use sentence embeddings (``auto``, ``sentence-embeddings``, ``hybrid``) need
the embedding row of every item, and the model embeds a few hundred texts a second on two
cores: hours at a million items. The pass does that work ahead of the rounds, in the
background worker or with ``labelloop features build``:

- **incremental**: only keys the cache lacks are embedded (removed items are left out);
- **resumable**: rows are written a chunk at a time (:data:`PASS_CHUNK_ROWS`), each chunk on
  disk before the next starts, so a kill loses at most the chunks in flight;
- **prioritised**: items the queue will serve soon go first (see :func:`plan_pass`);
- **local or on Dask** (:mod:`labeling.rounds.embedding_dask`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, func
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from labeling.context import Context, ProgressCallback
from labeling.errors import BadInput, LabelloopError
from labeling.rounds.embedding_dask import DaskEmbedder, check_dask_options
from labeling.rounds.embeddings import embed, embeddings_installed
from labeling.rounds.feature_cache import FeatureCache
from labeling.rounds.featurizers import (
    AUTO,
    NEEDS_EMBEDDINGS,
    SentenceEmbeddingFeaturizer,
    iter_chunks,
)
from labeling.rounds.pool import texts_of
from labeling.store import db
from labeling.store.models import REMOVED, Item, Round, Score

#: Rows embedded and written per chunk: about 5 s of the model on 2 quiet cores (15-40 s on a
#: busy machine), so a kill loses little and a queued round waits at most that long for the
#: background worker.
PASS_CHUNK_ROWS = 2048
ENGINES = ("local", "dask")
#: The progress stage name (``ProgressCallback`` is called with it, done, total).
STAGE = "embedding"

# Priority tiers, best first (see plan_pass).
_SCORED, _UNSCORED, _GOLD, _REST = 0, 1, 2, 3


class EmbeddingPassFailed(LabelloopError):
    """The background pass hit an unexpected error (a full disk, say)."""


@dataclass(frozen=True)
class EmbeddingPassReport:
    """What one pass did: ``items`` (not removed) = ``already_cached`` + ``embedded`` +
    ``missing`` (still to embed: a row limit stopped the pass), counted by distinct text."""

    items: int
    already_cached: int
    embedded: int
    missing: int
    seconds: float
    engine: str
    workers: int


@dataclass(frozen=True)
class BlockStatus:
    """One cached block of a workspace: its featurizer version, items, cached and missing."""

    block: str
    version: str
    items: int
    cached: int
    missing: int


@dataclass(frozen=True)
class FeatureStatus:
    """The workspace's ``featurizer`` setting, whether it needs embeddings, and each block."""

    featurizer: str
    needs_embeddings: bool
    blocks: list[BlockStatus]


@dataclass(frozen=True)
class PassPlan:
    """The items whose embedding is missing, in the order the pass embeds them."""

    item_ids: NDArray[np.int64]
    keys: NDArray[np.str_]
    items: int
    cached: int


def needs_embeddings(featurizer: str) -> bool:
    """Whether a workspace's ``featurizer`` setting uses the embedding block of every item."""
    return (featurizer == AUTO and embeddings_installed()) or featurizer in NEEDS_EMBEDDINGS


def embedding_cache(ws: Context) -> FeatureCache:
    """The workspace's feature cache (the one rounds read, in ``models/features/cache``)."""
    return FeatureCache(ws.models_dir / "features" / "cache")


def plan_pass(ws: Context, featurizer: SentenceEmbeddingFeaturizer) -> PassPlan:
    """Every item without a cached embedding, in priority order, one per distinct text.

    Order: open pool items of the promoted round's queue, highest score first (the order
    claims walk); then open pool items without a score (imported since that round, or before
    any) in the queue's seeded rank order; then gold items; then the rest (labelled pool items)
    by id. Removed items are left out.
    """
    with db.read_session(ws.engine) as session:
        promoted = session.exec(
            select(Round.id).where(col(Round.promoted).is_(True)).order_by(col(Round.id).desc())
        ).first()
        scored = and_(
            col(Score.item_id) == col(Item.id),
            col(Score.round_id) == (promoted if promoted is not None else -1),
            col(Score.closed).is_(False),
        )
        rows = session.execute(
            select(  # type: ignore[call-overload]
                Item.id, Item.content_hash, Item.split, Item.n_labels, Item.rank, Score.score
            )
            .outerjoin(Score, scored)
            .where(col(Item.split) != REMOVED)
            .order_by(col(Item.id))
        ).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    keys = np.array([r[1] for r in rows], dtype=str)
    missing = embedding_cache(ws).lacking(featurizer, keys) if len(rows) else np.zeros(0, bool)
    distinct = len(np.unique(keys))
    todo = np.flatnonzero(missing)
    tier, score, rank = _priority(ws, [rows[int(i)] for i in todo])
    # lexsort: last key first; within a tier, higher score, then lower rank, then lower id.
    order = todo[np.lexsort((ids[todo], rank, -score, tier))]
    _, first = np.unique(keys[order], return_index=True)
    order = order[np.sort(first)]  # one item per distinct text, at its best place
    return PassPlan(ids[order], keys[order], distinct, distinct - len(order))


def _priority(
    ws: Context, rows: list[Any]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Each row's tier, queue score (0 if none) and the rank that orders its tier."""
    tier = np.full(len(rows), _REST, dtype=np.int64)
    score = np.zeros(len(rows))
    rank = np.zeros(len(rows), dtype=np.int64)  # 63-bit ranks: a float would round them
    overlap = ws.config.overlap
    for n, (_id, _key, split, n_labels, item_rank, item_score) in enumerate(rows):
        if split == "gold":
            tier[n] = _GOLD
        elif n_labels >= overlap:
            continue  # labelled as often as asked: the queue serves it no more
        elif item_score is not None:
            tier[n], score[n] = _SCORED, item_score
        else:
            tier[n], rank[n] = _UNSCORED, item_rank
    return tier, score, rank


def check_options(engine: str, scheduler: str | None, workers: int | None) -> None:
    """Refuse a bad ``engine``/``scheduler``/``workers`` combination before any work."""
    if engine not in ENGINES:
        raise BadInput(
            f"unknown engine {engine!r} (--engine); expected one of: {', '.join(ENGINES)}"
        )
    if engine == "local" and (scheduler is not None or workers is not None):
        raise BadInput(
            "--scheduler and --workers are for --engine dask; the local engine embeds in "
            "this process"
        )
    if engine == "dask":
        check_dask_options(scheduler, workers)


def run_pass(
    ws: Context,
    *,
    limit: int | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    chunk_rows: int = PASS_CHUNK_ROWS,
    progress: ProgressCallback | None = None,
) -> EmbeddingPassReport:
    """Embed the items the cache lacks, best first, at most ``limit`` of them (all if None).

    ``engine`` ``"local"`` embeds in this process; ``"dask"`` on the cluster at
    ``scheduler``, or on a ``LocalCluster`` of ``workers`` processes on 127.0.0.1. Each chunk
    of ``chunk_rows`` is written to the cache as soon as it is embedded. ``progress`` is called
    with ``"embedding"``, the items embedded so far and the items this pass will embed.
    """
    check_options(engine, scheduler, workers)
    if limit is not None and limit < 1:
        raise BadInput(f"--limit: expected at least 1 item, found {limit}")
    if chunk_rows < 1:
        raise BadInput(f"--chunk-rows: expected at least 1 row, found {chunk_rows}")
    started = time.perf_counter()
    featurizer = SentenceEmbeddingFeaturizer()
    plan = plan_pass(ws, featurizer)
    todo = len(plan.keys) if limit is None else min(limit, len(plan.keys))
    chunks = [slice(s.start, s.stop) for s in iter_chunks(todo, chunk_rows)]
    cache = embedding_cache(ws)

    def texts(rows: slice) -> tuple[NDArray[np.str_], list[str]]:
        ids, keys = plan.item_ids[rows], plan.keys[rows]
        ascending = np.argsort(ids)  # texts_of reads ids in ascending order
        return keys[ascending], texts_of(ws, ids[ascending])

    def store(keys: NDArray[np.str_], vectors: NDArray[np.float32]) -> None:
        cache.add(featurizer, keys, vectors)

    if engine == "dask" and (todo or scheduler is not None):
        # A given scheduler is always checked, so a wrong address is reported at once.
        with DaskEmbedder(scheduler, workers) as embedder:
            workers_used = embedder.workers
            done = embedder.run((texts(rows) for rows in chunks), store, progress, todo)
    else:
        workers_used = 1 if engine == "local" else 0
        done = _embed_locally((texts(rows) for rows in chunks), store, progress, todo)
    return EmbeddingPassReport(
        items=plan.items,
        already_cached=plan.cached,
        embedded=done,
        missing=len(plan.keys) - done,
        seconds=time.perf_counter() - started,
        engine=engine,
        workers=workers_used,
    )


def _embed_locally(
    chunks: Iterator[tuple[NDArray[np.str_], list[str]]],
    store: Callable[[NDArray[np.str_], NDArray[np.float32]], None],
    progress: ProgressCallback | None,
    total: int,
) -> int:
    done = 0
    for keys, texts in chunks:
        store(keys, embed(texts))
        done += len(keys)
        if progress is not None:
            progress(STAGE, done, total)
    return done


def feature_status(ws: Context) -> FeatureStatus:
    """The embedding block's counts (items, cached, missing, by distinct text)."""
    featurizer = SentenceEmbeddingFeaturizer()
    plan = plan_pass(ws, featurizer)
    block = BlockStatus(
        block="sentence-embeddings",
        version=featurizer.version,
        items=plan.items,
        cached=plan.cached,
        missing=len(plan.keys),
    )
    setting = ws.config.featurizer
    return FeatureStatus(setting, needs_embeddings(setting), [block])


def store_fingerprint(ws: Context) -> tuple[object, ...]:
    """What changes when the pass may have new work: the setting, the items, the cache."""
    with db.read_session(ws.engine) as session:
        counted = session.execute(
            select(func.count(), func.max(Item.id)).where(col(Item.split) != REMOVED)
        ).one()
    folder = embedding_cache(ws).version_folder(SentenceEmbeddingFeaturizer())
    return (ws.config.featurizer, tuple(counted), len(list(folder.glob("chunk-*.keys.npy"))))


class BackgroundEmbedder:
    """The background worker's side of the pass: one chunk per call while work is left.

    After a pass finds nothing missing, the next calls only compare a cheap fingerprint of the
    store (item count, highest id) and the cache, and plan again when it changes.
    """

    def __init__(self, *, chunk_rows: int = PASS_CHUNK_ROWS) -> None:
        self.chunk_rows = chunk_rows
        self._settled: tuple[object, ...] | None = None

    def step(self, ws: Context) -> EmbeddingPassReport | None:
        """Embed one chunk if the workspace needs embeddings and some are missing."""
        if not needs_embeddings(ws.config.featurizer):
            return None
        fingerprint = store_fingerprint(ws)
        if fingerprint == self._settled:
            return None
        try:
            report = run_pass(ws, limit=self.chunk_rows, chunk_rows=self.chunk_rows)
        except DBAPIError:
            raise  # the store is away: the worker waits for it and the next poll tries again
        except Exception as exc:
            # Try again only once the items or the cache change, not on every poll; the
            # worker logs the error and goes on running rounds.
            self._settled = fingerprint
            if isinstance(exc, LabelloopError):
                raise
            raise EmbeddingPassFailed(
                f"the embedding pass failed ({exc!r}); it runs again after the next import"
            ) from exc
        self._settled = store_fingerprint(ws) if report.missing == 0 else None
        return report if report.embedded else None
