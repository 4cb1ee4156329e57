"""Audited bulk labelling: one label for many items at once, in one batch that can be undone.

A batch labels the pool items of a selection (a search, or a list of items such as a
similar-items result) that have no label from a person, an import or a decision: people's
answers beat a bulk label, so those items are left as they are and counted as skipped. Gold and
removed items are never bulk-labelled. An item whose label came from an earlier batch gets the
new one: the new bulk answer supersedes the old, and undoing the new batch brings the old one
back. In a multi-label workspace a batch adds a label to each item's set, removes one or sets
the whole set instead (:mod:`labeling.annotation.bulk_sets`); the items it would not change are
left out, of the batch and of its audit sample.

Each bulk answer is an annotation of origin ``bulk`` by the person who applied the batch, with
the batch id; it counts one label in ``Item.n_labels`` (so the item leaves the queue once it
has ``overlap`` labels) and sets ``Item.label`` through :func:`labeling.store.answers.
refresh_labels`. A batch is written in chunks of short transactions, so annotators' claims go
on meanwhile; if it fails half-way, what it wrote is removed again. Undo deletes the batch's
answers (they are the bulk action's, not people's history) and keeps the record. Those writes
are :mod:`labeling.annotation.bulk_writes`; this module chooses the items and judges the audit.

Before applying, the person checks a random audit sample of the set; :func:`precision_interval`
turns their answers into a 95% interval for the set's precision, and :func:`check_audit`
refuses a batch whose lower bound is below the threshold unless the person overrides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import ARRAY, BigInteger, Text, any_, bindparam, func
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from labeling.annotation.bulk_sets import SetAction
from labeling.context import Context
from labeling.errors import BadInput
from labeling.store import db
from labeling.store.answers import current
from labeling.store.models import (
    BULK,
    Annotation,
    Annotator,
    BulkBatch,
    Item,
)

T = TypeVar("T")
# The audit: sample size, and the lowest acceptable lower bound of the precision interval.
AUDIT_SAMPLE = 20
MIN_PRECISION = 0.8
# Two-sided 95% normal quantile (Wilson score interval).
_Z95 = 1.959963984540054
STATUSES = ("applying", "applied", "undone")
# What the command line records as the audit of a batch applied without one.
UNAUDITED_CLI = "unaudited (command line)"
# Who undid a batch from the command line without ``--as``.
CLI_PERSON = "(command line)"


@dataclass(frozen=True)
class Selection:
    """The items a bulk action is about, as store ids, and how they were chosen (JSON)."""

    item_ids: list[int]
    described: dict[str, Any]


@dataclass(frozen=True)
class Sorted:
    """A selection's items split by what a bulk label would do to them."""

    targets: list[int]  # pool items without a label from people: they get the bulk label
    labelled: list[int]  # labelled by a person, an import or a decision: left as they are
    not_pool: list[int]  # gold or removed: never bulk-labelled
    # Set actions (labeling.annotation.bulk_sets) only: the items whose set the action would
    # not change (left out of ``targets``), and the stored set each target gets.
    unchanged: list[int] = field(default_factory=list)
    values: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchSummary:
    """One bulk batch as the batch list shows it."""

    batch: str
    by: str
    label: str
    count: int
    audit: str  # in words: "18 of 20 correct (precision 0.70-0.97)", or why there was none
    override: bool
    status: str
    created_at: Any
    undone_at: Any
    undone_by: str | None
    selection: dict[str, Any]


