"""The promoted round's predictions in a search: which ids its prediction filters keep, read
from the memory-mapped predictions file rather than from every SQL match, and each match's
predicted class and confidence for the NumPy filters and sorts of :mod:`labeling.data.search`.
"""

from __future__ import annotations

import numpy as np

from labeling.annotation.leases import promoted_round
from labeling.context import Context
from labeling.data.search_filters import SearchQuery
from labeling.rounds import predictions
from labeling.store import db


def filters_predictions(query: SearchQuery) -> bool:
    """Whether ``query`` keeps items by their prediction (answered by :func:`chosen_ids`)."""
    return (
        query.predicted is not None
        or query.min_confidence is not None
        or query.max_confidence is not None
    )


def needs_predictions(query: SearchQuery) -> bool:
    """Whether ``query`` compares or sorts every match by its prediction (in NumPy)."""
    return query.disagreement == "model" or query.sort in ("confidence", "uncertainty")


def promoted(ctx: Context) -> predictions.RoundPredictions | None:
    """The promoted round's predictions file, or None before a round is promoted."""
    with db.read_session(ctx.engine) as session:
        round_id = promoted_round(session)
    return None if round_id is None else predictions.load(ctx, round_id)


def predicted_classes(
    found: predictions.RoundPredictions | None, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class index (-1: none) and confidence (NaN: none) of each id, and the class names."""
    codes = np.full(len(ids), -1, dtype=np.int64)
    confidence = np.full(len(ids), np.nan, dtype=np.float64)
    if found is None or not len(found.table) or not len(ids):
        return codes, confidence, [] if found is None else found.labels
    known = found.table["item_id"]
    at = np.searchsorted(known, ids).clip(0, len(known) - 1)
    hit = known[at] == ids
    codes[hit] = found.table["label"][at[hit]]
    confidence[hit] = found.table["confidence"][at[hit]]
    confidence[codes < 0] = np.nan
    return codes, confidence, found.labels


def kept_rows(found: predictions.RoundPredictions, query: SearchQuery) -> np.ndarray:
    """Which records of the predictions file pass ``query``'s prediction filters (a mask)."""
    codes = np.asarray(found.table["label"])
    keep = codes >= 0
    if query.predicted is not None:
        keep &= np.isin(codes, found.codes_of(query.predicted))
    # As :func:`predicted_classes` compares them: the file's float32, widened.
    confidence = np.asarray(found.table["confidence"], dtype=np.float64)
    if query.min_confidence is not None:
        keep &= confidence >= query.min_confidence
    if query.max_confidence is not None:
        keep &= confidence <= query.max_confidence
    return keep


def chosen_ids(ctx: Context, query: SearchQuery) -> np.ndarray:
    """The ids whose promoted prediction passes ``query``'s prediction filters, ascending (none
    without a promoted round): read from the predictions file, not from every SQL match."""
    found = promoted(ctx)
    if found is None or not len(found.table):
        return np.zeros(0, dtype=np.int64)
    return np.asarray(found.table["item_id"][kept_rows(found, query)], dtype=np.int64)
