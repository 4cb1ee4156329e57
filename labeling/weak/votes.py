"""Reading the stored LF votes: the vote matrix the label model and cold start read, the LF
list with each LF's votes, and the votes state that says when weak labels are stale.

Votes are stored sparsely (abstains are not) with the LF version that cast them; only the
votes of an LF's current version count. ``schemainfo`` holds two facts: a token that changes
whenever the votes the label model reads change (an apply that stored votes, a rule edited,
deleted or switched, an LF file changed or removed), and the token the stored weak labels were
fitted at. Different tokens: the weak labels are stale.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select

from labeling.context import Context
from labeling.store import db
from labeling.store.answers import human_labels
from labeling.store.models import Item, LabelingFunction, LFVote, SchemaInfo, WeakLabel
from weak_supervision.lf import absent_code, split_vote

#: Rows per bulk insert when votes or weak labels are written.
CHUNK = 20_000

#: ``schemainfo`` key of the token that changes whenever the stored votes change.
VOTES_STATE = "lf_votes_state"
#: ``schemainfo`` key of the votes token the stored weak labels were fitted at.
WEAK_STATE = "weak_labels_state"

#: Starts ``lfvote.label`` for an absent vote (multi-label): ``"\x1fspam"`` says "not spam".
#: A label name cannot collide with it: labelloop.toml refuses control characters in labels
#: (labeling.config.validate_labels), so no name starts with this one. It keeps one row per
#: (LF, item) without a schema change.
ABSENT_MARK = "\x1f"
#: How an absent vote is shown to people (``lf list``'s polarity, an item's story).
ABSENT_SHOWN = "¬"


def stored_vote(code: int, labels: tuple[str, ...]) -> str:
    """``lfvote.label`` of a non-abstain ``L`` value: the label, or the mark and the label."""
    index, present = split_vote(code, len(labels))
    return labels[index] if present else ABSENT_MARK + labels[index]


def vote_codes(labels: tuple[str, ...]) -> dict[str, int]:
    """``lfvote.label`` -> ``L`` value, present and absent votes alike."""
    codes = {label: k for k, label in enumerate(labels)}
    return codes | {
        ABSENT_MARK + label: absent_code(k, len(labels)) for k, label in enumerate(labels)
    }


def shown_vote(value: str) -> str:
    """A stored vote as people read it: ``spam`` or ``¬spam``."""
    return ABSENT_SHOWN + value[1:] if value.startswith(ABSENT_MARK) else value


def put_fact(session: Any, key: str, value: str) -> None:
    """Insert or overwrite one ``schemainfo`` row (an upsert: safe when two writers race)."""
    statement = _dialect_insert(session)(SchemaInfo).values(key=key, value=value)
    session.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def _dialect_insert(session: Any) -> Any:
    """The INSERT of the session's database, the one with ON CONFLICT."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def fact(session: Any, key: str) -> str | None:
    """The value of one ``schemainfo`` row, or None."""
    return session.exec(select(SchemaInfo.value).where(SchemaInfo.key == key)).first()


def mark_lfs_changed(session: Any) -> None:
    """Record that the votes the label model reads changed (weak labels fitted before: stale)."""
    put_fact(session, VOTES_STATE, uuid.uuid4().hex)


def weak_labels_stale(ws: Context) -> bool:
    """Whether stored weak labels were fitted on votes that have changed since (fit again)."""
    with db.read_session(ws.engine) as session:
        if session.exec(select(WeakLabel.item_id).limit(1)).first() is None:
            return False
        return (fact(session, VOTES_STATE) or "") != (fact(session, WEAK_STATE) or "")


class LFRow(TypedDict):
    """One stored LF or rule, as ``labelloop lf list`` and the LFs page show it."""

    name: str
    kind: str  # code, keyword or regex
    label: str | None  # the label it votes for (a code LF without ``label=``: None)
    polarity: list[str]  # the labels its current votes name, in the toml's order
    active: bool
    version: str  # the first 12 characters of its content hash
    applied: bool  # its stored votes are from this version
    votes: int
    spec: dict[str, Any]  # a rule's keywords or pattern and options
    stats: dict[str, Any]  # the last apply: engine, seconds, faults, first fault


