"""Find items: full-text search in the database's own index, with filters, sorts and pages.

:func:`search` answers the browser, ``labelloop search`` and ``Workspace.search``: one page of
matching items and the exact total, with the count of each label in the whole result.
:func:`matching_ids` gives every matching item (bulk labelling). The text part is
:mod:`labeling.data.search_syntax` compiled for SQLite FTS5 or PostgreSQL full-text search
(:mod:`labeling.store.search_index`); the filters are SQL on the item's own columns (its
label is ``Item.label``) and small subqueries. The promoted round's predictions live in its
memory-mapped predictions file, not in SQL: a filter or sort on them reads the matching ids
from SQL and finishes in NumPy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy import (
    Float,
    Integer,
    bindparam,
    column,
    exists,
    func,
    literal_column,
    not_,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from labeling.annotation.leases import promoted_round
from labeling.context import Context
from labeling.data import search_syntax
from labeling.errors import BadInput
from labeling.rounds import predictions
from labeling.store import db
from labeling.store.models import (
    HUMAN,
    ORIGINS,
    REMOVED,
    SPLITS,
    Annotation,
    Annotator,
    Flag,
    ImportBatch,
    Item,
    LabelingFunction,
    LFVote,
    WeakLabel,
)
from labeling.store.search_index import FTS_TABLE, PG_COLUMN, PG_CONFIG

SORTS = ("relevance", "confidence", "uncertainty", "id")
DISAGREEMENTS = ("people", "model")
# ``--lf NAME=abstain``: the items the LF abstains on.
ABSTAIN = "abstain"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1_000

_ITEM = Item.__table__  # type: ignore[attr-defined]
_ANSWER = Annotation.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SearchQuery:
    """What to find: the query text (see :mod:`labeling.data.search_syntax`) and filters.

    Every filter narrows the result; None leaves it out. ``split`` None means pool and gold
    (removed items only with ``split="removed"``).
    """

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
    # An LF's name: items it voted on; "NAME=LABEL": it voted LABEL; "NAME=abstain": it did not.
    lf: str | None = None
    disagreement: str | None = None
    flagged: bool | None = None
    split: str | None = None
    # An import batch: its number, or the name of the file it read.
    batch: str | None = None
    sort: str = "relevance"
    # Pass the text to the backend's own query syntax instead (see docs/data.md).
    native: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The query's non-default fields (what a bulk batch records as its selection)."""
        default = SearchQuery()
        return {k: v for k, v in asdict(self).items() if getattr(default, k) != v}


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


def query_from_options(labels: tuple[str, ...], **options: Any) -> SearchQuery:
    """A :class:`SearchQuery` from keyword options, checked; the error names the option."""
    unknown = set(options) - set(SearchQuery.__dataclass_fields__)
    if unknown:
        raise BadInput(f"unknown search option(s): {', '.join(sorted(unknown))}")
    query = SearchQuery(**{k: v for k, v in options.items() if v is not None})
    check(query, labels)
    return query


def _check_label(option: str, value: str | None, labels: tuple[str, ...]) -> None:
    if value is not None and value not in labels:
        raise BadInput(f"option '{option}': expected one of {', '.join(labels)}, found {value!r}")


def _check_range(option: str, value: float | None) -> None:
    if value is not None and not (0.0 <= value <= 1.0 and math.isfinite(value)):
        raise BadInput(f"option '{option}': expected a number from 0 to 1, found {value!r}")


