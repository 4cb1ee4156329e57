"""What a round reads: the pool from the store, and its feature rows from the feature cache.

:func:`load_pool` reads ids, splits, gold labels, the current human labels and the weak
labels as arrays in item id order, without texts; :func:`texts_of` reads texts only where
items must be featurized. :func:`feature_blocks` gives every item's rows of each feature block
the workspace's setting needs, through the on-disk cache of
:mod:`labeling.rounds.feature_cache`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import exists, func
from sqlmodel import col, select

from labeling.context import Context
from labeling.rounds.feature_cache import FeatureCache
from labeling.rounds.featurizers import (
    AUTO,
    BASE_FEATURIZER,
    HybridFeaturizer,
    hybrid_version,
    make_featurizer,
)
from labeling.rounds.jobs import StageCallback
from labeling.rounds.representations import blocks_needed
from labeling.store import db
from labeling.store.answers import current, human_labels
from labeling.store.models import (
    BULK,
    REMOVED,
    Annotation,
    Item,
    LabelingFunction,
    LFVote,
    WeakLabel,
)
from labeling.weak.votes import ABSENT_MARK

# The tfidf featurizer is fitted on at most this many pool texts (a seeded sample beyond).
FIT_SAMPLE_ROWS = 200_000
# With `auto`, a round embeds at most this many items itself (about 12 s on 2 cores); beyond,
# the embedding block waits for the background pass (see feature_blocks).
INLINE_EMBED_ROWS = 5_000
EMBEDDINGS = "sentence-embeddings"
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
    # Multi-label: item id -> the labels some active LF voted on (present or absent) for the
    # items with a weak set; the labels a weak set speaks for (labeling.rounds.training).
    weak_voted: dict[int, frozenset[str]] = field(default_factory=dict)


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
        weak_voted = voted_labels(session) if ws.multilabel and weak else {}
    return PoolData(
        item_ids=np.array([r[0] for r in rows], dtype=np.int64),
        keys=[r[1] for r in rows],
        split=np.array([r[2] for r in rows], dtype=object),
        gold=[r[3] for r in rows],
        human=human,
        n_labels=np.array([r[4] for r in rows], dtype=np.int64),
        weak=weak,
        weak_voted=weak_voted,
    )


def voted_labels(session: Any) -> dict[int, frozenset[str]]:
    """Per item with a weak label, the labels the current votes of active LFs name (an
    absent vote, ``ABSENT_MARK`` + label, names its label too): one query for all items."""
    rows = session.execute(
        select(LFVote.item_id, LFVote.label)  # type: ignore[call-overload]
        .distinct()
        .join(LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id))
        .join(WeakLabel, col(WeakLabel.item_id) == col(LFVote.item_id))
        .where(
            col(LabelingFunction.active).is_(True),
            col(LFVote.lf_version) == col(LabelingFunction.version),
        )
    ).all()
    found: dict[int, set[str]] = {}
    for item_id, label in rows:
        found.setdefault(int(item_id), set()).add(label.removeprefix(ABSENT_MARK))
    return {item_id: frozenset(names) for item_id, names in found.items()}


def bulk_only_count(ws: Context) -> int:
    """Pool items whose label comes from a bulk batch alone (no answer of a person, an import
    or a decision): the part of a round's human labels that nobody looked at one by one."""
    bulk = exists().where(
        col(Annotation.item_id) == col(Item.id), current(), col(Annotation.origin) == BULK
    )
    other = exists().where(
        col(Annotation.item_id) == col(Item.id),
        current(),
        col(Annotation.label).is_not(None),
        col(Annotation.origin) != BULK,
    )
    with db.read_session(ws.engine) as session:
        found = session.exec(select(func.count()).where(Item.split == "pool", bulk, ~other)).one()
    return int(found)


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


