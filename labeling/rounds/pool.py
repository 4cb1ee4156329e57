"""What a round reads: the pool from the store, and its feature rows from the feature cache.

:func:`load_pool` reads ids, splits, gold labels, the current human labels and the weak
labels as arrays in item id order, without texts; :func:`texts_of` reads texts only where
items must be featurized. :func:`feature_rows` gives every item's features through the
on-disk cache of :mod:`labeling.rounds.feature_cache`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlmodel import col, select

from labeling.context import Context
from labeling.rounds.feature_cache import FeatureCache
from labeling.rounds.featurizers import make_featurizer
from labeling.rounds.jobs import StageCallback
from labeling.store import db
from labeling.store.answers import human_labels
from labeling.store.models import REMOVED, Item, WeakLabel

# The tfidf featurizer is fitted on at most this many pool texts (a seeded sample beyond).
FIT_SAMPLE_ROWS = 200_000
# Ids per IN (...) when reading scattered texts: under every backend's parameter limit.
_IN_BATCH = 900


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


def fitted_featurizer(ws: Context, data: PoolData, stage: StageCallback) -> Any:
    """The workspace's fitted featurizer: fitted once on the pool, then reused by every round.

    Reusing it keeps its version (and so the feature cache) stable across rounds; delete
    ``models/features/`` to refit after the pool has changed a lot. A featurizer that learns
    from texts (tfidf) is fitted on the pool, or a seeded sample of
    :data:`FIT_SAMPLE_ROWS` pool texts on bigger pools; stateless ones read no texts.
    """
    import joblib  # ~0.1 s: only a running round needs it

    folder = ws.models_dir / "features"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"featurizer-{ws.config.featurizer}.joblib"
    if path.exists():
        return joblib.load(path)
    featurizer = make_featurizer(ws.config.featurizer)
    if not featurizer.stateless:
        stage("fitting the featurizer")
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


def feature_rows(ws: Context, data: PoolData, stage: StageCallback) -> tuple[Any, str]:
    """Every item's feature rows as a :class:`~labeling.rounds.feature_cache.CachedRows` view, and
    the featurizer's version.

    Items not in the cache are featurized first, their texts read a chunk at a time.
    """
    featurizer = fitted_featurizer(ws, data, stage)
    stage("featurizing")
    rows = FeatureCache(ws.models_dir / "features" / "cache").rows(
        featurizer, data.keys, lambda positions: texts_of(ws, data.item_ids[positions])
    )
    return rows, featurizer.version
