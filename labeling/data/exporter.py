"""Export of items (one row each, with the final label) or of the raw annotation log.

An item's final label is a lead's adjudication when there is one, else the majority of its
current answers; ``decided_by`` says which rule gave it (see :func:`decided_by`).

Rows are read in id order in chunks and written to a temporary file beside the target, which
is renamed into place at the end: a failed export never leaves a half-written file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from labeling.data.writers import target_folder, write_in_place
from labeling.errors import ExportFailed
from labeling.store import labelsets
from labeling.store.answers import decided_by, decision_rows, relabelled_between
from labeling.store.labelsets import DEFAULT_LABEL_SEP
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


@dataclass
class ExportReport:
    file: str
    format: str
    rows: int
    kind: str
    # The --origin filter (None: every row).
    origin: list[str] | None = None
    # --format hf: rows per split.
    splits: dict[str, int] | None = None

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


def _current_answers(
    session: Session, low: int, high: int
) -> dict[int, list[tuple[str, str, int, int]]]:
    """Of items ``low``..``high``: the rows :func:`labeling.store.answers.decided_by` reads."""
    return decision_rows(session, col(Annotation.item_id).between(low, high))


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
    """The item rows, a page of items at a time: one page's reads, then the row of each item."""
    with Session(engine) as session:
        promoted, file_predictions = _promoted(session, round_predictions)
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
            answers = _current_answers(session, low, high)
            relabelled = relabelled_between(session, low, high)
            weak = _weak_labels(session, low, high)
            predictions: dict[int, tuple[str | None, float | None]] = {}
            if promoted is not None:
                predictions = _predictions(session, promoted, file_predictions, items)
            for item_id, external_id, text, source, split, gold_label, batch_id in items:
                rows = answers.get(item_id, [])
                label, how, by_origin = decided_by(
                    rows, labels, relabelled=relabelled.get(item_id, ())
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
                    "n_annotations": sum(
                        n for _l, origin, n, _id in rows if origin not in (*DECISIONS, BULK)
                    ),
                    "gold_label": gold_label,
                    "weak_label": weak.get(item_id, (None, None))[0],
                    "weak_confidence": weak.get(item_id, (None, None))[1],
                    "prediction": prediction,
                    "prediction_confidence": confidence,
                }
                row.update(source_columns.values(batch_id, json.loads(source)))
                yield row


def _promoted(
    session: Session, round_predictions: Callable[[int], Any] | None
) -> tuple[int | None, Any]:
    """The promoted round's id and (when ``round_predictions`` reads them) its predictions."""
    promoted = session.exec(
        select(Round.id).where(col(Round.promoted).is_(True)).order_by(col(Round.id).desc())
    ).first()
    if round_predictions is None or promoted is None:
        return promoted, None
    return promoted, round_predictions(promoted)


def item_label_rows(engine: Engine, labels: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Every item's export row (its final label, gold label, ...), in id order, a page at a
    time: what other export formats (labeling.data.hf_export) read, so one definition of an
    item's final label serves them all."""
    with Session(engine) as session:
        source_columns = _SourceColumns(session)
    return _item_rows(engine, labels, source_columns)


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


@dataclass(frozen=True)
class LabelForm:
    """How label cells are written: sets of a multi-label workspace as names joined by
    ``sep`` (CSV; ``[]`` for the empty set) or lists (JSONL, Parquet), and with ``wide`` one
    0/1 column ``label:NAME`` per label as well (empty where the item has no label)."""

    multilabel: bool = False
    sep: str = DEFAULT_LABEL_SEP
    wide: bool = False

    def wide_columns(self, labels: tuple[str, ...]) -> list[str]:
        return [f"{WIDE_PREFIX}{name}" for name in labels] if self.wide else []

    def rows(
        self,
        rows: Iterator[dict[str, Any]],
        fmt: str,
        labels: tuple[str, ...],
        set_columns: tuple[str, ...],
    ) -> Iterator[dict[str, Any]]:
        """``rows`` with their label cells in this form."""
        if not self.multilabel and not self.wide:
            yield from rows
            return
        for row in rows:
            value = row.get("label")
            if self.wide:
                chosen = self.names(value)
                for name in labels:
                    row[f"{WIDE_PREFIX}{name}"] = None if chosen is None else int(name in chosen)
            if self.multilabel:
                for column in set_columns:
                    stored = row.get(column)
                    if stored is not None:
                        row[column] = (
                            labelsets.format_cell(stored, self.sep)
                            if fmt == "csv"
                            else labelsets.decode_ordered(stored)
                        )
            yield row

    def names(self, value: str | None) -> frozenset[str] | None:
        if value is None:
            return None
        return labelsets.decode(value) if self.multilabel else frozenset([value])


# The prefix of the 0/1 columns of ``export --wide``.
WIDE_PREFIX = "label:"


def run_export(
    engine: Engine,
    out: Path,
    *,
    labels: tuple[str, ...],
    fmt: str | None = None,
    annotations: bool = False,
    round_predictions: Callable[[int], Any] | None = None,
    origins: Sequence[str] | None = None,
    form: LabelForm | None = None,
) -> ExportReport:
    """Write items (or, with ``annotations``, the annotation log) to ``out``.

    ``round_predictions(round_id)`` gives a round's predictions file (see
    :mod:`labeling.rounds.predictions`), for items whose prediction is not among its queue scores.
    ``origins`` (values of :data:`ORIGINS`) keeps only the annotations of those origins, or
    the items whose final label was decided by them; None keeps every row.
    """
    chosen = check_origins(origins)
    form = form or LabelForm()
    target_dir = target_folder(out)
    fmt = export_format(out, fmt)
    if form.multilabel and fmt == "csv":
        labelsets.check_separator(labels, form.sep)
    wide = form.wide_columns(labels)
    if annotations:
        columns = list(ANNOTATION_COLUMNS) + wide
        set_columns: tuple[str, ...] = ("label",)
        rows = _annotation_rows(engine, chosen)
    else:
        with Session(engine) as session:
            source_columns = _SourceColumns(session)
        columns = list(ITEM_COLUMNS) + wide + list(source_columns.columns.values())
        set_columns = ("label", "gold_label", "weak_label", "prediction")
        rows = _item_rows(engine, labels, source_columns, round_predictions, chosen)
    count = write_in_place(
        out,
        target_dir,
        fmt,
        columns,
        form.rows(rows, fmt, labels, set_columns),
        list_columns=frozenset(set_columns if form.multilabel else ()),
        int_columns=frozenset(wide),
    )
    return ExportReport(
        file=str(out),
        format=fmt,
        rows=count,
        kind="annotations" if annotations else "items",
        origin=chosen,
    )