def check(query: SearchQuery, labels: tuple[str, ...]) -> None:
    """Refuse a query whose options do not fit the workspace, naming the option."""
    _check_label("--label", query.label, labels)
    _check_label("--predicted", query.predicted, labels)
    _check_label("--weak-label", query.weak_label, labels)
    if query.label is not None and query.unlabelled:
        raise BadInput("options '--label' and '--unlabelled' exclude each other; give one")
    for option in ("min_confidence", "max_confidence", "min_weak_confidence"):
        _check_range("--" + option.replace("_", "-"), getattr(query, option))
    _check_range("--max-weak-confidence", query.max_weak_confidence)
    if query.origin is not None and query.origin not in ORIGINS:
        raise BadInput(
            f"option '--origin': expected one of {', '.join(ORIGINS)}, found {query.origin!r}"
        )
    if query.split is not None and query.split not in (*SPLITS, REMOVED):
        raise BadInput(
            f"option '--split': expected one of {', '.join((*SPLITS, REMOVED))}, "
            f"found {query.split!r}"
        )
    if query.sort not in SORTS:
        raise BadInput(f"option '--sort': expected one of {', '.join(SORTS)}, found {query.sort!r}")
    if query.disagreement is not None and query.disagreement not in DISAGREEMENTS:
        raise BadInput(
            f"option '--disagreement': expected one of {', '.join(DISAGREEMENTS)}, "
            f"found {query.disagreement!r}"
        )
    if query.lf is not None and "=" in query.lf:
        vote = query.lf.split("=", 1)[1]
        if vote != ABSTAIN:
            _check_label("--lf NAME=LABEL", vote, labels)
    if not query.native:
        search_syntax.parse(query.text)


# ---------------------------------------------------------------- the SQL part


@dataclass(frozen=True)
class _Text:
    """How the text part narrows the items: a table to join (SQLite's hits, with their rank),
    conditions on the item, and the relevance of a match (see :func:`_text_part`)."""

    join: Any = None
    conditions: tuple[Any, ...] = ()
    relevance: Any = None


def _fts5_hits(match: str, name: str) -> Any:
    hits = text(
        f"SELECT rowid AS id, rank AS rank FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :{name}"
    ).bindparams(bindparam(name, match))
    return hits.columns(column("id", Integer), column("rank", Float)).subquery(name)


def _text_part(ctx: Context, query: SearchQuery) -> _Text:
    """The text part of ``query`` for this backend (nothing for an empty query); its
    relevance is FTS5's rank (lower is better) or PostgreSQL's ts_rank (higher is better)."""
    if db.is_sqlite(ctx.engine):
        if query.native:
            if not query.text.strip():
                return _Text()
            hits = _fts5_hits(query.text, "native")
            return _Text(join=hits, relevance=hits.c.rank)
        parsed = search_syntax.parse(query.text)
        found = _Text()
        if parsed.required:
            hits = _fts5_hits(search_syntax.fts5_match(parsed.required), "words")
            found = _Text(join=hits, relevance=hits.c.rank)
        if parsed.excluded:
            unwanted = _fts5_hits(search_syntax.fts5_match([parsed.excluded]), "unwanted")
            found = replace(found, conditions=(_ITEM.c.id.not_in(select(unwanted.c.id)),))
        return found
    vector: Any = literal_column(PG_COLUMN)
    if query.native:
        if not query.text.strip():
            return _Text()
        tsq = func.to_tsquery(PG_CONFIG, query.text)
        return _Text(conditions=(vector.op("@@")(tsq),), relevance=func.ts_rank(vector, tsq))
    parsed = search_syntax.parse(query.text)
    conditions = []
    relevance = None
    if parsed.required:
        tsq = func.to_tsquery(PG_CONFIG, search_syntax.tsquery(parsed.required))
        conditions.append(vector.op("@@")(tsq))
        relevance = func.ts_rank(vector, tsq)
    if parsed.excluded:
        unwanted = func.to_tsquery(PG_CONFIG, search_syntax.tsquery([parsed.excluded]))
        conditions.append(not_(vector.op("@@")(unwanted)))
    return _Text(conditions=tuple(conditions), relevance=relevance)


def _current_answer(*conditions: Any) -> Any:
    """EXISTS a current answer on the item meeting ``conditions``."""
    return exists().where(
        _ANSWER.c.item_id == _ITEM.c.id, _ANSWER.c.superseded_by.is_(None), *conditions
    )


def _people_disagree() -> Any:
    labelled = (
        select(_ANSWER.c.item_id)
        .where(
            _ANSWER.c.superseded_by.is_(None),
            _ANSWER.c.label.is_not(None),
            _ANSWER.c.origin == HUMAN,
        )
        .group_by(_ANSWER.c.item_id)
        .having(func.count(func.distinct(_ANSWER.c.label)) > 1)
    )
    return _ITEM.c.id.in_(labelled)


