"""One item's whole story, for the item page and ``labelloop item``: its text and fields, where
it came from, its label now and how that was decided, every answer ever given on it, what the
LFs, the label model and the promoted model say, and its flags.

Each part is one indexed query on the item's row id (or the predictions file's memory-mapped
look-up): on a 1M-item store, about 2 ms on SQLite and 12 ms on PostgreSQL (median of 200
random items, 2 shared cores).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, TypedDict

from sqlmodel import Session, col, select

from labeling.annotation.suggestions import model_guess
from labeling.context import Context
from labeling.quality.corrections import FlagRecord, find_item, iso, list_flags
from labeling.store.answers import DECIDED_BY, decided_by, relabelled_of
from labeling.store.models import (
    Annotation,
    Annotator,
    ImportBatch,
    LabelingFunction,
    LFVote,
    WeakLabel,
)
from labeling.weak.votes import shown_vote

# How an item's label now was decided (``decided_by`` of :func:`item_story`): as in an export
# (labeling.store.answers.decided_by), or "none" for an item without a label.
HOW_DECIDED = (*DECIDED_BY, "none")


class AnswerEntry(TypedDict):
    """One row of the item's annotation log."""

    annotation: int
    who: str
    role: str
    label: str | None  # None: a skip
    skipped: bool
    origin: str
    batch: str | None  # the bulk action that wrote it
    created_at: str  # ISO 8601, UTC
    superseded_by: int | None
    current: bool
    duration_ms: int | None


class ItemStory(TypedDict):
    """Everything about one item (see the module's docstring)."""

    id: str
    text: str
    split: str
    source: dict[str, Any]
    import_batch: dict[str, Any] | None  # {"id", "file"}
    label: str | None
    decided_by: str  # one of HOW_DECIDED
    gold_label: str | None
    answers: list[AnswerEntry]
    lf_votes: dict[str, str]  # LF name -> label (current versions of active LFs)
    weak_label: str | None
    weak_confidence: float | None
    prediction: str | None
    prediction_confidence: float | None
    prediction_round: int | None
    flags: list[FlagRecord]


def item_story(ws: Context, session: Session, external_id: str) -> ItemStory:
    """Everything about the item people know by ``external_id`` (see :class:`ItemStory`)."""
    item = find_item(session, external_id)
    assert item.id is not None
    answers = _answers(session, item.id)
    weak = session.exec(
        select(WeakLabel.label, WeakLabel.confidence).where(WeakLabel.item_id == item.id)
    ).first()
    predicted, confidence, round_id = model_guess(ws, session, item.id)
    batch = None
    if item.batch_id is not None:
        file_name = session.exec(
            select(ImportBatch.source_name).where(ImportBatch.id == item.batch_id)
        ).first()
        batch = {"id": item.batch_id, "file": file_name}
    return {
        "id": item.external_id,
        "text": item.text,
        "split": item.split,
        "source": json.loads(item.source or "{}"),
        "import_batch": batch,
        "label": item.label,
        "decided_by": _how_decided(ws, session, item.id, answers),
        "gold_label": item.gold_label,
        "answers": answers,
        "lf_votes": _lf_votes(session, item.id),
        "weak_label": weak[0] if weak else None,
        "weak_confidence": weak[1] if weak else None,
        "prediction": predicted,
        "prediction_confidence": confidence,
        "prediction_round": round_id,
        "flags": list_flags(session, open_only=False, item_id=item.id),
    }


def _answers(session: Session, item_id: int) -> list[AnswerEntry]:
    """Every annotation on the item, oldest first, superseded ones included."""
    rows = session.exec(
        select(Annotation, Annotator.name, Annotator.role)
        .join(Annotator, col(Annotator.id) == col(Annotation.annotator_id))
        .where(Annotation.item_id == item_id)
        .order_by(col(Annotation.id))
    ).all()
    return [
        {
            "annotation": int(a.id or 0),
            "who": name,
            "role": role,
            "label": a.label,
            "skipped": a.skipped,
            "origin": a.origin,
            "batch": a.batch,
            "created_at": iso(a.created_at) or "",
            "superseded_by": a.superseded_by,
            "current": a.superseded_by is None,
            "duration_ms": a.duration_ms,
        }
        for a, name, role in rows
    ]


def _how_decided(ws: Context, session: Session, item_id: int, answers: list[AnswerEntry]) -> str:
    relabelled = relabelled_of(session, [item_id]).get(item_id, set())
    how = decided_by(current_rows(answers), ws.labels, relabelled=relabelled)[1]
    return how or "none"


def current_rows(answers: list[AnswerEntry]) -> list[tuple[str, str, int, int]]:
    """The item's current labelled answers as :func:`labeling.store.answers.decide` reads
    them."""
    grouped: dict[tuple[str, str], list[int]] = defaultdict(list)
    for a in answers:
        if a["current"] and a["label"] is not None:
            grouped[(a["label"], a["origin"])].append(a["annotation"])
    return [(label, origin, len(ids), max(ids)) for (label, origin), ids in grouped.items()]


def _lf_votes(session: Session, item_id: int) -> dict[str, str]:
    """LF name -> label, over the votes of active LFs' current versions (what the label
    model reads; abstains are not stored)."""
    return {  # an absent vote (multi-label) reads "¬bug"
        name: shown_vote(label)
        for name, label in session.exec(
            select(LabelingFunction.name, LFVote.label)
            .join(LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id))
            .where(
                LFVote.item_id == item_id,
                col(LFVote.lf_version) == col(LabelingFunction.version),
                col(LabelingFunction.active).is_(True),
            )
            .order_by(col(LabelingFunction.name))
        ).all()
    }
