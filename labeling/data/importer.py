"""Import of CSV/TSV, JSONL and Parquet files into the store.

Two passes over the file, each streamed in chunks so memory stays bounded: the first validates
every row and writes nothing; the second writes, in one transaction, only when the first found
no fault. A bad file therefore changes nothing, and its error names the row and the field.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC
from itertools import repeat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col

from labeling.annotation.users import system_annotator
from labeling.context import ProgressCallback
from labeling.data.duplicates import skip_repeated_ids, skip_repeated_texts
from labeling.data.import_rows import chunk_values
from labeling.data.readers import Chunk, check_file, detect_format, open_reader
from labeling.data.validation import (
    EXPORT_COMPUTED_COLUMNS,
    EXPORT_SIGNATURE,
    ImportPlan,
    RowChecker,
    refuse_unknown_fields,
)
from labeling.errors import ImportFailed
from labeling.store import db, label_feed, labelsets, outbox
from labeling.store.bulk import bulk_insert_tuples
from labeling.store.labelsets import DEFAULT_LABEL_SEP
from labeling.store.models import SPLITS, Annotation, ImportBatch, Item, utcnow
from labeling.store.search_index import BulkIndexer


@dataclass
class ImportReport:
    """What an import did. ``duplicates`` counts rows skipped for an id already seen,
    ``duplicate_texts`` rows whose text was already seen under another id."""

    file: str
    format: str
    split: str
    rows_read: int = 0
    imported: int = 0
    duplicates: int = 0
    duplicates_in_file: int = 0
    duplicates_in_store: int = 0
    # Rows whose text is already in the workspace, or earlier in the file, under another id:
    # skipped unless ``allow_duplicate_texts`` (then imported, and still counted here).
    duplicate_texts: int = 0
    duplicate_texts_in_file: int = 0
    duplicate_texts_in_store: int = 0
    allow_duplicate_texts: bool = False
    labels_recorded: int = 0
    batch_id: int | None = None
    seconds: float = 0.0
    fields: list[str] = field(default_factory=list)
    # The drift check of a pool import against the labelled set (see labeling.data.drift).
    drift: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def duplicate_texts_warning(
    report: ImportReport, *, option: str = "--allow-duplicate-texts"
) -> str | None:
    """The words for an import's repeated texts, or None when there were none. ``option``
    names the switch that keeps them (the CLI's flag, or the Data page's checkbox)."""
    n = report.duplicate_texts
    if not n:
        return None
    where = []
    if report.duplicate_texts_in_store:
        where.append(f"{report.duplicate_texts_in_store:,} already in the workspace")
    if report.duplicate_texts_in_file:
        where.append(f"{report.duplicate_texts_in_file:,} earlier in the file")
    rows = f"{n:,} {'row' if n == 1 else 'rows'}"
    if report.allow_duplicate_texts:
        return (
            f"imported {rows} whose text was already there under another id "
            f"({', '.join(where)}), as {option} asks"
        )
    return (
        f"skipped {rows} whose text is already there under another id ({', '.join(where)}); "
        f"use {option} to import them"
    )


# ImportPlan.fmt of items pushed over HTTP (labeling.data.push), and their batches' format.
PUSHED = "request"


def queue_rank(seed: int, external_id: str) -> int:
    """Seeded, insertion-order-independent random position in the cold queue."""
    digest = hashlib.blake2b(f"{seed}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def _check_every_row(
    plan: ImportPlan, reader: Any, progress: ProgressCallback | None, total: int
) -> list[str]:
    """First pass: read and check every row; write nothing. Returns the file's field names."""
    checker = RowChecker(plan, reader.row_word)
    if reader.fields is not None:
        refuse_unknown_fields(plan, reader.fields)
        checker.fields = dict.fromkeys(reader.fields)
    rows_read = 0
    header = getattr(reader, "header_key", None)
    for chunk in reader.chunks():
        if checker.plain(chunk) is None:
            checker.check_rows(chunk, header)
        rows_read += len(chunk)
        if progress:
            progress("checking", chunk.position, total)
    if rows_read == 0:
        raise ImportFailed(f"{plan.name}: no data rows; expected at least one row after the header")
    checker.raise_unknown_labels()
    return list(checker.fields)