def _lf_condition(ctx: Context, spec: str) -> Any:
    name, _, vote = spec.partition("=")
    with db.read_session(ctx.engine) as session:
        lfs = LabelingFunction.__table__  # type: ignore[attr-defined]
        lf_id = session.connection().execute(select(lfs.c.id).where(lfs.c.name == name)).scalar()
    if lf_id is None:
        raise BadInput(f"option '--lf': no labelling function is named {name!r}")
    votes = LFVote.__table__  # type: ignore[attr-defined]
    voted = [votes.c.lf_id == lf_id, votes.c.item_id == _ITEM.c.id]
    if vote == ABSTAIN:
        return not_(exists().where(*voted))
    if vote:
        voted.append(votes.c.label == vote)
    return exists().where(*voted)


def _annotator_id(ctx: Context, name: str) -> int:
    with db.read_session(ctx.engine) as session:
        people = Annotator.__table__  # type: ignore[attr-defined]
        found = (
            session.connection().execute(select(people.c.id).where(people.c.name == name)).scalar()
        )
    if found is None:
        raise BadInput(f"option '--annotator': no annotator is named {name!r}")
    return int(found)


def _batch_id(ctx: Context, batch: str) -> int:
    table = ImportBatch.__table__  # type: ignore[attr-defined]
    if batch.isdigit():
        statement = select(table.c.id).where(table.c.id == int(batch))
    else:
        statement = select(func.max(table.c.id)).where(table.c.source_name == batch)
    with db.read_session(ctx.engine) as session:
        found = session.connection().execute(statement).scalar()
    if found is None:
        raise BadInput(
            f"option '--batch': no import batch is numbered or named {batch!r} "
            "(see `labelloop items batches`)"
        )
    return int(found)


def _conditions(ctx: Context, query: SearchQuery) -> list[Any]:
    """The SQL conditions of every filter that SQL can answer."""
    item = _ITEM
    found: list[Any] = []
    if query.split is None:
        found.append(item.c.split.in_(SPLITS))
    else:
        found.append(item.c.split == query.split)
    if query.label is not None:
        found.append(item.c.label == query.label)
    if query.unlabelled:
        found.append(item.c.label.is_(None))
    if query.annotator is not None:
        found.append(_current_answer(_ANSWER.c.annotator_id == _annotator_id(ctx, query.annotator)))
    if query.origin is not None:
        found.append(
            _current_answer(_ANSWER.c.origin == query.origin, _ANSWER.c.label.is_not(None))
        )
    weak = WeakLabel.__table__  # type: ignore[attr-defined]
    weak_filters = [
        weak.c.label == query.weak_label if query.weak_label is not None else None,
        weak.c.confidence >= query.min_weak_confidence
        if query.min_weak_confidence is not None
        else None,
        weak.c.confidence <= query.max_weak_confidence
        if query.max_weak_confidence is not None
        else None,
    ]
    if any(f is not None for f in weak_filters):
        found.append(
            exists().where(weak.c.item_id == item.c.id, *[f for f in weak_filters if f is not None])
        )
    if query.lf is not None:
        found.append(_lf_condition(ctx, query.lf))
    if query.disagreement == "people":
        found.append(_people_disagree())
    if query.disagreement == "model":
        found.append(item.c.label.is_not(None))
    if query.flagged is not None:
        flags = Flag.__table__  # type: ignore[attr-defined]
        open_flag = exists().where(flags.c.item_id == item.c.id, flags.c.resolved_at.is_(None))
        found.append(open_flag if query.flagged else not_(open_flag))
    if query.batch is not None:
        found.append(item.c.batch_id == _batch_id(ctx, query.batch))
    return found


# ---------------------------------------------------------------- running a search


def _needs_predictions(query: SearchQuery) -> bool:
    return (
        query.predicted is not None
        or query.min_confidence is not None
        or query.max_confidence is not None
        or query.disagreement == "model"
        or query.sort in ("confidence", "uncertainty")
    )


def _promoted(ctx: Context) -> predictions.RoundPredictions | None:
    with db.read_session(ctx.engine) as session:
        round_id = promoted_round(session)
    return None if round_id is None else predictions.load(ctx, round_id)