def precision_interval(
    correct: int, checked: int, population: int | None = None
) -> tuple[float, float]:
    """The Wilson score 95% interval for a set's precision, from an audit sample.

    ``correct`` of ``checked`` sampled items had the right label. Wilson's interval stays
    inside [0, 1] and is honest at small samples and at 0 or ``checked`` correct, where the
    normal approximation collapses to a point. ``population``: how many items the sample was
    drawn from (without replacement). A sample of the whole set gives its precision exactly;
    a sample of a good part of it counts for more than ``checked`` draws from an endless set:
    Wilson's interval is taken at the effective size ``checked * (N - 1) / (N - checked)``
    (the finite population correction). The API, the command line and the page use this one
    function.
    """
    if checked < 1 or not 0 <= correct <= checked:
        raise BadInput(
            f"audit: expected 0 <= correct <= checked and checked >= 1, found {correct} "
            f"correct of {checked} checked"
        )
    share = correct / checked
    if population is not None and checked >= population:
        return share, share
    n = checked if population is None else checked * (population - 1) / (population - checked)
    z2 = _Z95 * _Z95
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = (_Z95 / (1 + z2 / n)) * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def check_audit(
    audit: dict[str, Any] | None, *, n_items: int, min_precision: float, override: bool
) -> dict[str, Any]:
    """What the batch records about its audit; raise :class:`BadInput` when the audit (or its
    absence) does not allow the batch and the person did not override. ``n_items``: how many
    items the batch would label (what the audit sample was drawn from)."""
    if not 0.0 <= min_precision <= 1.0:
        raise BadInput(f"min_precision: expected a number from 0 to 1, found {min_precision}")
    record: dict[str, Any] = dict(audit or {})
    if "checked" not in record:
        if not override:
            raise BadInput(
                f"bulk labelling {n_items:,} items needs an audit: check a random sample "
                "of them first (bulk_audit_sample) and pass audit={'checked': n, 'correct': k}, "
                "or confirm without one with override=True"
            )
        record.setdefault("note", "no audit (override)")
        return record
    try:
        checked, correct = int(record["checked"]), int(record.get("correct", -1))
    except (TypeError, ValueError) as exc:
        raise BadInput(f"audit: expected whole numbers checked and correct, found {audit}") from exc
    low, high = precision_interval(correct, checked, n_items)
    record.update(
        checked=checked,
        correct=correct,
        precision_low=round(low, 4),
        precision_high=round(high, 4),
        min_precision=min_precision,
    )
    if low < min_precision and not override:
        raise BadInput(
            f"the audit found {correct} of {checked} correct: the set's precision is "
            f"{_precision_words(low, high)} below the threshold {min_precision:.2f}; nothing "
            "was labelled. Narrow the search, check a larger sample (it narrows the interval), "
            "or confirm anyway with override"
        )
    return record


def _precision_words(low: float, high: float) -> str:
    if low == high:
        return f"{low:.2f} (every item was checked), which is"
    return f"{low:.2f}-{high:.2f} (95% interval), whose lower bound is"


def audit_words(audit: dict[str, Any], override: bool) -> str:
    """A batch's audit in a few words, for the batch list."""
    if "checked" in audit:
        low, high = audit["precision_low"], audit["precision_high"]
        share = f"precision {low:.2f}-{high:.2f}"
        if low == high:
            share = f"every item; precision {low:.2f}"
        words = f"{audit['correct']} of {audit['checked']} correct ({share})"
        return words + (", below the threshold: overridden" if override and
                        audit["precision_low"] < audit["min_precision"] else "")  # fmt: skip
    return str(audit.get("note") or "no audit")


