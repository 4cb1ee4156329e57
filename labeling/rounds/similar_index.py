"""The on-disk nearest-neighbour index behind similar items: a projection searched by brute
force, and the full feature rows to re-rank its best candidates by exact cosine.

An index covers the items of one representation (one featurizer version) and lives in one
folder: ``index.json`` (the blocks, the projection's width, the segments) and
``components.npy`` (the projection), then one folder per segment. A segment holds its items'
ids (ascending; a later segment's ids are all higher), their rows projected to at most
:data:`PROJECTION_DIMS` dimensions (unit norm, float32), each row's squared norm, and every
block's rows in a memory-mappable layout (dense ``.npy``, or sparse as three raw arrays), so a
query reads the projection once and a few hundred full rows, never the feature cache.

A query scores every row's projection against the query's (one float32 matrix-vector product:
20-40 ms for a million rows on 2 cores), takes the :func:`candidate_count` best, and ranks
those by exact cosine on their full rows (the blocks side by side, each times its scale), so
the similarity shown is exact; with no more rows than candidates, every row is ranked exactly.
Items imported later are appended as a new segment; removed items stay in the index and are
left out at query time, so a restore needs nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from labeling.rounds.featurizers import Matrix, side_by_side

#: Width of the projection searched by brute force (fewer on tiny pools).
PROJECTION_DIMS = 64
#: The projection is fitted on at most this many rows (a seeded sample beyond).
PROJECTION_SAMPLE_ROWS = 20_000
#: Candidates re-ranked by exact cosine: at least this many, and CANDIDATES_PER_RESULT per result.
MIN_CANDIDATES = 1_000
CANDIDATES_PER_RESULT = 10
#: Rows copied and projected at a time while building (bounds memory, not the index size).
BUILD_CHUNK_ROWS = 50_000
INDEX_FILE = "index.json"
COMPONENTS_FILE = "components.npy"


def candidate_count(limit: int) -> int:
    """How many of the projection's best rows are ranked exactly for ``limit`` results."""
    return max(MIN_CANDIDATES, CANDIDATES_PER_RESULT * limit)


@dataclass(frozen=True)
class BlockSpec:
    """One feature block of the representation: its name, layout and scale in the rows."""

    name: str
    sparse: bool
    scale: float
    width: int


class Segment:
    """One segment's arrays, memory-mapped when first read (see the module doc)."""

    def __init__(self, folder: Path, blocks: list[BlockSpec], meta: dict[str, Any]) -> None:
        self.folder = folder
        self.rows = int(meta["rows"])
        self.ids: NDArray[np.int64] = np.load(folder / "ids.npy")
        self.norms2: NDArray[np.float32] = np.load(folder / "norms2.npy")
        self.blocks = blocks
        self.nnz = [int(n) for n in meta["nnz"]]
        self._maps: dict[str, Any] = {}

    def _map(self, name: str, dtype: Any = None, count: int = 0) -> Any:
        """A file of the segment, memory-mapped once: ``.npy``, or raw with ``dtype``."""
        if name not in self._maps:
            path = self.folder / name
            if dtype is None:
                self._maps[name] = np.load(path, mmap_mode="r")
            elif count == 0:
                self._maps[name] = np.zeros(0, dtype=dtype)  # an empty file cannot be mapped
            else:
                self._maps[name] = np.memmap(path, dtype=dtype, mode="r", shape=(count,))
        return self._maps[name]

    @property
    def proj(self) -> Any:
        return self._map("proj.npy")

    def block_rows(self, b: int, rows: NDArray[np.intp]) -> Matrix:
        """Rows ``rows`` (positions in this segment) of block ``b``, as a matrix."""
        spec = self.blocks[b]
        if not spec.sparse:
            return np.asarray(self._map(f"block{b}.npy")[rows], dtype=np.float32)
        indptr = self._map(f"block{b}.indptr.npy")
        starts, ends = indptr[rows], indptr[rows + 1]
        lengths = (ends - starts).astype(np.int64)
        new_indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        total = int(new_indptr[-1])
        if total == 0:
            return sp.csr_matrix((len(rows), spec.width), dtype=np.float32)
        # Positions of every wanted entry: each row's start repeated over its length, plus
        # the offset within the row.
        take = np.repeat(starts - new_indptr[:-1], lengths) + np.arange(total)
        indices = self._map(f"block{b}.indices", np.int32, self.nnz[b])[take]
        data = self._map(f"block{b}.data", np.float32, self.nnz[b])[take]
        return sp.csr_matrix((data, indices, new_indptr), shape=(len(rows), spec.width))


