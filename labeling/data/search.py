"""Find items: full-text search in the database's own index, with filters, sorts and pages.

:func:`search` answers the browser, ``labelloop search`` and ``Workspace.search``: one page of
matching items and the exact total, with the count of each label in the whole result.
:func:`matching_ids` gives every matching item (bulk labelling). The text part is
:mod:`labeling.data.search_syntax` compiled for SQLite FTS5 or PostgreSQL full-text search
(:mod:`labeling.store.search_index`); the filters are SQL on the item's own columns (its
label is ``Item.label``) and small subqueries. The promoted round's predictions live in its
memory-mapped predictions file, not in SQL (:mod:`labeling.data.search_predictions`): a
filter on them picks the ids it keeps from the file first and hands them to SQL as one
parameter; a sort on them (or the model-disagreement filter) reads the matching ids from SQL
and finishes in NumPy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import (
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import Alias
from sqlalchemy.sql.util import ClauseAdapter

from labeling.context import Context
from labeling.data.search_filters import (
    ABSTAIN,
    DEFAULT_LIMIT,
    DISAGREEMENTS,
    MAX_LIMIT,
    SORTS,
    SearchQuery,
    TextPart,
    among,
    check,
    conditions,
    query_from_options,
    text_part,
)
from labeling.data.search_predictions import (
    chosen_ids,
    filters_predictions,
    kept_rows,
    needs_predictions,
    predicted_classes,
    promoted,
)
from labeling.errors import BadInput
from labeling.store import db
from labeling.store.models import (
    ITEM_LOOKUP_INDEX,
    Item,
    WeakLabel,
)

__all__ = [
    "ABSTAIN",
    "DEFAULT_LIMIT",
    "DISAGREEMENTS",
    "MAX_LIMIT",
    "SORTS",
    "SearchQuery",
    "SearchResult",
    "check",
    "matching_ids",
    "page_items",
    "query_from_options",
    "search",
]

_ITEM = Item.__table__  # type: ignore[attr-defined]


@dataclass
class SearchResult:
    total: int
    items: list[dict[str, Any]]
    # Items of the whole result by current label ("" for none).
    counts: dict[str, int] = field(default_factory=dict)
    offset: int = 0
    limit: int = DEFAULT_LIMIT

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- running a search


# Up to this many chosen ids go to SQL as they are (see _among_hits).
FEW_CHOSEN = 20_000


class _ByLookupIndex(Alias):
    """The item table, named ``item``, that SQLite reads through the (id, split, label) index
    (``INDEXED BY``): its planner prefers the table's own rowid for a lookup by id."""

    inherit_cache = False


@compiles(_ByLookupIndex)
def _compile_by_lookup_index(element: _ByLookupIndex, compiler: Any, **kw: Any) -> str:
    rendered = compiler.visit_alias(element, **kw)
    if kw.get("asfrom") and compiler.dialect.name == "sqlite":
        rendered += f" INDEXED BY {ITEM_LOOKUP_INDEX}"
    return str(rendered)


def _among_hits(ctx: Context, query: SearchQuery, part: TextPart, chosen: np.ndarray) -> np.ndarray:
    """The ids of ``chosen`` among SQLite's full-text hits: FTS5 lists 91k hits as one string
    in a few ms, and the JSON array SQL reads shrinks with them (a model's class of 200k
    items, intersected with a common word's hits, is 18k: 60 ms less of CPU)."""
    if len(chosen) <= FEW_CHOSEN:
        return chosen
    statement = select(func.group_concat(part.join.c.id))
    listed = _run(ctx, statement, query)[0][0]
    hits = np.fromstring(listed or "", dtype=np.int64, sep=",")
    return chosen[np.isin(chosen, hits, assume_unique=True)]