def fitted_featurizer(ws: Context, data: PoolData, stage: StageCallback, name: str) -> Any:
    """The workspace's fitted featurizer ``name``: fitted once on the pool, then reused.

    Reusing it keeps its version (and so the feature cache) stable across rounds; delete
    ``models/features/`` to refit after the pool has changed a lot. A featurizer that learns
    from texts (tfidf) is fitted on the pool, or a seeded sample of
    :data:`FIT_SAMPLE_ROWS` pool texts on bigger pools, and kept in
    ``models/features/featurizer-NAME.joblib``; stateless ones read no texts. The hybrid is
    the fitted tfidf plus the embeddings.
    """
    import joblib  # ~0.1 s: only a running round needs it

    if name == "hybrid":
        hybrid = HybridFeaturizer()
        hybrid.tfidf = fitted_featurizer(ws, data, stage, "tfidf")
        return hybrid
    featurizer = make_featurizer(name)
    if featurizer.stateless:
        return featurizer
    folder = ws.models_dir / "features"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"featurizer-{name}.joblib"
    if path.exists():
        return joblib.load(path)
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


def round_featurizer(ws: Context, metrics: dict[str, Any]) -> Any | None:
    """The featurizer a finished round trained on (from its ``metrics``), fitted as it was, to
    featurize new texts for its model; None when it cannot be rebuilt exactly (the fitted
    featurizer was deleted or refitted since: its version differs)."""
    import joblib  # ~0.1 s: only predicting with a round needs it

    name = (metrics.get("representation") or {}).get("featurizer") or ws.config.featurizer
    if name == AUTO:
        return None
    folder = ws.models_dir / "features"

    def fitted(part: str) -> Any | None:
        featurizer = make_featurizer(part)
        if featurizer.stateless:
            return featurizer
        path = folder / f"featurizer-{part}.joblib"
        return joblib.load(path) if path.exists() else None

    if name == "hybrid":
        tfidf = fitted("tfidf")
        featurizer: Any = None
        if tfidf is not None:
            featurizer = HybridFeaturizer()
            featurizer.tfidf = tfidf
    else:
        featurizer = fitted(name)
    if featurizer is None or featurizer.version != metrics.get("featurizer"):
        return None
    return featurizer


@dataclass(frozen=True)
class FeatureBlocks:
    """A round's cached feature blocks (rows of every item, by featurizer name), the fitted
    featurizers behind them, and why a block the setting wants is missing (or "")."""

    rows: dict[str, Any]
    featurizers: dict[str, Any]
    note: str = ""

    def version(self, name: str) -> str:
        """The version string of featurizer ``name`` (the hybrid's from its two blocks)."""
        if name == "hybrid":
            parts = (self.featurizers["tfidf"], self.featurizers[EMBEDDINGS])
            return hybrid_version(*(part.version for part in parts))
        return str(self.featurizers[name].version)


def feature_blocks(ws: Context, data: PoolData, stage: StageCallback) -> FeatureBlocks:
    """Every item's rows of each block the workspace's ``featurizer`` setting needs, through
    the on-disk cache (only new items featurized, their texts read a chunk at a time).

    With ``auto``, the embedding block joins only when at most :data:`INLINE_EMBED_ROWS`
    items still lack it: the round then embeds them itself; with more (a fresh import of a
    big pool), the round goes on with n-grams and says so, while the worker or
    ``labelloop features build`` fills the block. A fixed embedding setting always embeds.
    """
    setting = ws.config.featurizer
    if setting == AUTO and ws.multilabel:  # multi-label rounds train on n-grams for now
        setting = BASE_FEATURIZER
    names = blocks_needed(setting)
    cache = FeatureCache(ws.models_dir / "features" / "cache")
    featurizers = {name: fitted_featurizer(ws, data, stage, name) for name in names}
    note = ""
    if setting == AUTO and EMBEDDINGS in featurizers:
        missing = cache.missing(featurizers[EMBEDDINGS], data.keys)
        if missing > INLINE_EMBED_ROWS:
            del featurizers[EMBEDDINGS]
            note = (
                f"the sentence embeddings of {missing:,} items are not computed yet (the "
                "worker of `labelloop serve` or `labelloop features build` computes them), so "
                "this round compares n-gram candidates only"
            )
    stage("featurizing")
    rows = {
        name: cache.rows(
            featurizer, data.keys, lambda positions: texts_of(ws, data.item_ids[positions])
        )
        for name, featurizer in featurizers.items()
    }
    return FeatureBlocks(rows, featurizers, note)
