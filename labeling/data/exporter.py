"""Export of items (one row each, with the final label) or of the raw annotation log.

An item's final label is a lead's adjudication when there is one, else the majority of its
current answers; ``decided_by`` says which rule gave it (see :func:`decided_by`).

Rows are read in id order in chunks and written to a temporary file beside the target, which
is renamed into place at the end: a failed export never leaves a half-written file.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, and_, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from labeling.data.writers import target_folder, write_in_place
from labeling.errors import ExportFailed
from labeling.store.answers import current, majority
from labeling.store.models import (
    ADJUDICATION,
    BULK,
    CORRECTION,
    DECISIONS,
    REMOVED,
    Annotation,
    Annotator,
    ImportBatch,
    Item,
    Round,
    Score,
    WeakLabel,
)

CHUNK_ITEMS = 20_000
EXPORT_FORMATS = ("csv", "jsonl", "parquet")
ITEM_COLUMNS = (
    "id",
    "text",
    "split",
    "label",
    "decided_by",
    "n_annotations",
    "gold_label",
    "weak_label",
    "weak_confidence",
    "prediction",
    "prediction_confidence",
)
ANNOTATION_COLUMNS = (
    "annotation_id",
    "item_id",
    "annotator",
    "label",
    "skipped",
    "duration_ms",
    "round_id",
    "superseded_by",
    "origin",
    "created_at",
    "batch",
)
# Annotation.origin values: a person's answer, a label that came with an imported file, a lead's
# decision, a correction from the item page. ``--origin`` filters the annotation log by them, and
# items by what decided their final label (majority, tie-break and a person's relabelling after
# undo are human answers; decided_by "correction" of origin correction is the item page's;
# decided_by "bulk": the item's only label came from a bulk batch, the newest one).
ORIGINS = ("human", "import", ADJUDICATION, CORRECTION, BULK)
# How an item's final label was decided (the ``decided_by`` column); empty when unlabelled.
DECIDED_BY = ("adjudication", "tie-break", "correction", "import", "majority", "bulk")
_DECISION_ORIGIN = {
    "adjudication": ADJUDICATION,
    "tie-break": "human",
    "correction": "human",
    "majority": "human",
    "import": "import",
}


@dataclass
class ExportReport:
    file: str
    format: str
    rows: int
    kind: str
    # The --origin filter (None: every row).
    origin: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_format(out: Path, explicit: str | None) -> str:
    if explicit is not None:
        if explicit not in EXPORT_FORMATS:
            raise ExportFailed(
                f"option '--format': expected one of {', '.join(EXPORT_FORMATS)}, "
                f"found {explicit!r}"
            )
        return explicit
    suffix = out.suffix.lower().lstrip(".")
    aliases = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "parquet": "parquet"}
    if suffix not in aliases:
        raise ExportFailed(
            f"{out}: cannot tell the format from the extension; pass --format "
            f"({', '.join(EXPORT_FORMATS)})"
        )
    return aliases[suffix]


def final_label(counts: dict[str, int], labels: tuple[str, ...]) -> str | None:
    """Majority of current human labels; a tie goes to the label listed first in the toml."""
    return majority(counts, labels) if counts else None


def decided_by(
    counts: dict[str, int],
    *,
    label: str | None,
    adjudicated: bool,
    only_imported: bool,
    corrected: bool,
) -> str | None:
    """How an item's final ``label`` was decided, one of :data:`DECIDED_BY` (None: no label).

    ``adjudication``: a lead's decision, which wins over any count. ``tie-break``: several
    labels share the most current answers and the toml's label order chose. ``correction``: the
    label has the most answers, and one of them replaced the same person's earlier, different
    answer. ``import``: every current answer came with an imported file. ``majority``: the
    label has the most current answers (a single answer included).
    """
    if label is None:
        return None
    if adjudicated:
        return "adjudication"
    top = max(counts.values(), default=0)
    if sum(1 for n in counts.values() if n == top) > 1:
        return "tie-break"
    if corrected:
        return "correction"
    if only_imported:
        return "import"
    return "majority"


def check_origins(origins: Sequence[str] | None) -> list[str] | None:
    """The ``--origin`` values, checked; None when no filter was asked for."""
    if not origins:
        return None
    for origin in origins:
        if origin not in ORIGINS:
            raise ExportFailed(
                f"option '--origin': expected one of {', '.join(ORIGINS)}, found {origin!r}"
            )
    return list(dict.fromkeys(origins))


class _SourceColumns:
    """Original fields of the imported files, minus those mapped to id, text and label."""

    def __init__(self, session: Session) -> None:
        self.columns: dict[str, str] = {}  # source field -> export column name
        self.mapped: dict[int, set[str]] = {}
        for batch in session.exec(select(ImportBatch).order_by(col(ImportBatch.id))).all():
            assert batch.id is not None
            mapped = {batch.text_field, batch.id_field, batch.label_field} - {None}
            self.mapped[batch.id] = mapped  # type: ignore[assignment]
            for name in json.loads(batch.fields):
                if name in mapped or name in self.columns:
                    continue
                self.columns[name] = f"source.{name}" if name in ITEM_COLUMNS else name

    def values(self, batch_id: int | None, source: dict[str, Any]) -> dict[str, Any]:
        mapped = self.mapped.get(batch_id, set()) if batch_id is not None else set()
        return {
            column: source.get(name) for name, column in self.columns.items() if name not in mapped
        }


def _pages(session: Session, query: Any, key: Any) -> Iterator[list[Any]]:
    """The rows of ``query`` in ``key`` order, :data:`CHUNK_ITEMS` at a time (keyset paging:
    each page starts after the last key seen, so no page costs more than the first).

    ``key`` must be the query's first column, a positive integer unique per row.
    """
    last = 0
    while True:
        rows = session.exec(query.where(key > last).order_by(key).limit(CHUNK_ITEMS)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _corrected(session: Session, low: int, high: int) -> set[tuple[int, str]]:
    """(item, label) of current answers on items ``low``..``high`` that replaced the same
    person's earlier answer with a different label (a correction, after an undo or on review)."""
    old = aliased(Annotation)
    new = aliased(Annotation)
    rows = session.exec(
        select(new.item_id, new.label)
        .join(old, and_(col(old.item_id) == new.item_id, col(old.superseded_by) == new.id))
        .where(
            col(new.item_id).between(low, high),
            current(new),
            col(new.skipped).is_(False),
            new.origin != ADJUDICATION,
            col(old.label).is_not(None),
            old.label != new.label,
        )
    ).all()
    return {(item_id, label) for item_id, label in rows if label is not None}