_ITEM_TABLE = Item.__table__  # type: ignore[attr-defined]
_ANNOTATION_TABLE = Annotation.__table__  # type: ignore[attr-defined]

# The item columns an import writes, in the order of the tuples it builds.
ITEM_INSERT_COLUMNS = [
    "external_id",
    "text",
    "source",
    "content_hash",
    "split",
    "gold_label",
    "n_labels",
    "rank",
    "batch_id",
    "created_at",
    "label",
]


def _db_timestamp(session: Any, value: Any) -> Any:
    """A timestamp as the driver-level insert must pass it: SQLite keeps SQLAlchemy's text form."""
    if session.connection().dialect.name == "sqlite":
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _new_item_ids(session: Any, batch_id: int, after: int) -> list[tuple[str, int]]:
    """(external id, item id) of the items this batch inserted with ids above ``after``."""
    connection = session.connection()
    backend = connection.dialect.name
    if backend in {"sqlite", "postgresql"}:
        mark = "?" if backend == "sqlite" else "%s"
        return list(
            connection.exec_driver_sql(
                f"SELECT external_id, id FROM item WHERE batch_id = {mark} AND id > {mark}",
                (batch_id, after),
            ).all()
        )
    return list(
        session.execute(
            select(col(Item.external_id), col(Item.id)).where(
                col(Item.batch_id) == batch_id, col(Item.id) > after
            )
        ).all()
    )


@dataclass
class _BatchWriter:
    """The second pass over one import's checked chunks: writes their new rows into the batch
    in the caller's transaction and counts, on ``report``, what it wrote and skipped."""

    session: Any
    report: ImportReport
    checker: RowChecker
    batch_id: int
    queue_seed: int
    # Columns of a labelloop export kept out of the items' source rows.
    drop_from_source: set[str]
    # The annotator of the labels a pool file brings (None: no label field).
    importer_id: int | None
    now: Any
    index: BulkIndexer
    # Ids of rows skipped for a repeated text.
    text_skipped: set[str] = field(default_factory=set)

    def write(self, chunk: Chunk) -> None:
        ids, texts, given, sources = chunk_values(self.checker, chunk, self.drop_from_source)
        self.report.rows_read += len(chunk)
        keep, hashes = self._rows_to_write(ids, texts)
        if keep:
            self._insert(
                [ids[k] for k in keep],
                [texts[k] for k in keep],
                sources(keep),
                hashes,
                [given[k] for k in keep],
            )

    def _rows_to_write(self, ids: list[str], texts: list[str]) -> tuple[Sequence[int], list[str]]:
        """The positions of the rows to write and their content hashes: not repeats of an
        earlier id, nor of an earlier text unless the import allows those."""
        report = self.report
        by_id = skip_repeated_ids(self.session, self.batch_id, ids, self.text_skipped)
        report.duplicates_in_store += by_id.in_store
        report.duplicates_in_file += by_id.in_file
        by_text, hashes = skip_repeated_texts(
            self.session, self.batch_id, by_id.keep, texts, allow=report.allow_duplicate_texts
        )
        report.duplicate_texts_in_store += by_text.in_store
        report.duplicate_texts_in_file += by_text.in_file
        keep = by_text.keep
        if len(keep) < len(by_id.keep):
            # Their ids stay taken for the rest of the file (the first occurrence wins),
            # though no item holds them. Only these rows' ids are remembered: a file that
            # is all repeats (1M rows imported again) holds about 100 MB of them.
            written = set(keep)
            self.text_skipped.update(ids[k] for k in by_id.keep if k not in written)
        return keep, hashes

    def _insert(
        self,
        new_ids: list[str],
        new_texts: list[str],
        sources: list[str],
        hashes: list[str],
        new_labels: list[str | None],
    ) -> None:
        """Insert the items, and the labels a pool file gives them as answers of the import."""
        split = self.report.split
        gold = split == "gold"
        records = list(
            zip(
                new_ids,
                new_texts,
                sources,
                hashes,
                repeat(split),
                new_labels if gold else repeat(None),
                repeat(0) if gold else (0 if label is None else 1 for label in new_labels),
                (queue_rank(self.queue_seed, external_id) for external_id in new_ids),
                repeat(self.batch_id),
                repeat(self.now),
                # An imported label is the new item's only answer, hence its label.
                repeat(None) if gold else new_labels,
            )
        )
        labelled = (
            {i: label for i, label in zip(new_ids, new_labels, strict=True) if label}
            if not gold
            else {}
        )
        session = self.session
        before = session.execute(select(func.max(Item.id))).scalar() or 0
        bulk_insert_tuples(session, _ITEM_TABLE, ITEM_INSERT_COLUMNS, records)
        self.index.added(before, sum(map(len, new_texts)))
        self.report.imported += len(records)
        if labelled:
            bulk_insert_tuples(
                session,
                _ANNOTATION_TABLE,
                ["item_id", "annotator_id", "label", "skipped", "origin", "created_at"],
                [
                    (item_id, self.importer_id, labelled[external_id], False, "import", self.now)
                    for external_id, item_id in _new_item_ids(session, self.batch_id, before)
                    if external_id in labelled
                ],
            )
            self.report.labels_recorded += len(labelled)
            label_feed.mark_batch(session, self.batch_id)