class SimilarIndex:
    """An opened index: its blocks, projection and segments (see the module doc)."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        self.folder = folder
        self.meta = meta
        self.blocks = [BlockSpec(**b) for b in meta["blocks"]]
        self.components_t: NDArray[np.float32] = np.load(folder / COMPONENTS_FILE)
        self.segments = [Segment(folder / s["name"], self.blocks, s) for s in meta["segments"]]
        self.ids = np.concatenate([s.ids for s in self.segments]) if self.segments else _no_ids()
        self._starts = np.cumsum([0] + [s.rows for s in self.segments])

    @property
    def through(self) -> int:
        """The highest item id the index covers (0 when empty)."""
        return int(self.meta["through"])

    @property
    def base_rows(self) -> int:
        return self.segments[0].rows if self.segments else 0

    @classmethod
    def open(cls, folder: Path) -> SimilarIndex | None:
        """The index in ``folder``, or None when none was built there."""
        path = folder / INDEX_FILE
        if not path.exists():
            return None
        return cls(folder, json.loads(path.read_text()))

    def position(self, item_id: int) -> int | None:
        """Where item ``item_id`` is in the index, or None."""
        at = int(np.searchsorted(self.ids, item_id))
        if at < len(self.ids) and int(self.ids[at]) == item_id:
            return at
        return None

    def rows_at(self, positions: NDArray[np.intp]) -> tuple[list[Matrix], NDArray[np.float32]]:
        """Each block's rows at ``positions`` (in that order) and the rows' squared norms."""
        seg_of = np.searchsorted(self._starts, positions, side="right") - 1
        parts: list[list[Matrix]] = [[] for _ in self.blocks]
        norms: list[NDArray[np.float32]] = []
        order: list[NDArray[np.intp]] = []
        for s in np.unique(seg_of):
            take = np.flatnonzero(seg_of == s)
            local = (positions[take] - self._starts[s]).astype(np.intp)
            segment = self.segments[int(s)]
            for b in range(len(self.blocks)):
                parts[b].append(segment.block_rows(b, local))
            norms.append(segment.norms2[local])
            order.append(take)
        inverse = np.empty(len(positions), dtype=np.intp)
        if order:
            inverse[np.concatenate(order)] = np.arange(len(positions))
        blocks = [_stack(p, spec)[inverse] for p, spec in zip(parts, self.blocks, strict=True)]
        norms2 = np.concatenate(norms)[inverse] if norms else np.zeros(0, np.float32)
        return blocks, norms2

    def search(
        self,
        query: list[Matrix],
        *,
        exclude: NDArray[np.int64],
        limit: int,
        min_similarity: float | None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The ids of the ``limit`` rows most similar to ``query`` (one row per block) and
        their exact cosine, best first (ties by id); ``exclude``: item ids to leave out."""
        n = len(self.ids)
        at = np.searchsorted(self.ids, exclude).clip(0, max(n - 1, 0))
        excluded = at[self.ids[at] == exclude] if n else np.zeros(0, np.intp)
        wanted = candidate_count(limit)
        if n - len(np.unique(excluded)) <= wanted:
            keep = np.ones(n, dtype=bool)
            keep[excluded] = False
            candidates = np.flatnonzero(keep)
        else:
            projected = self.project(query)[0]
            scores = np.concatenate([s.proj @ projected for s in self.segments])
            scores[excluded] = -np.inf
            candidates = np.argpartition(-scores, wanted)[:wanted]
        sims = self.exact_cosine(query, candidates.astype(np.intp))
        ids = self.ids[candidates]
        order = np.lexsort((ids, -sims))
        if min_similarity is not None:
            order = order[sims[order] >= min_similarity]
        order = order[:limit]
        return ids[order], sims[order]

    def exact_cosine(self, query: list[Matrix], positions: NDArray[np.intp]) -> NDArray[np.float64]:
        """Cosine between the query row and the rows at ``positions``, on the full rows."""
        if not len(positions):
            return np.zeros(0)
        blocks, norms2 = self.rows_at(positions)
        dots = np.zeros(len(positions))
        query_norm2 = 0.0
        for rows, q, spec in zip(blocks, query, self.blocks, strict=True):
            weight = spec.scale**2
            q_dense = np.asarray(q.toarray() if sp.issparse(q) else q, dtype=np.float64).ravel()
            dots += weight * np.asarray(rows @ q_dense, dtype=np.float64).ravel()
            query_norm2 += weight * float(q_dense @ q_dense)
        denominator = np.sqrt(norms2.astype(np.float64) * query_norm2)
        return np.divide(dots, denominator, out=np.zeros_like(dots), where=denominator > 0)

    def project(self, blocks: list[Matrix]) -> NDArray[np.float32]:
        """Rows (one matrix per block) projected and unit-normalised."""
        return project_rows(blocks, self.blocks, self.components_t)