def list_lfs(ws: Context) -> list[LFRow]:
    """Every stored LF and rule with its current version's votes and polarity (the labels
    those votes name: a code LF without ``label=`` has no single label)."""
    with db.read_session(ws.engine) as session:
        rows = session.exec(select(LabelingFunction).order_by(col(LabelingFunction.id))).all()
        current = (
            select(LFVote.lf_id, LFVote.label, func.count())
            .join(LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id))
            .where(col(LFVote.lf_version) == col(LabelingFunction.version))
            .group_by(col(LFVote.lf_id), col(LFVote.label))
        )
        counts = session.exec(current).all()
    votes: dict[int, int] = defaultdict(int)
    polarity: dict[int, list[str]] = defaultdict(list)
    order = vote_codes(ws.labels)
    for lf_id, label, n in counts:
        votes[lf_id] += int(n)
        polarity[lf_id].append(label)
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "label": r.label,
            "polarity": [
                shown_vote(v)
                for v in sorted(polarity.get(r.id or 0, []), key=lambda x: order.get(x, 1 << 30))
            ],
            "active": r.active,
            "version": r.version[:12],
            "applied": r.applied_version == r.version,
            "votes": votes.get(r.id or 0, 0),
            "spec": json.loads(r.spec or "{}"),
            "stats": json.loads(r.stats or "{}"),
        }
        for r in rows
    ]


@dataclass
class Votes:
    """The vote matrix of the active, applied LFs over every item (rows in item-id order)."""

    L: np.ndarray
    names: list[str]
    item_ids: np.ndarray
    split: np.ndarray
    gold: np.ndarray  # label index or -1
    human: np.ndarray  # item label index or -1 (pool items only; bulk labels left out)
    faults: dict[str, int]
    kinds: dict[str, str]


def votes(ws: Context) -> Votes:
    """The stored votes of the active, applied LFs as a matrix, with gold and human labels."""
    labels = ws.labels
    index = {label: k for k, label in enumerate(labels)}
    # Absent votes mean something only for sets; a single-label workspace leaves them out.
    codes = vote_codes(labels) if ws.multilabel else index
    with db.read_session(ws.engine) as session:
        items = session.execute(
            select(Item.id, Item.split, Item.gold_label).order_by(col(Item.id))  # type: ignore[call-overload]
        ).all()
        lf_rows = session.exec(
            select(LabelingFunction)
            .where(
                col(LabelingFunction.active).is_(True),
                col(LabelingFunction.applied_version) == col(LabelingFunction.version),
            )
            .order_by(col(LabelingFunction.id))
        ).all()
        vote_rows = session.execute(
            select(LFVote.lf_id, LFVote.item_id, LFVote.label)  # type: ignore[call-overload]
            .join(LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id))
            .where(
                col(LabelingFunction.active).is_(True),
                col(LFVote.lf_version) == col(LabelingFunction.version),
            )
        ).all()
        people = human_labels(session, labels, bulk=False)
    item_ids = np.array([r[0] for r in items], dtype=np.int64)
    position = {int(item_id): row for row, item_id in enumerate(item_ids)}
    column = {r.id: j for j, r in enumerate(lf_rows)}
    L = np.full((len(item_ids), len(lf_rows)), -1, dtype=np.int64)
    for lf_id, item_id, label in vote_rows:
        if lf_id in column and item_id in position and label in codes:
            L[position[item_id], column[lf_id]] = codes[label]
    split = np.array([r[1] for r in items], dtype=object)
    gold = np.array([index.get(r[2], -1) if r[1] == "gold" else -1 for r in items], np.int64)
    human = np.full(len(item_ids), -1, dtype=np.int64)
    for item_id, label in people.items():
        row = position.get(item_id)
        if row is not None:  # a stored set (multi-label) has no index: read_sets reads it
            human[row] = index.get(label, -1)
    return Votes(
        L=L,
        names=[r.name for r in lf_rows],
        item_ids=item_ids,
        split=split,
        gold=gold,
        human=human,
        faults={r.name: int(json.loads(r.stats or "{}").get("faults", 0)) for r in lf_rows},
        kinds={r.name: r.kind for r in lf_rows},
    )
