"""Similar items: the nearest neighbours of an item, or of a typed text, by cosine similarity.

The rows compared are those of the promoted round's representation (``metrics["representation"]``
and the featurizer version in ``metrics["featurizer"]``): the tfidf block, the sentence
embeddings, or both side by side (the hybrid). Before any round, or when the round's fitted
featurizer is gone, the workspace's ``featurizer`` setting decides; ``auto`` then takes the
tfidf block, which needs no embedding pass. Rows come from the feature cache
(:mod:`labeling.rounds.feature_cache`), featurized where missing.

The index (:mod:`labeling.rounds.similar_index`) is built on first use and kept in
``models/similar/``, one folder per featurizer version. Every query brings it up to date with
the store first: items imported since are featurized and appended as a segment (the index is
rebuilt instead once they outnumber the rows its projection was fitted on); removed items stay
indexed and are left out of every result, so a restore needs nothing.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func
from sqlmodel import col, select

from labeling.context import Context
from labeling.errors import BadInput, UnknownItem
from labeling.rounds import similar_index
from labeling.rounds.feature_cache import FeatureCache
from labeling.rounds.featurizers import AUTO, BASE_FEATURIZER, HYBRID_SCALES, digest
from labeling.rounds.pool import (
    PoolData,
    fitted_featurizer,
    load_pool,
    round_featurizer,
    texts_of,
)
from labeling.rounds.similar_index import BlockSpec, SimilarIndex
from labeling.store import db
from labeling.store.models import REMOVED, Item, Round

DEFAULT_LIMIT = 20
MAX_LIMIT = 10_000
#: Segments appended before the index is rebuilt whatever their size.
MAX_SEGMENTS = 16
SIMILAR_DIR = "similar"

_LOCK = threading.Lock()
_INDEXES: dict[str, tuple[float, SimilarIndex]] = {}
_FEATURIZERS: dict[tuple[Any, ...], Any] = {}


class SimilarItem(TypedDict):
    """One neighbour, as ``labelloop similar --json`` prints it."""

    id: str  # external id
    text: str
    similarity: float
    split: str  # pool or gold


@dataclass(frozen=True)
class Source:
    """The representation compared: featurizer name and version, and its fitted featurizer."""

    name: str
    version: str
    featurizer: Any
    #: Where it comes from, for people: "round 3" or "the workspace's setting".
    origin: str

    @property
    def parts(self) -> list[Any]:
        return list(self.featurizer.parts) if self.name == "hybrid" else [self.featurizer]

    @property
    def scales(self) -> list[float]:
        return list(HYBRID_SCALES) if self.name == "hybrid" else [1.0]


def find_similar(
    ws: Context,
    item_id: str | None = None,
    *,
    text: str | None = None,
    limit: int = DEFAULT_LIMIT,
    min_similarity: float | None = None,
) -> dict[str, list[SimilarItem]]:
    """The items most similar to item ``item_id`` (an external id) or to ``text``, best
    first, with their cosine similarity; the item itself and removed items are left out.

    ``limit``: at most that many (1 to :data:`MAX_LIMIT`); ``min_similarity``: only items at
    least that similar (-1 to 1)."""
    _check_options(item_id, text, limit, min_similarity)
    internal = item_id_of(ws, item_id) if item_id is not None else None
    if not _has_items(ws):
        raise BadInput("the workspace has no items: import some before asking for similar items")
    source = similarity_source(ws)
    index = current_index(ws, source)
    if internal is not None:
        at = index.position(internal)
        if at is None:
            # Below the index's highest id yet missing: an import that committed after a
            # later one (concurrent imports on PostgreSQL). Build it again from the store.
            index = current_index(ws, source, rebuild=True)
            at = index.position(internal)
        if at is None:
            raise UnknownItem(f"the item {item_id!r} is not in the store any more")
        query, _ = index.rows_at(np.array([at], dtype=np.intp))
    else:
        query = [part.transform([text]) for part in source.parts]
    exclude = removed_ids(ws)
    if internal is not None:
        exclude = np.union1d(exclude, [internal])
    ids, sims = index.search(query, exclude=exclude, limit=limit, min_similarity=min_similarity)
    return {"items": _describe(ws, ids, sims)}


def _check_options(
    item_id: str | None, text: str | None, limit: int, min_similarity: float | None
) -> None:
    if (item_id is None) == (text is None):
        found = "both" if item_id is not None else "neither"
        raise BadInput(f"give either item_id or text to compare with (exactly one); found {found}")
    if text is not None and not text.strip():
        raise BadInput("text: expected some words to compare with, found an empty text")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"limit: expected 1 to {MAX_LIMIT:,}, found {limit}")
    if min_similarity is not None and not -1.0 <= min_similarity <= 1.0:
        raise BadInput(f"min_similarity: expected a cosine from -1 to 1, found {min_similarity}")


def item_id_of(ws: Context, external_id: str) -> int:
    with db.read_session(ws.engine) as session:
        found = session.exec(select(Item.id).where(Item.external_id == external_id)).first()
    if found is None:
        raise UnknownItem(f"no item has the id {external_id!r}")
    return int(found)


def _has_items(ws: Context) -> bool:
    with db.read_session(ws.engine) as session:
        return session.exec(select(Item.id).limit(1)).first() is not None


def removed_ids(ws: Context) -> NDArray[np.int64]:
    with db.read_session(ws.engine) as session:
        rows = session.exec(select(Item.id).where(Item.split == REMOVED)).all()
    return np.sort(np.array(rows, dtype=np.int64))


def _describe(ws: Context, ids: NDArray[np.int64], sims: NDArray[np.float64]) -> list[SimilarItem]:
    wanted = [int(i) for i in ids]
    found: dict[int, tuple[str, str, str]] = {}
    with db.read_session(ws.engine) as session:
        for start in range(0, len(wanted), 900):  # under every backend's parameter limit
            batch = wanted[start : start + 900]
            query = select(Item.id, Item.external_id, Item.text, Item.split).where(
                col(Item.id).in_(batch)
            )
            for item_id, external_id, text, split in session.exec(query):
                found[int(item_id or 0)] = (external_id, text, split)
    return [
        SimilarItem(
            id=found[i][0], text=found[i][1], similarity=round(float(s), 6), split=found[i][2]
        )
        for i, s in zip(wanted, sims.tolist(), strict=True)
        if i in found
    ]


# ------------------------------------------------------------------ which rows


def similarity_source(ws: Context) -> Source:
    """The representation similar items compare (see the module doc)."""
    with db.read_session(ws.engine) as session:
        promoted = session.exec(select(Round).where(col(Round.promoted).is_(True))).first()
    if promoted is not None and promoted.metrics:
        metrics = json.loads(promoted.metrics)
        name = (metrics.get("representation") or {}).get("featurizer")
        version = metrics.get("featurizer")
        if name and version:
            round_key = ("round", promoted.id, version)
            featurizer = _cached(ws, round_key, lambda: round_featurizer(ws, metrics))
            if featurizer is not None:
                return Source(name, str(version), featurizer, f"round {promoted.id}")
    setting = ws.config.featurizer
    name = BASE_FEATURIZER if setting == AUTO else setting
    featurizer = _cached(ws, ("setting", name), lambda: _setting_featurizer(ws, name))
    return Source(name, str(featurizer.version), featurizer, "the workspace's setting")


def _fitted_mtime(ws: Context) -> float:
    path = ws.models_dir / "features" / f"featurizer-{BASE_FEATURIZER}.joblib"
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _cached(ws: Context, what: tuple[Any, ...], make: Any) -> Any:
    """Fitted featurizers of this workspace by ``what`` and the time the fitted featurizer
    was written: loading a big tfidf vocabulary takes about a second."""
    key = (str(ws.models_dir.resolve()), *what, _fitted_mtime(ws))
    with _LOCK:
        if key in _FEATURIZERS:
            return _FEATURIZERS[key]
    found = make()
    if found is not None:
        key = (*key[:-1], _fitted_mtime(ws))  # a first fit has just written it
        with _LOCK:
            if len(_FEATURIZERS) >= 8:
                _FEATURIZERS.pop(next(iter(_FEATURIZERS)))
            _FEATURIZERS[key] = found
    return found


def _setting_featurizer(ws: Context, name: str) -> Any:
    """The workspace's fitted featurizer ``name``, fitted on the pool the first time (the
    pool is read only then: once fitted, the featurizer is loaded from disk)."""

    def quiet(_stage: str) -> None:
        return None

    path = ws.models_dir / "features" / f"featurizer-{BASE_FEATURIZER}.joblib"
    fitting = name in ("tfidf", "hybrid") and not path.exists()
    return fitted_featurizer(ws, load_pool(ws) if fitting else _NO_POOL, quiet, name)


_NONE = np.zeros(0, dtype=np.int64)
_NO_POOL = PoolData(_NONE, [], np.zeros(0, dtype=object), [], {}, _NONE, {})


# ------------------------------------------------------------------ the index on disk


def index_folder(ws: Context, source: Source) -> Path:
    return ws.models_dir / SIMILAR_DIR / f"{source.name}-{digest(source.version)[:16]}"


def current_index(ws: Context, source: Source, *, rebuild: bool = False) -> SimilarIndex:
    """The source's index, built or brought up to date with the store (under a file lock, so
    two processes never write it at once); ``rebuild``: build it anew."""
    folder = index_folder(ws, source)
    latest = _max_item_id(ws)
    index = _open_cached(folder)
    if index is not None and index.through >= latest and not rebuild:
        return index
    with _write_lock(folder.parent):
        index = _open_cached(folder)
        if index is None or rebuild or _needs_rebuild(index, latest):
            index = _build(ws, source, folder)
        elif index.through < latest:
            index = _append_new(ws, source, index)
    with _LOCK:
        _INDEXES[str(folder)] = (_mtime(folder), index)
    return index


def _needs_rebuild(index: SimilarIndex, latest: int) -> bool:
    if len(index.segments) >= MAX_SEGMENTS:
        return True
    # New items outnumber the rows the projection was fitted on: fit it again.
    return latest - index.through > max(index.base_rows, similar_index.MIN_CANDIDATES)


def _mtime(folder: Path) -> float:
    try:
        return (folder / similar_index.INDEX_FILE).stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _open_cached(folder: Path) -> SimilarIndex | None:
    stamp = _mtime(folder)
    with _LOCK:
        cached = _INDEXES.get(str(folder))
        if cached is not None and cached[0] == stamp:
            return cached[1]
    index = SimilarIndex.open(folder)
    if index is not None:
        with _LOCK:
            _INDEXES[str(folder)] = (stamp, index)
    return index


@contextmanager
def _write_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".write.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
        yield


def _max_item_id(ws: Context) -> int:
    with db.read_session(ws.engine) as session:
        found = session.exec(select(func.max(Item.id))).first()
    return int(found or 0)


def _items_after(ws: Context, through: int) -> tuple[NDArray[np.int64], list[str]]:
    """Ids and content keys of every item above ``through`` (removed ones too), by id."""
    with db.read_session(ws.engine) as session:
        rows = session.exec(
            select(Item.id, Item.content_hash).where(col(Item.id) > through).order_by(col(Item.id))
        ).all()
    return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]


def _sources(ws: Context, source: Source, ids: NDArray[np.int64], keys: list[str]) -> list[Any]:
    """Each block's rows of these items, through the feature cache (missing ones featurized)."""
    cache = FeatureCache(ws.models_dir / "features" / "cache")
    return [
        cache.rows(part, keys, lambda positions: texts_of(ws, ids[positions]))
        for part in source.parts
    ]


def _specs(source: Source, rows: list[Any]) -> list[BlockSpec]:
    return [
        BlockSpec(part.name, bool(part.sparse), float(scale), int(block.shape[1]))
        for part, scale, block in zip(source.parts, source.scales, rows, strict=True)
    ]


def _build(ws: Context, source: Source, folder: Path) -> SimilarIndex:
    ids, keys = _items_after(ws, 0)
    rows = _sources(ws, source, ids, keys)
    index = similar_index.build(folder, _specs(source, rows), rows, ids)
    _prune(folder)
    return index


def _append_new(ws: Context, source: Source, index: SimilarIndex) -> SimilarIndex:
    ids, keys = _items_after(ws, index.through)
    return similar_index.append(index, _sources(ws, source, ids, keys), ids)


def _prune(keep: Path) -> None:
    """Delete the indexes of other featurizer versions: only the current one is queried."""
    for other in keep.parent.iterdir():
        if other.is_dir() and other != keep:
            shutil.rmtree(other, ignore_errors=True)