def _no_ids() -> NDArray[np.int64]:
    return np.zeros(0, dtype=np.int64)


def _stack(parts: list[Matrix], spec: BlockSpec) -> Matrix:
    if not parts:
        if spec.sparse:
            return sp.csr_matrix((0, spec.width), dtype=np.float32)
        return np.zeros((0, spec.width), np.float32)
    if spec.sparse:
        return sp.vstack(parts, format="csr")
    return np.vstack(parts)


def compose(blocks: list[Matrix], specs: list[BlockSpec]) -> Matrix:
    """The rows as the model reads them: one block, or the blocks side by side, scaled."""
    if len(specs) == 1:
        return blocks[0] * np.float32(specs[0].scale) if specs[0].scale != 1 else blocks[0]
    return side_by_side(blocks, [s.scale for s in specs])


def project_rows(
    blocks: list[Matrix], specs: list[BlockSpec], components_t: NDArray[np.float32]
) -> NDArray[np.float32]:
    """Rows projected by ``components_t`` (width x dims) and unit-normalised, float32."""
    projected = np.asarray(compose(blocks, specs) @ components_t, dtype=np.float32)
    norms = np.linalg.norm(projected, axis=1, keepdims=True)
    return np.asarray(projected / np.where(norms > 0, norms, 1), dtype=np.float32)


def squared_norms(blocks: list[Matrix], specs: list[BlockSpec]) -> NDArray[np.float32]:
    """Each row's squared norm with the blocks side by side, each times its scale."""
    total = np.zeros(blocks[0].shape[0], dtype=np.float64)
    for rows, spec in zip(blocks, specs, strict=True):
        squares = rows.multiply(rows).sum(axis=1) if sp.issparse(rows) else (rows**2).sum(axis=1)
        total += spec.scale**2 * np.asarray(squares, dtype=np.float64).ravel()
    return total.astype(np.float32)


# ------------------------------------------------------------------ writing


def write_segment(
    folder: Path,
    specs: list[BlockSpec],
    sources: list[Any],
    ids: NDArray[np.int64],
    components_t: NDArray[np.float32] | None,
) -> dict[str, Any]:
    """Copy every block's rows (``sources``: one row view per block, rows in ``ids`` order)
    into a new segment folder, a chunk at a time; project them when ``components_t`` is given
    (else the caller projects later: :func:`project_segment`). Returns the segment's record."""
    folder.mkdir(parents=True)
    n = len(ids)
    np.save(folder / "ids.npy", np.asarray(ids, dtype=np.int64))
    norms2 = np.zeros(n, dtype=np.float32)
    nnz = [0] * len(specs)
    handles = {}
    dense = {}
    for b, spec in enumerate(specs):
        if spec.sparse:
            handles[b] = (
                open(folder / f"block{b}.indices", "wb"),  # noqa: SIM115 (closed below)
                open(folder / f"block{b}.data", "wb"),  # noqa: SIM115
            )
        else:
            dense[b] = np.lib.format.open_memmap(
                folder / f"block{b}.npy", mode="w+", dtype=np.float32, shape=(n, spec.width)
            )
    indptrs: list[list[NDArray[np.int64]]] = [[np.zeros(1, np.int64)] for _ in specs]
    try:
        for start in range(0, n, BUILD_CHUNK_ROWS):
            stop = min(start + BUILD_CHUNK_ROWS, n)
            chunk = [source[start:stop] for source in sources]
            norms2[start:stop] = squared_norms(chunk, specs)
            for b, rows in enumerate(chunk):
                if b in dense:
                    dense[b][start:stop] = np.asarray(rows, dtype=np.float32)
                    continue
                csr = sp.csr_matrix(rows, dtype=np.float32)
                csr.sort_indices()
                handles[b][0].write(csr.indices.astype(np.int32).tobytes())
                handles[b][1].write(csr.data.astype(np.float32).tobytes())
                indptrs[b].append(csr.indptr[1:].astype(np.int64) + nnz[b])
                nnz[b] += int(csr.nnz)
    finally:
        for indices, data in handles.values():
            indices.close()
            data.close()
    for matrix in dense.values():
        matrix.flush()
    dense.clear()
    for b in handles:
        np.save(folder / f"block{b}.indptr.npy", np.concatenate(indptrs[b]))
    np.save(folder / "norms2.npy", norms2)
    record = {"name": folder.name, "rows": n, "nnz": nnz, "through": int(ids.max()) if n else 0}
    if components_t is not None:
        project_segment(folder, specs, record, components_t)
    return record