def _current_answers(
    session: Session, low: int, high: int
) -> tuple[dict[int, dict[str, int]], set[int], dict[int, tuple[int, str, str]]]:
    """Of items ``low``..``high``: the counts of each label among their current answers, the
    items with a current answer not from an import, and the items decided outright (by the
    newest adjudication or correction: its id, label and origin)."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    by_people: set[int] = set()
    decided: dict[int, tuple[int, str, str]] = {}  # item -> (newest id, label, origin)
    for item_id, label, origin, n, newest in session.exec(
        select(  # type: ignore[call-overload]
            Annotation.item_id,
            Annotation.label,
            Annotation.origin,
            func.count(),
            func.max(Annotation.id),
        )
        .where(
            col(Annotation.item_id).between(low, high),
            current(),
            col(Annotation.skipped).is_(False),
            col(Annotation.origin) != BULK,  # a bulk label only decides alone: _bulk_decisions
        )
        .group_by(col(Annotation.item_id), col(Annotation.label), col(Annotation.origin))
    ).all():
        if label is None:
            continue
        if origin in DECISIONS:  # the newest decision wins (labeling.store.answers.decide)
            decided[item_id] = max(decided.get(item_id, (0, "", "")), (newest, label, origin))
        else:
            counts[item_id][label] = counts[item_id].get(label, 0) + n
            if origin != "import":
                by_people.add(item_id)
    return counts, by_people, decided


def _decision(
    counts: dict[str, int],
    labels: tuple[str, ...],
    *,
    decision: tuple[int, str, str] | None,
    only_imported: bool,
    item_id: int,
    corrected: set[tuple[int, str]],
) -> tuple[str | None, str | None, str | None]:
    """An item's final label, how it was decided (:func:`decided_by`) and the origin that
    decided it: the newest decision (adjudication or correction) when there is one.
    ``corrected``: :func:`_corrected`'s (item, label) pairs."""
    if decision is not None:
        return decision[1], decision[2], decision[2]
    label = final_label(counts, labels)
    how = decided_by(
        counts,
        label=label,
        adjudicated=False,
        only_imported=only_imported,
        corrected=(item_id, label) in corrected,
    )
    return label, how, _DECISION_ORIGIN.get(how or "")


