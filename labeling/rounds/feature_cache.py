"""An on-disk cache of featurized pool rows, so a retraining round featurizes only new items.

:class:`FeatureCache` keys rows by the featurizer's ``version`` (see
:mod:`labeling.rounds.featurizers`) and by an item key (a content hash); :class:`CachedRows`
reads them back a chunk at a time, so a million-row pool is never in memory at once. Several
writers may share a folder (a round, the embedding pass, other processes): each chunk gets its
number under an exclusive file lock, and a key written twice is read from its first chunk.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from labeling.errors import BadInput
from labeling.rounds.featurizers import (
    DEFAULT_CHUNK_ROWS,
    Featurizer,
    FeaturizerError,
    Matrix,
    digest,
    iter_chunks,
    stack_rows,
    transform_all,
)


class FeatureCache:
    """Featurized rows on disk, by featurizer version and item key.

    Layout: one folder per featurizer version, holding numbered chunks; each chunk is a matrix
    file (``.npz`` sparse or ``.npy`` dense) plus the item keys of its rows (``.keys.npy``).
    Chunks are written to a temporary name and renamed, so a crash never leaves half a chunk.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        #: Rows featurized by the last :meth:`features` call (cache misses); for reports and tests.
        self.last_computed = 0

    def features(
        self,
        featurizer: Featurizer,
        keys: Sequence[str],
        texts: Sequence[str],
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> Matrix:
        """The feature rows of ``texts`` in the given order, featurizing only unseen keys.

        ``keys`` identify items (e.g. content hashes): equal keys must mean equal texts.
        """
        if len(keys) != len(texts):
            raise BadInput(f"got {len(keys)} keys for {len(texts)} texts; expected one per text")
        rows = self.rows(
            featurizer, keys, lambda wanted: [texts[i] for i in wanted], chunk_rows=chunk_rows
        )
        return rows[:]

    def rows(
        self,
        featurizer: Featurizer,
        keys: Sequence[str] | NDArray[np.str_],
        texts_of: Callable[[NDArray[np.intp]], Sequence[str]],
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> CachedRows:
        """The feature rows of ``keys`` as a :class:`CachedRows` view, read from disk on use.

        Unseen keys are featurized first, ``chunk_rows`` at a time: ``texts_of(positions)``
        returns the texts at those positions of ``keys`` (a round reads them from the store
        chunk by chunk), so neither all texts nor all features are ever in memory at once.
        """
        folder = self.version_folder(featurizer)
        wanted = np.asarray(keys, dtype=str)
        stored = _KeyIndex.load(folder)
        positions, found = stored.find(wanted)
        missing = np.flatnonzero(~found)
        # A key repeated within the request is featurized once.
        _, first = np.unique(wanted[missing], return_index=True)
        missing = missing[np.sort(first)]
        self.last_computed = len(missing)
        if len(missing):
            chunks = [missing[rows] for rows in iter_chunks(len(missing), chunk_rows)]
            texts = (texts_of(rows) for rows in chunks)
            matrices = transform_all(featurizer, texts, n_chunks=len(chunks), n_rows=len(missing))
            for rows, matrix in zip(chunks, matrices, strict=True):
                write_chunk(folder, wanted[rows], matrix)
            stored = _KeyIndex.load(folder)
            positions, found = stored.find(wanted)
        if not found.all():
            raise FeaturizerError("some keys are not in the feature cache")
        where = (stored.chunk[positions], stored.row[positions])
        return CachedRows(folder, where, sparse=featurizer.sparse)

    def missing(self, featurizer: Featurizer, keys: Sequence[str]) -> int:
        """How many distinct ``keys`` have no cached row for this featurizer (nothing computed)."""
        folder = self.folder / _safe_version(featurizer.version)
        wanted = np.unique(np.asarray(keys, dtype=str))
        if not folder.exists():
            return len(wanted)
        _, found = _KeyIndex.load(folder).find(wanted)
        return int((~found).sum())

    def version_folder(self, featurizer: Featurizer) -> Path:
        """The folder holding ``featurizer``'s rows (made if missing)."""
        folder = self.folder / _safe_version(featurizer.version)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def lacking(
        self, featurizer: Featurizer, keys: Sequence[str] | NDArray[np.str_]
    ) -> NDArray[np.bool_]:
        """For each key, whether ``featurizer``'s rows lack it (nothing is featurized)."""
        wanted = np.asarray(keys, dtype=str)
        _, found = _KeyIndex.load(self.version_folder(featurizer)).find(wanted)
        return ~found

    def add(
        self, featurizer: Featurizer, keys: Sequence[str] | NDArray[np.str_], matrix: Matrix
    ) -> int:
        """Store rows featurized elsewhere (one chunk; a Dask worker's, say); returns its number.

        ``matrix`` holds one row per key, made by ``featurizer`` (a featurizer of the same
        version) from the keys' texts.
        """
        wanted = np.asarray(keys, dtype=str)
        if matrix.shape[0] != len(wanted):
            raise BadInput(
                f"got {matrix.shape[0]} rows for {len(wanted)} keys; expected one per key"
            )
        return write_chunk(self.version_folder(featurizer), wanted, matrix)

    def versions(self) -> list[str]:
        """Folders held, one per featurizer version."""
        if not self.folder.exists():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir())

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Delete the cached features of every version not in ``keep``; return what went."""
        kept = {_safe_version(v) for v in keep}
        removed = [v for v in self.versions() if v not in kept]
        for name in removed:
            shutil.rmtree(self.folder / name)
        return removed


class CachedRows:
    """A read-only matrix of cached feature rows, read from disk when rows are asked for.

    It has a ``shape`` and answers ``rows[i]``, ``rows[a:b]`` and ``rows[index_array]`` with a
    real matrix (sparse CSR or dense) of those rows, so scoring code can walk a million-row
    pool slice by slice without the whole matrix in memory. The two chunk files read last are
    kept, so consecutive slices cost one read per chunk. ``subset(rows)`` is a view of some
    rows, in that order, with no reading at all.
    """

    ndim = 2

    def __init__(
        self,
        folder: Path,
        where: tuple[NDArray[np.int64], NDArray[np.int64]],
        *,
        sparse: bool,
        width: int | None = None,
    ) -> None:
        """``where``: each row's chunk number and row within that chunk."""
        self.folder = folder
        self.sparse = sparse
        self._chunk, self._row = where
        self._recent: dict[int, Matrix] = {}
        if width is None:
            width = int(_empty_rows(folder, sparse=sparse).shape[1])
        self.shape = (len(self._chunk), width)

    def __len__(self) -> int:
        return self.shape[0]

    def subset(self, rows: Any) -> CachedRows:
        picked = self._positions(rows)
        where = (self._chunk[picked], self._row[picked])
        return CachedRows(self.folder, where, sparse=self.sparse, width=self.shape[1])

    def _positions(self, rows: Any) -> NDArray[np.intp]:
        if isinstance(rows, slice):
            return np.arange(self.shape[0])[rows]
        if isinstance(rows, int | np.integer):
            return np.array([int(rows)], dtype=np.intp)
        picked = np.asarray(rows)
        if picked.dtype == bool:
            return np.flatnonzero(picked)
        return picked.astype(np.intp, copy=False)

    def __getitem__(self, rows: Any) -> Matrix:
        if isinstance(rows, tuple):
            raise TypeError("CachedRows takes row indices only")
        picked = self._positions(rows)
        chunk_of, row_of = self._chunk[picked], self._row[picked]
        if not len(picked):
            return _empty_rows(self.folder, sparse=self.sparse)
        numbers = np.unique(chunk_of)
        if len(numbers) == 1:
            return self._read(int(numbers[0]))[row_of]
        parts: list[Matrix] = []
        order: list[NDArray[np.intp]] = []
        for number in numbers:
            take = np.flatnonzero(chunk_of == number)
            parts.append(self._read(int(number))[row_of[take]])
            order.append(take)
        stacked = stack_rows(parts, sparse=self.sparse)
        inverse = np.empty(len(picked), dtype=np.intp)
        inverse[np.concatenate(order)] = np.arange(len(picked))
        return stacked[inverse]

    def _read(self, number: int) -> Matrix:
        if number not in self._recent:
            if len(self._recent) >= 2:
                self._recent.pop(next(iter(self._recent)))
            self._recent[number] = _read_chunk(self.folder, number, sparse=self.sparse)
        return self._recent[number]


def _safe_version(version: str) -> str:
    """Versions become folder names: keep them short and free of path characters."""
    clean = "".join(c if c.isalnum() or c in "-_." else "_" for c in version)
    return clean if len(clean) <= 80 else f"{clean[:40]}-{digest(version)[:16]}"


def write_chunk(folder: Path, keys: NDArray[np.str_], matrix: Matrix) -> int:
    """Write one chunk under the next free number; returns the number.

    The number is chosen and the files renamed into place while holding an exclusive lock on
    the folder's lock file, so two writers (threads or processes) never take the same number;
    the featurizing itself happens before, outside the lock.
    """
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        tmp = Path(scratch)
        sparse = sp.issparse(matrix)
        suffix = ".npz" if sparse else ".npy"
        if sparse:
            sp.save_npz(tmp / f"data{suffix}", sp.csr_matrix(matrix), compressed=False)
        else:
            np.save(tmp / f"data{suffix}", np.asarray(matrix))
        np.save(tmp / "keys.npy", keys)
        with _folder_lock(folder):
            number = _last_chunk(folder) + 1
            stem = f"chunk-{number:06d}"
            # Matrix first, keys last: a chunk counts only once its keys file exists.
            os.replace(tmp / f"data{suffix}", folder / f"{stem}{suffix}")
            os.replace(tmp / "keys.npy", folder / f"{stem}.keys.npy")
    return number


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the folder's lock file while the ``with`` block runs."""
    with open(folder / ".write.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
        yield


def _last_chunk(folder: Path) -> int:
    """The highest chunk number with any file in the folder (0 when none)."""
    stems = (p.name.split(".")[0].removeprefix("chunk-") for p in folder.glob("chunk-*"))
    return max((int(stem) for stem in stems if stem.isdigit()), default=0)


class _KeyIndex:
    """Every stored key of one version folder, sorted, with its chunk and row."""

    def __init__(
        self, keys: NDArray[np.str_], chunk: NDArray[np.int64], row: NDArray[np.int64]
    ) -> None:
        # Chunks come in number order and the sort is stable, so a key that two writers both
        # stored (a round and the embedding pass racing) keeps its first chunk's row only.
        order = np.argsort(keys, kind="stable")
        keys, chunk, row = keys[order], chunk[order], row[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        self.keys, self.chunk, self.row = keys[first], chunk[first], row[first]

    @classmethod
    def load(cls, folder: Path) -> _KeyIndex:
        keys, chunks, rows = [], [], []
        for path in sorted(folder.glob("chunk-*.keys.npy")):
            number = int(path.name.split("-")[1].split(".")[0])
            stored = np.load(path, allow_pickle=False)
            keys.append(stored)
            chunks.append(np.full(len(stored), number, dtype=np.int64))
            rows.append(np.arange(len(stored), dtype=np.int64))
        if not keys:
            empty = np.array([], dtype=np.int64)
            return cls(np.array([], dtype=str), empty, empty)
        return cls(np.concatenate(keys), np.concatenate(chunks), np.concatenate(rows))

    def _positions(self, wanted: NDArray[np.str_]) -> NDArray[np.intp]:
        return np.searchsorted(self.keys, wanted).clip(0, max(len(self.keys) - 1, 0))

    def find(self, wanted: NDArray[np.str_]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Each wanted key's position in the index, and whether it is there at all."""
        if not len(self.keys):
            return np.zeros(len(wanted), dtype=np.intp), np.zeros(len(wanted), dtype=bool)
        positions = self._positions(wanted)
        return positions, np.asarray(self.keys[positions] == wanted)


def _read_chunk(folder: Path, number: int, *, sparse: bool) -> Matrix:
    stem = folder / f"chunk-{number:06d}"
    if sparse:
        return sp.load_npz(f"{stem}.npz").tocsr()
    return np.load(f"{stem}.npy", allow_pickle=False)


def _empty_rows(folder: Path, *, sparse: bool) -> Matrix:
    """Zero rows with the right width when the folder already knows it, else width 0."""
    chunks = sorted(folder.glob("chunk-*.keys.npy"))
    if chunks:
        number = int(chunks[0].name.split("-")[1].split(".")[0])
        return _read_chunk(folder, number, sparse=sparse)[:0]
    return sp.csr_matrix((0, 0), dtype=np.float32) if sparse else np.zeros((0, 0), np.float32)