def _predicted(
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


def _statement(
    ctx: Context, query: SearchQuery, *columns: Any, part: _Text | None = None
) -> tuple[Any, _Text]:
    """SELECT ``columns`` of the items ``query`` finds, but for the NumPy filters; with the
    text ``part`` already built (to select its relevance), that one."""
    check(query, ctx.labels)
    part = part if part is not None else _text_part(ctx, query)
    source = _ITEM if part.join is None else _ITEM.join(part.join, part.join.c.id == _ITEM.c.id)
    conditions = [*_conditions(ctx, query), *part.conditions]
    return select(*columns).select_from(source).where(*conditions), part


def _run(ctx: Context, statement: Any, query: SearchQuery) -> list[Any]:
    try:
        with db.read_session(ctx.engine) as session:
            return list(session.connection().execute(statement).all())
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
    part = _text_part(ctx, query)
    relevance_column = literal_column("0") if part.relevance is None else part.relevance
    statement, _ = _statement(ctx, query, _ITEM.c.id, _ITEM.c.label, relevance_column, part=part)
    rows = _run(ctx, statement.order_by(_ITEM.c.id), query)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    labels = [r[1] for r in rows]
    relevance = np.fromiter((float(r[2] or 0.0) for r in rows), dtype=np.float64, count=len(rows))
    if db.is_sqlite(ctx.engine):
        relevance = -relevance  # FTS5's rank (bm25) is better when lower
    codes, confidence, classes = _predicted(_promoted(ctx), ids)
    keep = np.ones(len(ids), dtype=bool)
    if query.predicted is not None:
        wanted = classes.index(query.predicted) if query.predicted in classes else -2
        keep &= codes == wanted
    if query.min_confidence is not None:
        keep &= confidence >= query.min_confidence
    if query.max_confidence is not None:
        keep &= confidence <= query.max_confidence
    if query.disagreement == "model":
        position = {name: code for code, name in enumerate(classes)}
        given = np.array([position.get(label or "", -1) for label in labels], dtype=np.int64)
        keep &= (codes >= 0) & (given != codes)
    chosen = np.flatnonzero(keep)
    return _Matches(
        ids=ids[chosen],
        labels=[labels[i] for i in chosen.tolist()],
        relevance=relevance[chosen],
        codes=codes[chosen],
        confidence=confidence[chosen],
        classes=classes,
    )


def matching_ids(ctx: Context, query: SearchQuery) -> np.ndarray:
    """Every item ``query`` finds (store ids, ascending): what a bulk action labels."""
    if not _needs_predictions(query):
        statement, _ = _statement(ctx, query, _ITEM.c.id)
        rows = _run(ctx, statement.order_by(_ITEM.c.id), query)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return _all_matches(ctx, query).ids


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
    if _needs_predictions(query):
        matches = _all_matches(ctx, query)
        counts: dict[str, int] = {}
        for label in matches.labels:
            counts[label or ""] = counts.get(label or "", 0) + 1
        page = _order(matches, query.sort)[offset : offset + limit]
        ids = matches.ids[page].tolist()
    else:
        grouped, part = _statement(ctx, query, _ITEM.c.label, func.count())
        rows = _run(ctx, grouped.group_by(_ITEM.c.label), query)
        counts = {label or "": int(n) for label, n in rows}
        ordered, _ = _statement(ctx, query, _ITEM.c.id)
        if query.sort == "relevance" and part.relevance is not None:
            ordered = ordered.order_by(_by_relevance(ctx, part.relevance), _ITEM.c.id)
        else:
            ordered = ordered.order_by(_ITEM.c.id)
        ids = [r[0] for r in _run(ctx, ordered.limit(limit).offset(offset), query)]
    return SearchResult(
        total=sum(counts.values()),
        items=page_items(ctx, ids),
        counts=dict(sorted(counts.items())),
        offset=offset,
        limit=limit,
    )


def _by_relevance(ctx: Context, rank: Any) -> Any:
    return rank.asc() if db.is_sqlite(ctx.engine) else rank.desc()


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
    found = _promoted(ctx)
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
