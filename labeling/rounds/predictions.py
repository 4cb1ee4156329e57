"""Each round's predictions for the whole pool: the file's format, and reading it back.

A round stores its queue scores (with prediction and confidence) for at most
:data:`labeling.rounds.scores.QUEUE_SCORE_ROWS` items, the top of the queue; the prediction of
every pool item goes to ``predictions.npy`` in the round folder instead: one fixed-width
record per item (id, class index, probability), sorted by id, and the class names to
``predictions.json``. The file is memory-mapped, so looking up one item reads a few pages, and
a million-item export reads it once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import numpy as np

from labeling.context import Context
from labeling.rounds.artifacts import round_dir
from labeling.store.labelsets import decode

PREDICTIONS_FILE = "predictions.npy"
PREDICTION_LABELS_FILE = "predictions.json"
PREDICTION_DTYPE = np.dtype([("item_id", "<i8"), ("label", "<i2"), ("confidence", "<f4")])

_CACHE: dict[tuple[str, float], RoundPredictions] = {}
_LOCK = threading.Lock()


def prediction_table(
    item_ids: np.ndarray, pool_rows: np.ndarray, codes: np.ndarray, confidence: np.ndarray
) -> np.ndarray:
    """Every pool item's prediction, sorted by item id: what ``predictions.npy`` holds.

    ``codes`` (class index, -1 for none) and ``confidence`` are per row of ``item_ids``.
    """
    table = np.empty(len(pool_rows), dtype=PREDICTION_DTYPE)
    table["item_id"] = item_ids[pool_rows]
    table["label"] = codes[pool_rows]
    table["confidence"] = confidence[pool_rows]
    return table[np.argsort(table["item_id"], kind="stable")]


@dataclass(frozen=True)
class RoundPredictions:
    """One round's predictions: ``table`` (memory-mapped records) and the class names."""

    labels: list[str]
    table: np.ndarray

    def lookup(self, item_ids: np.ndarray) -> dict[int, tuple[str, float]]:
        """Prediction and probability of each of ``item_ids`` that the round predicted."""
        wanted = np.asarray(item_ids, dtype=np.int64)
        if not len(self.table) or not len(wanted):
            return {}
        ids = self.table["item_id"]
        at = np.searchsorted(ids, wanted).clip(0, len(ids) - 1)
        hit = ids[at] == wanted
        found: dict[int, tuple[str, float]] = {}
        for item_id, record in zip(wanted[hit].tolist(), self.table[at[hit]], strict=True):
            code = int(record["label"])
            if code >= 0:
                found[item_id] = (self.labels[code], round(float(record["confidence"]), 6))
        return found

    def codes_of(self, label: str) -> np.ndarray:
        """The codes of the predictions that mean ``label``: the class itself, or (in a
        multi-label round, whose predictions are stored sets) every set that holds it."""
        if label in self.labels:
            return np.array([self.labels.index(label)], dtype=np.int64)
        return np.array(
            [
                k
                for k, name in enumerate(self.labels)
                if name.startswith("[") and label in decode(name)
            ],
            dtype=np.int64,
        )

    def get(self, item_id: int) -> tuple[str, float] | None:
        return self.lookup(np.array([item_id])).get(int(item_id))


def load(ws: Context, round_id: int) -> RoundPredictions | None:
    """The predictions of round ``round_id``, or None (no model, or a round from before them)."""
    folder = round_dir(ws, round_id)
    path = folder / PREDICTIONS_FILE
    try:
        key = (str(path), path.stat().st_mtime)
    except FileNotFoundError:
        return None
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        labels = json.loads((folder / PREDICTION_LABELS_FILE).read_text())["labels"]
        table = np.load(path, mmap_mode="r", allow_pickle=False)
        found = RoundPredictions(labels=list(labels), table=table)
        if len(_CACHE) >= 8:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = found
        return found