def _weak_labels(session: Session, low: int, high: int) -> dict[int, tuple[str, float]]:
    """(weak label, confidence) of items ``low``..``high``."""
    return {
        item_id: (label, confidence)
        for item_id, label, confidence in session.exec(
            select(WeakLabel.item_id, WeakLabel.label, WeakLabel.confidence).where(
                col(WeakLabel.item_id).between(low, high)
            )
        ).all()
    }


def _bulk_decisions(
    session: Session, low: int, high: int, *, decided_otherwise: set[int]
) -> dict[int, tuple[int, str, str]]:
    """Items ``low``..``high`` whose label comes from a bulk batch (no current answer from
    people, an import or a decision: ``decided_otherwise`` lists those that have one), as
    ``(newest id, label, "bulk")``, the form of :func:`_current_answers`' decisions."""
    return {
        item_id: (int(newest or 0), label, BULK)
        for item_id, label, newest in session.exec(
            select(Annotation.item_id, Annotation.label, Annotation.id).where(
                col(Annotation.item_id).between(low, high), current(), Annotation.origin == BULK
            )
        ).all()
        if item_id not in decided_otherwise and label is not None
    }


def _predictions(
    session: Session, promoted: int, file_predictions: Any, items: list[Any]
) -> dict[int, tuple[str | None, float | None]]:
    """(prediction, confidence) of the promoted round for ``items``: its queue scores, then
    its predictions file (if any) for the items beyond the top of the queue."""
    low, high = items[0][0], items[-1][0]
    predictions: dict[int, tuple[str | None, float | None]] = {}
    for item_id, prediction, confidence in session.exec(
        select(Score.item_id, Score.prediction, Score.confidence).where(
            Score.round_id == promoted, col(Score.item_id).between(low, high)
        )
    ).all():
        predictions[item_id] = (prediction, confidence)
    if file_predictions is not None:  # items beyond the top of the queue
        unscored = [i[0] for i in items if i[0] not in predictions]
        predictions.update(file_predictions.lookup(np.array(unscored, dtype=np.int64)))
    return predictions


