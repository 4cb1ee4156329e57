"""Items pushed over HTTP (``POST /items``): imported exactly as a file's rows are, the same
two passes and the same checks, in one transaction; a resent request adds nothing."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from labeling.data.importer import PUSHED, ImportReport, check_and_write
from labeling.data.readers import RowsReader
from labeling.data.validation import ImportPlan
from labeling.errors import ImportFailed
from labeling.store.labelsets import DEFAULT_LABEL_SEP
from labeling.store.models import SPLITS, ImportBatch

# The rows of one import that is not a file: what its messages call the request, and the
# format its import batch records.
PUSH_NAME = "items"
PUSH_FORMAT = PUSHED


def import_rows(
    engine: Engine,
    rows: Sequence[dict[str, Any]],
    *,
    labels: tuple[str, ...],
    text_field: str,
    id_field: str,
    label_field: str | None = None,
    split: str = "pool",
    queue_seed: int = 0,
    allow_duplicate_texts: bool = False,
    multilabel: bool = False,
    statistics: bool = True,
) -> ImportReport:
    """Import rows given in memory (``POST /items``), checked exactly as a file's rows are: all
    of them or, on any fault, none. Messages name a row as ``items: item 3, field 'text'``,
    counting from 0 as the request's array does.
    An id already in the workspace is skipped and counted (``duplicates_in_store``), so a
    resent request adds nothing. ``statistics``: refresh the planner's statistics after
    (an HTTP server pushing many small batches does it now and then instead)."""
    started = time.perf_counter()
    if split not in SPLITS:
        raise ImportFailed(f"split: expected pool or gold, found {split!r}")
    if split == "gold" and label_field is None:
        raise ImportFailed("label_field: required with split gold (the gold labels' field)")
    if not rows:
        raise ImportFailed(f"{PUSH_NAME}: expected at least one item")
    plan = ImportPlan(
        Path(PUSH_NAME), PUSH_FORMAT, split, text_field, id_field, label_field, labels, PUSH_NAME,
        multilabel, DEFAULT_LABEL_SEP,
    )  # fmt: skip
    report = check_and_write(
        engine,
        plan,
        RowsReader(rows, PUSH_NAME),
        len(rows),
        queue_seed=queue_seed,
        progress=None,
        allow_duplicate_texts=allow_duplicate_texts,
        statistics=statistics,
    )
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def unchecked_batches(session: Session) -> list[int]:
    """Pool batches pushed over HTTP (format ``request``) with new items and no drift check
    yet, oldest first."""
    query = (
        select(ImportBatch.id)
        .where(
            ImportBatch.format == PUSH_FORMAT,
            ImportBatch.split == "pool",
            col(ImportBatch.imported) > 0,
            ImportBatch.drift == "{}",
        )
        .order_by(col(ImportBatch.id))
    )
    return [int(batch_id or 0) for batch_id in session.exec(query).all()]