def project_segment(
    folder: Path, specs: list[BlockSpec], record: dict[str, Any], components_t: NDArray[np.float32]
) -> None:
    """Write ``proj.npy``: the segment's rows projected, read back from its own files."""
    segment_rows = int(record["rows"])
    dims = components_t.shape[1]
    proj = np.lib.format.open_memmap(
        folder / "proj.npy.tmp", mode="w+", dtype=np.float32, shape=(segment_rows, dims)
    )
    segment = Segment(folder, specs, record)
    for start in range(0, segment_rows, BUILD_CHUNK_ROWS):
        rows = np.arange(start, min(start + BUILD_CHUNK_ROWS, segment_rows), dtype=np.intp)
        blocks = [segment.block_rows(b, rows) for b in range(len(specs))]
        proj[start : start + len(rows)] = project_rows(blocks, specs, components_t)
    proj.flush()
    del proj
    os.replace(folder / "proj.npy.tmp", folder / "proj.npy")


def fit_projection(folder: Path, specs: list[BlockSpec], record: dict[str, Any]) -> NDArray[Any]:
    """A truncated SVD of a seeded sample of the segment's rows: (width x dims), float32.

    Not centred, as for LSA: the rows are non-negative n-grams or embeddings compared by
    cosine, and the SVD keeps their directions. Fewer dimensions on tiny pools."""
    from sklearn.decomposition import TruncatedSVD  # scikit-learn: ~1 s

    rows = int(record["rows"])
    width = sum(spec.width for spec in specs)
    picked = np.arange(rows, dtype=np.intp)
    if rows > PROJECTION_SAMPLE_ROWS:
        rng = np.random.default_rng(0)
        picked = np.sort(rng.choice(rows, PROJECTION_SAMPLE_ROWS, replace=False))
    dims = min(PROJECTION_DIMS, len(picked) - 1, width - 1)
    if dims < 1:
        return np.zeros((width, 1), dtype=np.float32)
    segment = Segment(folder, specs, record)
    sample = compose([segment.block_rows(b, picked) for b in range(len(specs))], specs)
    svd = TruncatedSVD(n_components=dims, random_state=0).fit(sample)
    return np.ascontiguousarray(svd.components_.T, dtype=np.float32)


def write_index(folder: Path, meta: dict[str, Any], components_t: NDArray[Any] | None) -> None:
    """Write ``index.json`` (and the projection, when given) so that readers see all or none."""
    if components_t is not None:
        np.save(folder / "components.tmp.npy", components_t)
        os.replace(folder / "components.tmp.npy", folder / COMPONENTS_FILE)
    tmp = folder / f"{INDEX_FILE}.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, folder / INDEX_FILE)


def build(
    folder: Path, specs: list[BlockSpec], sources: list[Any], ids: NDArray[np.int64]
) -> SimilarIndex:
    """A new index of ``ids`` in ``folder`` (replacing any there): copy the rows, fit the
    projection on a sample of them, project every row. Written beside ``folder`` and renamed
    into place, so a reader finds the old index or the new one, whole."""
    new = folder.with_name(folder.name + ".new")
    shutil.rmtree(new, ignore_errors=True)  # left by a crash
    new.mkdir(parents=True)
    record = write_segment(new / "seg-000001", specs, sources, ids, None)
    components_t = fit_projection(new / "seg-000001", specs, record)
    project_segment(new / "seg-000001", specs, record, components_t)
    meta = {
        "blocks": [spec.__dict__ for spec in specs],
        "dims": int(components_t.shape[1]),
        "segments": [record],
        "through": record["through"],
    }
    write_index(new, meta, components_t)
    if folder.exists():
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        new.rename(folder)
        shutil.rmtree(old, ignore_errors=True)  # mapped files stay readable until unmapped
    else:
        new.rename(folder)
    found = SimilarIndex.open(folder)
    assert found is not None
    return found


def append(index: SimilarIndex, sources: list[Any], ids: NDArray[np.int64]) -> SimilarIndex:
    """The index with ``ids`` (all above its ``through``) added as one new segment."""
    number = len(index.segments) + 1
    if (index.folder / f"seg-{number:06d}").exists():  # left by a crash before index.json
        shutil.rmtree(index.folder / f"seg-{number:06d}")
    record = write_segment(
        index.folder / f"seg-{number:06d}", index.blocks, sources, ids, index.components_t
    )
    meta = dict(index.meta)
    meta["segments"] = [*index.meta["segments"], record]
    meta["through"] = max(index.through, record["through"])
    write_index(index.folder, meta, None)
    found = SimilarIndex.open(index.folder)
    assert found is not None
    return found