def _item_rows(
    engine: Engine,
    labels: tuple[str, ...],
    source_columns: _SourceColumns,
    round_predictions: Callable[[int], Any] | None = None,
    origins: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    with Session(engine) as session:
        promoted = session.exec(
            select(Round.id).where(col(Round.promoted).is_(True)).order_by(col(Round.id).desc())
        ).first()
        file_predictions = (
            round_predictions(promoted)
            if round_predictions is not None and promoted is not None
            else None
        )
        query = select(  # type: ignore[call-overload]
            Item.id,
            Item.external_id,
            Item.text,
            Item.source,
            Item.split,
            Item.gold_label,
            Item.batch_id,
            # Removed items are not exported. "!=" rather than "IN (pool, gold)": an IN lets
            # SQLite walk the split index and sort every page by id in a temporary file.
        ).where(col(Item.split) != REMOVED)
        for items in _pages(session, query, col(Item.id)):
            low, high = items[0][0], items[-1][0]
            counts, by_people, decided = _current_answers(session, low, high)
            decided |= _bulk_decisions(
                session, low, high, decided_otherwise=set(counts) | set(decided)
            )
            corrected = _corrected(session, low, high)
            weak = _weak_labels(session, low, high)
            predictions: dict[int, tuple[str | None, float | None]] = {}
            if promoted is not None:
                predictions = _predictions(session, promoted, file_predictions, items)
            for item_id, external_id, text, source, split, gold_label, batch_id in items:
                item_counts = counts.get(item_id, {})
                label, how, by_origin = _decision(
                    item_counts,
                    labels,
                    decision=decided.get(item_id),
                    only_imported=item_id not in by_people,
                    item_id=item_id,
                    corrected=corrected,
                )
                if origins is not None and (how is None or by_origin not in origins):
                    continue
                prediction, confidence = predictions.get(item_id, (None, None))
                row: dict[str, Any] = {
                    "id": external_id,
                    "text": text,
                    "split": split,
                    "label": label,
                    "decided_by": how,
                    "n_annotations": sum(item_counts.values()),
                    "gold_label": gold_label,
                    "weak_label": weak.get(item_id, (None, None))[0],
                    "weak_confidence": weak.get(item_id, (None, None))[1],
                    "prediction": prediction,
                    "prediction_confidence": confidence,
                }
                row.update(source_columns.values(batch_id, json.loads(source)))
                yield row


def _annotation_rows(engine: Engine, origins: list[str] | None = None) -> Iterator[dict[str, Any]]:
    with Session(engine) as session:
        query = (
            select(Annotation.id, Annotation, Item.external_id, Annotator.name)
            .join(Item, col(Item.id) == Annotation.item_id)
            .join(Annotator, col(Annotator.id) == Annotation.annotator_id)
            .where(col(Item.split) != REMOVED)  # removed items are not exported
        )
        if origins is not None:
            query = query.where(col(Annotation.origin).in_(origins))
        for rows in _pages(session, query, col(Annotation.id)):
            for _id, annotation, external_id, annotator in rows:
                yield {
                    "annotation_id": annotation.id,
                    "item_id": external_id,
                    "annotator": annotator,
                    "label": annotation.label,
                    "skipped": annotation.skipped,
                    "duration_ms": annotation.duration_ms,
                    "round_id": annotation.round_id,
                    "superseded_by": annotation.superseded_by,
                    "origin": annotation.origin,
                    "batch": annotation.batch,
                    "created_at": annotation.created_at.isoformat(),
                }


def run_export(
    engine: Engine,
    out: Path,
    *,
    labels: tuple[str, ...],
    fmt: str | None = None,
    annotations: bool = False,
    round_predictions: Callable[[int], Any] | None = None,
    origins: Sequence[str] | None = None,
) -> ExportReport:
    """Write items (or, with ``annotations``, the annotation log) to ``out``.

    ``round_predictions(round_id)`` gives a round's predictions file (see
    :mod:`labeling.rounds.predictions`), for items whose prediction is not among its queue scores.
    ``origins`` (values of :data:`ORIGINS`) keeps only the annotations of those origins, or
    the items whose final label was decided by them; None keeps every row.
    """
    chosen = check_origins(origins)
    target_dir = target_folder(out)
    fmt = export_format(out, fmt)
    if annotations:
        columns = list(ANNOTATION_COLUMNS)
        rows = _annotation_rows(engine, chosen)
    else:
        with Session(engine) as session:
            source_columns = _SourceColumns(session)
        columns = list(ITEM_COLUMNS) + list(source_columns.columns.values())
        rows = _item_rows(engine, labels, source_columns, round_predictions, chosen)
    count = write_in_place(out, target_dir, fmt, columns, rows)
    return ExportReport(
        file=str(out),
        format=fmt,
        rows=count,
        kind="annotations" if annotations else "items",
        origin=chosen,
    )