def _statement(
    ctx: Context,
    query: SearchQuery,
    *columns: Any,
    part: TextPart | None = None,
    chosen: np.ndarray | None = None,
    scan: bool | None = None,
) -> tuple[Any, TextPart]:
    """The SELECT of ``columns`` over the items ``query`` finds; ``part``: its text part, when
    ``columns`` use that part's relevance (made again, it would be another subquery);
    ``chosen``: the ids its prediction filters keep (:func:`chosen_ids`), checked per row the
    full-text index finds (``scan``; by default when there are words) or looked up. Callers
    order and group by the statement's ``selected_columns``: on SQLite the item table may be
    replaced."""
    check(query, ctx.labels, multilabel=ctx.multilabel)
    part = text_part(ctx, query) if part is None else part
    source = _ITEM if part.join is None else _ITEM.join(part.join, part.join.c.id == _ITEM.c.id)
    split = _ITEM.c.split
    if part.join is not None:
        # SQLite's hits come first, each finding its item by id. Given an indexed condition
        # on the split, the planner walks the split's index instead and runs the full-text
        # query once per item (a count took 2.7 s on 20k items): ``split || ''`` has no index.
        split = split.concat("")
    where = [*conditions(ctx, query, split=split), *part.conditions]
    if chosen is not None and db.is_sqlite(ctx.engine) and part.join is not None:
        chosen = _among_hits(ctx, query, part, chosen)
    if chosen is not None:
        if scan is None:
            scan = bool(part.conditions) or part.join is not None
        where.append(among(ctx, chosen, scan=scan))
    statement = select(*columns).select_from(source).where(*where)
    if db.is_sqlite(ctx.engine) and (part.join is not None or chosen is not None):
        # Each hit or chosen id looks its item up by id: in the narrow index, not the table
        # (1M items, a word in 91k: the count's lookups took 93 ms of CPU, then 42 ms).
        indexed = _ByLookupIndex._construct(_ITEM, name=_ITEM.name)
        statement = ClauseAdapter(indexed).traverse(statement)
    return statement, part


def _run(ctx: Context, statement: Any, query: SearchQuery) -> list[Any]:
    """The rows of ``statement`` as the driver's tuples: SQLAlchemy's rows cost half of a
    1M-row fetch, and these columns (ids, labels, counts, ranks) need no conversion."""
    try:
        with db.read_session(ctx.engine) as session:
            return list(session.connection().execute(statement).cursor.fetchall())
    except DBAPIError as exc:
        if query.native:  # the backend's own syntax: its own error, named
            raise BadInput(f"query {query.text!r} is not valid here: {exc.orig}") from exc
        raise


@dataclass
class _Matches:
    """Every match, in id order, with what the sorts and the NumPy filters need."""

    ids: np.ndarray
    labels: list[str | None]
    relevance: np.ndarray  # bigger is better; 0 without words to rank by
    codes: np.ndarray
    confidence: np.ndarray
    classes: list[str]


def _all_matches(ctx: Context, query: SearchQuery) -> _Matches:
    part = text_part(ctx, query)
    chosen = chosen_ids(ctx, query) if filters_predictions(query) else None
    # Ranking every match costs (FTS5's bm25, ts_rank): only when the sort needs it.
    ranked = query.sort == "relevance" and part.relevance is not None
    relevance_column = part.relevance if ranked else literal_column("0")
    statement, _ = _statement(
        ctx, query, _ITEM.c.id, _ITEM.c.label, relevance_column, part=part, chosen=chosen
    )
    # SQLite: in the hits' own order (ascending ids), not sorted again by the item's id.
    by_id = statement.selected_columns[0] if part.join is None else part.join.c.id
    rows = _run(ctx, statement.order_by(by_id), query)
    id_column, label_column, rank_column = zip(*rows, strict=True) if rows else ((), (), ())
    ids = np.array(id_column, dtype=np.int64)
    labels = list(label_column)
    relevance = np.nan_to_num(np.array(rank_column, dtype=np.float64))  # None -> NaN -> 0
    if db.is_sqlite(ctx.engine):
        relevance = -relevance  # FTS5's rank (bm25) is better when lower
    codes, confidence, classes = predicted_classes(promoted(ctx), ids)
    keep = np.ones(len(ids), dtype=bool)
    if query.disagreement == "model":
        position = {name: code for code, name in enumerate(classes)}
        given = np.array([position.get(label or "", -1) for label in labels], dtype=np.int64)
        keep &= (codes >= 0) & (given != codes)
    chosen_rows = np.flatnonzero(keep)
    return _Matches(
        ids=ids[chosen_rows],
        labels=[labels[i] for i in chosen_rows.tolist()],
        relevance=relevance[chosen_rows],
        codes=codes[chosen_rows],
        confidence=confidence[chosen_rows],
        classes=classes,
    )