def _write_rows(
    engine: Engine,
    plan: ImportPlan,
    reader: Any,
    report: ImportReport,
    *,
    queue_seed: int,
    progress: ProgressCallback | None,
    total: int,
) -> None:
    """Second pass: write every new row, in one transaction, into a new import batch."""
    fields = report.fields
    is_export = set(EXPORT_SIGNATURE) <= set(fields)
    drop_from_source = set(EXPORT_COMPUTED_COLUMNS) & set(fields) if is_export else set()
    with db.write_session(engine) as session, db.bulk_cache(session):
        batch = ImportBatch(
            source_name=Path(plan.name).name,
            format=plan.fmt,
            split=plan.split,
            text_field=plan.text_field,
            id_field=plan.id_field,
            label_field=plan.label_field,
            fields=json.dumps([f for f in fields if f not in drop_from_source], ensure_ascii=False),
        )
        session.add(batch)
        session.flush()
        assert batch.id is not None
        importer_id = None
        if plan.split == "pool" and plan.label_field is not None:
            importer_id = system_annotator(session).id
        writer = _BatchWriter(
            session=session,
            report=report,
            checker=RowChecker(plan, reader.row_word),
            batch_id=batch.id,
            queue_seed=queue_seed,
            drop_from_source=drop_from_source,
            importer_id=importer_id,
            now=_db_timestamp(session, utcnow()),
            index=BulkIndexer(session.connection()),
        )
        for chunk in reader.chunks():
            writer.write(chunk)
            if progress:
                progress("writing", chunk.position, total)
        _finish_batch(session, engine, batch, report, pushed=plan.fmt == PUSHED)
        writer.index.finish()
        session.commit()  # inside bulk_cache: its pages are clean when the cache shrinks back


