"""Stand-in for the lead's search (replaced by main's labeling.data.search at the merge).

Only what bulk labelling needs: :class:`SearchQuery` and :func:`matching_ids`, with the text as
plain lower-case substrings and the label and split filters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlmodel import col, func, select

from labeling.context import Context
from labeling.store import db
from labeling.store.models import REMOVED, Item


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    label: str | None = None
    unlabelled: bool = False
    annotator: str | None = None
    origin: str | None = None
    predicted: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    weak_label: str | None = None
    min_weak_confidence: float | None = None
    max_weak_confidence: float | None = None
    lf: str | None = None
    disagreement: str | None = None
    flagged: bool | None = None
    split: str | None = None
    batch: str | None = None
    sort: str = "relevance"
    native: bool = False

    def as_dict(self) -> dict[str, Any]:
        default = SearchQuery()
        return {k: v for k, v in asdict(self).items() if getattr(default, k) != v}


def query_from_options(labels: tuple[str, ...], **options: Any) -> SearchQuery:
    return SearchQuery(**{k: v for k, v in options.items() if v is not None})


def matching_ids(ctx: Context, query: SearchQuery) -> np.ndarray:
    statement = select(Item.id)
    for word in query.text.lower().split():
        statement = statement.where(func.lower(col(Item.text)).contains(word))
    if query.label is not None:
        statement = statement.where(Item.label == query.label)
    if query.unlabelled:
        statement = statement.where(col(Item.label).is_(None))
    if query.split is not None:
        statement = statement.where(Item.split == query.split)
    else:
        statement = statement.where(Item.split != REMOVED)
    with db.read_session(ctx.engine) as session:
        rows = session.exec(statement.order_by(col(Item.id))).all()
    return np.array(rows, dtype=np.int64)