def matching_ids(ctx: Context, query: SearchQuery) -> np.ndarray:
    """Every item ``query`` finds (store ids, ascending): what a bulk action labels."""
    if needs_predictions(query):
        return _all_matches(ctx, query).ids
    chosen = chosen_ids(ctx, query) if filters_predictions(query) else None
    statement, part = _statement(ctx, query, _ITEM.c.id, chosen=chosen)
    by_id = statement.selected_columns[0] if part.join is None else part.join.c.id
    rows = _run(ctx, statement.order_by(by_id), query)
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def _order(matches: _Matches, sort: str) -> np.ndarray:
    """Positions of ``matches`` in the order of ``sort`` (ties by id)."""
    missing = np.isnan(matches.confidence)
    if sort == "confidence":
        key = np.where(missing, np.inf, -matches.confidence)
    elif sort == "uncertainty":
        key = np.where(missing, np.inf, matches.confidence)
    elif sort == "relevance":
        key = -matches.relevance
    else:
        key = np.zeros(len(matches.ids))
    return np.lexsort((matches.ids, key))


def search(
    ctx: Context, query: SearchQuery, *, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> SearchResult:
    """One page of the items ``query`` finds, the exact total and the count of each label."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"option '--limit': expected 1 to {MAX_LIMIT}, found {limit}")
    if offset < 0:
        raise BadInput(f"option '--offset': expected 0 or more, found {offset}")
    counts: dict[str, int] = {}
    walked = None
    if query.sort in ("confidence", "uncertainty") and query.disagreement != "model":
        walked = _by_confidence(ctx, query, limit=limit, offset=offset)
    if walked is not None:
        counts, ids = walked
    elif needs_predictions(query):
        matches = _all_matches(ctx, query)
        for label, n in Counter(matches.labels).items():
            counts[label or ""] = counts.get(label or "", 0) + n
        page = _order(matches, query.sort)[offset : offset + limit]
        ids = matches.ids[page].tolist()
    else:
        part = text_part(ctx, query)
        chosen = chosen_ids(ctx, query) if filters_predictions(query) else None
        if query.sort == "relevance" and part.relevance is not None:
            counts, ids = _ranked(ctx, query, part, chosen, limit=limit, offset=offset)
        else:
            counts, ids = _by_id(ctx, query, part, chosen, limit=limit, offset=offset)
    return SearchResult(
        total=sum(counts.values()),
        items=page_items(ctx, ids),
        counts=dict(sorted(counts.items())),
        offset=offset,
        limit=limit,
    )


# How many ids in confidence order a confidence sort checks first (then 4x as many each time),
# and up to how many matches it reads them all instead (as few are cheap to read).
FIRST_CHUNK = 1024
READ_ALL_UP_TO = 10_000


def _first_in_order(key: np.ndarray, ids: np.ndarray, size: int) -> np.ndarray:
    """Positions of at least ``size`` of the smallest ``(key, id)`` pairs, in that order: a
    prefix of the whole order, found by a partition instead of a sort of every key."""
    if size >= len(key):
        return np.lexsort((ids, key))
    bound = np.partition(key, size - 1)[size - 1]
    head = np.flatnonzero(key <= bound)  # every tie of the last one: still a prefix
    return head[np.lexsort((ids[head], key[head]))]


def _by_confidence(
    ctx: Context, query: SearchQuery, *, limit: int, offset: int
) -> tuple[dict[str, int], list[int]] | None:
    """The count of each label (SQL) and one page by confidence or uncertainty, found by
    walking the predictions file in that order and asking SQL which of the next ids match;
    None when the page reaches matches that have no prediction (then every match is read).
    Reading every match of a common word took 225 ms of CPU on SQLite at 1M items."""
    found = promoted(ctx)
    if found is None or not len(found.table):
        return None
    part = text_part(ctx, query)
    kept = kept_rows(found, query)
    ids = np.asarray(found.table["item_id"][kept], dtype=np.int64)
    chosen = ids if filters_predictions(query) else None
    counts, _ = _by_id(ctx, query, part, chosen, limit=0, offset=0)
    total, wanted = sum(counts.values()), offset + limit
    confidence = np.asarray(found.table["confidence"][kept], dtype=np.float64)
    key = -confidence if query.sort == "confidence" else confidence
    # Enough ids, at the share of them that match, for the page twice over.
    size = max(FIRST_CHUNK, 2 * wanted * len(ids) // max(total, 1))
    if total <= READ_ALL_UP_TO or 2 * size > len(ids):
        return None
    page: list[int] = []
    checked = 0
    while checked < len(ids) and len(page) < wanted:
        order = _first_in_order(key, ids, size)
        batch = ids[order[checked:]]
        statement, _ = _statement(
            ctx, query, _ITEM.c.id, part=part, chosen=np.sort(batch), scan=False
        )
        matching = {row[0] for row in _run(ctx, statement, query)}
        page += [item_id for item_id in batch.tolist() if item_id in matching]
        checked, size = len(order), size * 4
    if len(page) < wanted and len(page) < total:
        return None  # the rest of the order: matches without a prediction, by id
    return counts, page[offset:wanted]


def _by_id(
    ctx: Context,
    query: SearchQuery,
    part: TextPart,
    chosen: np.ndarray | None,
    *,
    limit: int,
    offset: int,
) -> tuple[dict[str, int], list[int]]:
    """The count of each label and one page in id order (no page for ``limit`` 0)."""
    grouped, _ = _statement(ctx, query, _ITEM.c.label, func.count(), part=part, chosen=chosen)
    rows = _run(ctx, grouped.group_by(grouped.selected_columns[0]), query)
    counts = {label or "": int(n) for label, n in rows}
    if not limit:
        return counts, []
    ordered, _ = _statement(ctx, query, _ITEM.c.id, part=part, chosen=chosen)
    # SQLite: by the hits' own id, which FTS5 returns in order, so the page stops after
    # ``limit`` items; by the item's id it sorted every match first.
    by_id = ordered.selected_columns[0] if part.join is None else part.join.c.id
    page = _run(ctx, ordered.order_by(by_id).limit(limit).offset(offset), query)
    return counts, [r[0] for r in page]


def _ranked(
    ctx: Context,
    query: SearchQuery,
    part: TextPart,
    chosen: np.ndarray | None,
    *,
    limit: int,
    offset: int,
) -> tuple[dict[str, int], list[int]]:
    """The count of each label and one page by relevance, in one statement over one pass of
    the matches (a materialized CTE): a count and a ranked page each found, joined and
    ranked every match (1M items, a word in 91k: PostgreSQL read the heap twice)."""
    statement, _ = _statement(
        ctx,
        query,
        _ITEM.c.id,
        _ITEM.c.label,
        part.relevance.label("relevance"),
        part=part,
        chosen=chosen,
    )
    matches = statement.cte("matches").prefix_with("MATERIALIZED")
    sqlite = db.is_sqlite(ctx.engine)
    best = matches.c.relevance.asc() if sqlite else matches.c.relevance.desc()
    top = (
        select(matches.c.id, matches.c.relevance)
        .order_by(best, matches.c.id)
        .limit(limit)
        .offset(offset)
        .subquery("top")
    )
    counts_part = select(
        literal_column("0"), matches.c.label, func.count(), null(), null()
    ).group_by(matches.c.label)
    page_part = select(literal_column("1"), null(), null(), top.c.relevance, top.c.id)
    counts: dict[str, int] = {}
    page: list[tuple[float, int]] = []
    for kind, label, n, relevance, item_id in _run(ctx, union_all(counts_part, page_part), query):
        if kind == 0:
            counts[label or ""] = int(n)
        else:  # a UNION keeps no order: sort the page again, as the statement did
            page.append(((1.0 if sqlite else -1.0) * float(relevance), int(item_id)))
    return counts, [item_id for _, item_id in sorted(page)]


def page_items(ctx: Context, ids: list[int]) -> list[dict[str, Any]]:
    """The rows a result shows for ``ids`` (in that order): external id, text, label, split,
    the promoted round's prediction and confidence, the weak label and its confidence."""
    if not ids:
        return []
    weak = WeakLabel.__table__  # type: ignore[attr-defined]
    statement = (
        select(
            _ITEM.c.id,
            _ITEM.c.external_id,
            _ITEM.c.text,
            _ITEM.c.label,
            _ITEM.c.split,
            weak.c.label,
            weak.c.confidence,
        )
        .select_from(_ITEM.outerjoin(weak, weak.c.item_id == _ITEM.c.id))
        .where(_ITEM.c.id.in_(ids))
    )
    with db.read_session(ctx.engine) as session:
        rows = {row[0]: row for row in session.connection().execute(statement).all()}
    found = promoted(ctx)
    guesses = found.lookup(np.asarray(ids, dtype=np.int64)) if found is not None else {}
    items = []
    for item_id in ids:
        row = rows[item_id]
        predicted, confidence = guesses.get(item_id, (None, None))
        items.append(
            {
                "id": row[1],
                "text": row[2],
                "label": row[3],
                "predicted": predicted,
                "confidence": confidence,
                "split": row[4],
                "weak_label": row[5],
                "weak_confidence": None if row[6] is None else round(float(row[6]), 6),
            }
        )
    return items