def _finish_batch(
    session: Any, engine: Engine, batch: ImportBatch, report: ImportReport, *, pushed: bool
) -> None:
    """Record the batch's counts and tell the webhooks. A push that brought nothing new (a
    client sending a request again) leaves no batch behind and tells nobody."""
    report.duplicates = report.duplicates_in_file + report.duplicates_in_store
    report.duplicate_texts = report.duplicate_texts_in_file + report.duplicate_texts_in_store
    if report.split == "gold":
        report.labels_recorded = report.imported
    if pushed and not report.imported:
        session.delete(batch)
        return
    batch.rows_read = report.rows_read
    batch.imported = report.imported
    # Every row read and not imported: repeated ids, and repeated texts when skipped.
    batch.duplicates = report.rows_read - report.imported
    session.add(batch)
    report.batch_id = batch.id
    told = {k: getattr(report, k) for k in ("split", "format", "rows_read", "imported",
            "duplicates", "duplicate_texts", "labels_recorded")}  # fmt: skip
    told = {"batch": batch.id, "source": batch.source_name, **told}
    outbox.emit_attached(session, engine, "import.done", told)  # docs/webhooks.md


def run_import(
    engine: Engine,
    path: Path,
    *,
    labels: tuple[str, ...],
    text_field: str,
    id_field: str | None = None,
    label_field: str | None = None,
    split: str = "pool",
    fmt: str | None = None,
    queue_seed: int = 0,
    progress: ProgressCallback | None = None,
    allow_duplicate_texts: bool = False,
    source_name: str | None = None,
    multilabel: bool = False,
    label_sep: str = DEFAULT_LABEL_SEP,
) -> ImportReport:
    """Import ``path`` into the store: all rows or, on any fault, none.

    A row whose text is already in the workspace, or earlier in the file, under another id is
    skipped and counted (``duplicate_texts``) unless ``allow_duplicate_texts``. Messages call
    the file ``source_name`` (the name the person gave it; default: the path).
    """
    started = time.perf_counter()
    if split not in SPLITS:
        raise ImportFailed(f"option '--split': expected pool or gold, found {split!r}")
    if split == "gold" and label_field is None:
        raise ImportFailed("option '--label-field' is required with --split gold")
    name = str(path) if source_name is None else source_name
    check_file(path, name)
    fmt = detect_format(path, fmt, name=name)
    if multilabel and label_field is not None:
        labelsets.check_separator(labels, label_sep)
    plan = ImportPlan(
        path, fmt, split, text_field, id_field, label_field, labels, name, multilabel, label_sep
    )
    reader = open_reader(path, fmt, name)
    total = path.stat().st_size
    report = check_and_write(
        engine,
        plan,
        reader,
        total,
        queue_seed=queue_seed,
        progress=progress,
        allow_duplicate_texts=allow_duplicate_texts,
    )
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def check_and_write(
    engine: Engine,
    plan: ImportPlan,
    reader: Any,
    total: int,
    *,
    queue_seed: int,
    progress: ProgressCallback | None,
    allow_duplicate_texts: bool,
    statistics: bool = True,
) -> ImportReport:
    """Both passes over ``reader``: check every row, then write them all in one transaction."""
    fields = _check_every_row(plan, reader, progress, total)
    report = ImportReport(
        file=Path(plan.name).name,
        format=plan.fmt,
        split=plan.split,
        fields=fields,
        allow_duplicate_texts=allow_duplicate_texts,
    )
    _write_rows(engine, plan, reader, report, queue_seed=queue_seed, progress=progress, total=total)
    if report.imported and statistics:
        db.refresh_statistics(engine, _ITEM_TABLE.name, _ANNOTATION_TABLE.name)
    return report


def preview(
    path: Path, *, fmt: str | None = None, rows: int = 20, source_name: str | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    """The field names and first ``rows`` rows of a file, read as ``labelloop import`` reads it.

    For the Data page's field mapping; nothing is validated beyond what parsing needs.
    Messages call the file ``source_name`` (default: the path).
    """
    name = str(path) if source_name is None else source_name
    check_file(path, name)
    reader = open_reader(path, detect_format(path, fmt, name=name), name)
    first = next(iter(reader.chunks()), None)
    sample = first.rows[:rows] if first is not None else []
    columns: list[str] = list(getattr(reader, "fields", None) or [])
    if not columns:  # JSONL: the keys in order of first appearance
        columns = list(dict.fromkeys(key for row in sample for key in row))
    return columns, sample
