"""What a search asks for, and its SQL: :class:`SearchQuery` (the query text and the filters),
its checks, and the conditions each backend runs (:func:`text_part` for the words,
:func:`conditions` for the filters). :mod:`labeling.data.search` runs them.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    LargeBinary,
    any_,
    bindparam,
    case,
    cast,
    column,
    exists,
    false,
    func,
    literal_column,
    not_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from labeling.context import Context
from labeling.data import search_syntax
from labeling.errors import BadInput
from labeling.store import db, labelsets
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
from labeling.weak.votes import ABSENT_MARK, ABSENT_SHOWN

SORTS = ("relevance", "confidence", "uncertainty", "id")
DISAGREEMENTS = ("people", "model")
# ``--lf NAME=abstain``: the items the LF abstains on.
ABSTAIN = "abstain"
# ``--lf NAME=not:LABEL`` (or ``¬LABEL``, as votes are shown): the LF voted LABEL absent.
ABSENT_PREFIXES = ("not:", ABSENT_SHOWN)
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


def lf_vote_value(vote: str) -> str:
    """The stored ``lfvote.label`` an ``--lf NAME=VOTE`` selects (VOTE: a label, or
    ``not:LABEL`` / ``¬LABEL`` for an absent vote)."""
    for prefix in ABSENT_PREFIXES:
        if vote.startswith(prefix):
            return ABSENT_MARK + vote[len(prefix) :]
    return vote


def _check_lf_vote(vote: str, labels: tuple[str, ...], multilabel: bool | None) -> None:
    if vote == ABSTAIN:
        return
    value = lf_vote_value(vote)
    if value == vote:
        _check_label("--lf NAME=LABEL", vote, labels)
        return
    if multilabel is False:
        raise BadInput(
            f"option '--lf': {vote!r} selects votes of a label as absent, which only "
            "multi-label workspaces have; use NAME=LABEL or NAME=abstain"
        )
    _check_label("--lf NAME=not:LABEL", value[1:], labels)


def _check_range(option: str, value: float | None) -> None:
    if value is not None and not (0.0 <= value <= 1.0 and math.isfinite(value)):
        raise BadInput(f"option '{option}': expected a number from 0 to 1, found {value!r}")


def check(query: SearchQuery, labels: tuple[str, ...], *, multilabel: bool | None = None) -> None:
    """Refuse a query whose options do not fit the workspace, naming the option
    (``multilabel`` None: the task type is not known here, and the search checks again)."""
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
        _check_lf_vote(query.lf.split("=", 1)[1], labels, multilabel)
    if not query.native:
        search_syntax.parse(query.text)


# ---------------------------------------------------------------- the SQL part


@dataclass(frozen=True)
class TextPart:
    """How the text part narrows the items: a table to join (SQLite's hits, with their rank),
    conditions on the item, and the relevance of a match (see :func:`text_part`)."""

    join: Any = None
    conditions: tuple[Any, ...] = ()
    relevance: Any = None


def _fts5_hits(match: str, name: str) -> Any:
    hits = text(
        f"SELECT rowid AS id, rank AS rank FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :{name}"
    ).bindparams(bindparam(name, match))
    return hits.columns(column("id", Integer), column("rank", Float)).subquery(name)


def text_part(ctx: Context, query: SearchQuery) -> TextPart:
    """The text part of ``query`` for this backend (nothing for an empty query); its
    relevance is FTS5's rank (lower is better) or PostgreSQL's ts_rank (higher is better)."""
    if db.is_sqlite(ctx.engine):
        if query.native:
            if not query.text.strip():
                return TextPart()
            hits = _fts5_hits(query.text, "native")
            return TextPart(join=hits, relevance=hits.c.rank)
        parsed = search_syntax.parse(query.text)
        found = TextPart()
        if parsed.required:
            hits = _fts5_hits(search_syntax.fts5_match(parsed.required), "words")
            found = TextPart(join=hits, relevance=hits.c.rank)
        if parsed.excluded:
            unwanted = _fts5_hits(search_syntax.fts5_match([parsed.excluded]), "unwanted")
            found = replace(found, conditions=(_ITEM.c.id.not_in(select(unwanted.c.id)),))
        return found
    vector: Any = literal_column(PG_COLUMN)
    if query.native:
        if not query.text.strip():
            return TextPart()
        tsq = func.to_tsquery(PG_CONFIG, query.text)
        return TextPart(conditions=(vector.op("@@")(tsq),), relevance=func.ts_rank(vector, tsq))
    parsed = search_syntax.parse(query.text)
    conditions = []
    relevance = None
    if parsed.required:
        tsq = _pg_tsquery(parsed.required)
        conditions.append(vector.op("@@")(tsq))
        relevance = func.ts_rank(vector, tsq)
    if parsed.excluded:
        unwanted = _pg_tsquery([parsed.excluded])
        conditions.append(not_(vector.op("@@")(unwanted)))
    return TextPart(conditions=tuple(conditions), relevance=relevance)


# Words of letters and digits with spaces between: PostgreSQL's parser reads them as FTS5 does.
_PLAIN_WORDS = re.compile(r"[^\W_]+(?:\s+[^\W_]+)*")


def _pg_term(term: search_syntax.Term) -> Any:
    """One word or phrase as a tsquery. PostgreSQL's parser keeps a hyphenated word whole
    beside its parts, each at its own position (``the e-mail``: the:1 e-mail:2 e:3 mail:4), and
    reads ``covid-19`` as covid, -19: so a word or phrase also matches as PostgreSQL itself
    tokenises it (``phraseto_tsquery``), besides as the plain tokens FTS5 sees."""
    tokens = func.to_tsquery(PG_CONFIG, search_syntax.tsquery([[term]]))
    if term.prefix or _PLAIN_WORDS.fullmatch(term.raw):  # both read it alike
        return tokens
    return tokens.op("||")(func.phraseto_tsquery(PG_CONFIG, term.raw))


def _pg_tsquery(groups: list[list[search_syntax.Term]]) -> Any:
    """Every group, each group any of its terms (see :func:`search_syntax.fts5_match`)."""
    found = None
    for alternatives in groups:
        group = None
        for term in alternatives:
            part = _pg_term(term)
            group = part if group is None else group.op("||")(part)
        found = group if found is None else found.op("&&")(group)
    return found


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
        voted.append(votes.c.label == lf_vote_value(vote))
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


def conditions(ctx: Context, query: SearchQuery, *, split: Any = _ITEM.c.split) -> list[Any]:
    """The SQL conditions of every filter that SQL can answer (``split``: the item's split,
    or an expression of it that no index answers; see :func:`_statement`)."""
    item = _ITEM
    found: list[Any] = []
    if query.split is None:
        found.append(split.in_(SPLITS))
    else:
        found.append(split == query.split)
    if query.label is not None:
        if ctx.multilabel:  # the items whose set holds the label
            found.append(item.c.label.like(labelsets.contains_pattern(query.label), escape="\\"))
        else:
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


def among(ctx: Context, ids: np.ndarray, *, scan: bool = False) -> Any:
    """The item is one of ``ids`` (ascending), given as one parameter, not one per id.

    SQLite: a JSON array read by ``json_each``. PostgreSQL: a ``bigint[]`` whose ids are looked
    up through the id index; with ``scan`` (other conditions find the rows: the full-text
    index), a bit mask checked per row instead. Given an array, the planner looked each of
    200k ids up by index to find the 18k that held a common word (1.3 s; 0.2 s with the mask)
    and spent 170 ms estimating the array's selectivity.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if db.is_sqlite(ctx.engine):
        listed = "[" + ",".join(map(str, ids.tolist())) + "]"
        given = func.json_each(bindparam("among", listed)).table_valued("value")
        return _ITEM.c.id.in_(select(given.c.value))
    if not scan:
        listed = "{" + ",".join(map(str, ids.tolist())) + "}"
        return _ITEM.c.id == any_(cast(bindparam("among", listed), ARRAY(BigInteger)))
    bits = np.zeros(int(ids[-1]) + 1 if len(ids) else 0, dtype=bool)
    bits[ids] = True
    mask = np.packbits(bits, bitorder="little").tobytes()  # get_bit's order: bit 0 is 1
    held = func.get_bit(bindparam("among", mask, type_=LargeBinary), _ITEM.c.id) == 1
    return case((_ITEM.c.id < len(bits), held), else_=false())