def _chunks(ids: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def among(session: Session, column: Any, ids: list[int]) -> Any:
    """``column IN ids``. On PostgreSQL one array parameter (``= ANY``): a list of 10,000
    parameters cost more to send and plan than the statement took to run."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(BigInteger)))
    # SQLite: the ids as one JSON text, so that the statement's text is the same for any
    # number of ids (prepared once, cached by the driver); a list is rendered as one parameter
    # per id, and rendering them took more of a bulk chunk's time than running it.
    return column.in_(core_select(listed_ids(session, ids).c.value))


def listed_ids(session: Session, ids: list[int]) -> Any:
    """``ids`` as rows of one column, ``value``, passed as one parameter: PostgreSQL's
    ``unnest`` of an array, SQLite's ``json_each`` of a JSON text."""
    if session.get_bind().dialect.name == "postgresql":
        unnested = func.unnest(bindparam(None, ids, type_=ARRAY(BigInteger)))
        return unnested.table_valued("value").render_derived()
    return func.json_each(bindparam(None, json.dumps(ids), type_=Text)).table_valued("value")


def store_ids(session: Session, external_ids: list[str]) -> dict[str, int]:
    """External id -> store id, for those of ``external_ids`` that exist. On PostgreSQL one
    text array per 50,000 ids (5,000 parameters a statement took 25 us an id to send and
    plan)."""
    found: dict[str, int] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    for part in _chunks(external_ids, 50_000 if postgres else 5_000):
        where = (
            col(Item.external_id) == any_(bindparam(None, part, type_=ARRAY(Text)))
            if postgres
            else col(Item.external_id).in_(bindparam(None, part, expanding=True))
        )
        rows = session.exec(select(Item.external_id, Item.id).where(where)).all()
        found.update((external, int(item_id or 0)) for external, item_id in rows)
    return found


def sort_items(session: Session, item_ids: list[int], change: SetAction | None = None) -> Sorted:
    """Split ``item_ids`` (at most a few thousand) by what a bulk label (or the set action
    ``change``) would do to them, as the store is now."""
    # The split is filtered here, not in SQL: "split = 'pool'" could lead SQLite to walk the
    # pool's split index instead of probing the ids.
    in_pool = {
        int(item_id or 0)
        for item_id, split in session.exec(
            select(Item.id, Item.split).where(among(session, col(Item.id), item_ids))
        ).all()
        if split == "pool"
    }
    labelled = set(
        session.exec(
            select(Annotation.item_id)
            .where(
                among(session, col(Annotation.item_id), sorted(in_pool)),
                current(),
                col(Annotation.label).is_not(None),
                Annotation.origin != BULK,
            )
            .distinct()
        ).all()
    )
    targets = [i for i in item_ids if i in in_pool and i not in labelled]
    found = Sorted(
        targets=targets,
        labelled=[i for i in item_ids if i in labelled],
        not_pool=[i for i in item_ids if i not in in_pool],
    )
    return found if change is None else _changed_sets(session, found, change)


def _changed_sets(session: Session, found: Sorted, change: SetAction) -> Sorted:
    """``found`` with the targets whose set ``change`` leaves as it is moved to ``unchanged``,
    and each other target's new set. A target's current set is its current bulk answer's
    (it has no other labelled answer; at most one current bulk answer)."""
    sets: dict[int, str] = dict(
        session.exec(
            select(Annotation.item_id, Annotation.label).where(
                among(session, col(Annotation.item_id), found.targets),
                current(),
                Annotation.origin == BULK,
            )
        ).all()  # type: ignore[arg-type]
    ) if found.targets else {}  # fmt: skip
    # Few distinct sets among many items: the action runs once per distinct set.
    new_value = {old: change.new_value(old) for old in {sets.get(i) for i in found.targets}}
    values = {i: v for i in found.targets if (v := new_value[sets.get(i)]) is not None}
    return Sorted(
        targets=[i for i in found.targets if i in values],
        labelled=found.labelled,
        not_pool=found.not_pool,
        unchanged=[i for i in found.targets if i not in values],
        values=values,
    )


def count_targets(ctx: Context, selection: Selection, change: SetAction | None = None) -> Sorted:
    """What a batch over ``selection`` (with the set action ``change``, in a multi-label
    workspace) would label now (a dry run: nothing is written)."""
    parts = [Sorted([], [], [])]
    with db.read_session(ctx.engine) as session:
        for part in _chunks(selection.item_ids, 5_000):
            parts.append(sort_items(session, part, change))
    return Sorted(
        targets=[i for p in parts for i in p.targets],
        labelled=[i for p in parts for i in p.labelled],
        not_pool=[i for p in parts for i in p.not_pool],
        unchanged=[i for p in parts for i in p.unchanged],
        values={i: v for p in parts for i, v in p.values.items()},
    )


def list_batches(ctx: Context) -> list[BatchSummary]:
    """Every bulk batch, newest first."""
    with db.read_session(ctx.engine) as session:
        rows = session.exec(
            select(BulkBatch, Annotator.name)
            .join(Annotator, col(Annotator.id) == col(BulkBatch.annotator_id))
            .order_by(col(BulkBatch.created_at).desc(), col(BulkBatch.id).desc())
        ).all()
    found = []
    for record, name in rows:
        audit = json.loads(record.audit or "{}")
        found.append(
            BatchSummary(
                batch=record.id,
                by=name,
                label=record.label,
                count=record.count,
                audit=audit_words(audit, record.override),
                override=record.override,
                status=record.status,
                created_at=record.created_at,
                undone_at=record.undone_at,
                undone_by=record.undone_by,
                selection=json.loads(record.selection or "{}"),
            )
        )
    return found
