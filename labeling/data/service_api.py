"""The Workspace calls behind the HTTP API's data endpoints: items pushed from production
(``POST /items``) and the feed of label changes a training job follows (``GET /labels``).
:class:`labeling.workspace.Workspace` inherits them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labeling.annotation.progress import PoolCounts
from labeling.context import Context
from labeling.data import drift, label_changes, push
from labeling.data.importer import ImportReport
from labeling.store import db


class ServiceAPI(Context):
    """Items in over HTTP, label changes out."""

    def push_items(
        self,
        items: Sequence[dict[str, Any]],
        *,
        split: str = "pool",
        label_field: str | None = None,
        drift_check: bool = True,
        statistics: bool = True,
    ) -> ImportReport:
        """Import items given as objects (``{"id": ..., "text": ..., other fields}``), checked
        as ``import_file`` checks a file's rows, in one transaction: all or, on any fault,
        none. Ids already in the workspace are skipped and counted (``duplicates_in_store``).
        A pool push is checked for drift as an import is, unless ``drift_check`` is False
        (the HTTP server checks pushes in the background: :meth:`check_drift`)."""
        report = push.import_rows(
            self.engine,
            items,
            labels=self.labels,
            text_field="text",
            id_field="id",
            label_field=label_field,
            split=split,
            queue_seed=self.config.queue_seed,
            multilabel=self.multilabel,
            statistics=statistics,
        )
        if drift_check and split == "pool" and report.imported and report.batch_id is not None:
            report.drift = drift.check_batch(self, report.batch_id)
        PoolCounts.forget()
        return report

    def check_drift(self, batch_id: int) -> dict[str, object]:
        """Check a pool import batch for drift (labeling.data.drift), as an import does; the
        result is stored with the batch and returned."""
        return drift.check_batch(self, batch_id)

    def unchecked_pushes(self) -> list[int]:
        """Pool batches pushed over HTTP whose drift check has not run yet, oldest first."""
        with self._read() as session:
            return push.unchecked_batches(session)

    def refresh_statistics(self) -> None:
        """Bring the planner's statistics of the items and answers up to date after writes
        (PostgreSQL's ANALYZE; nothing on SQLite)."""
        db.refresh_statistics(self.engine, "item", "annotation")

    def label_changes(
        self, since: str | None = None, *, limit: int = 1_000
    ) -> label_changes.LabelPage:
        """The items whose final label changed after cursor ``since`` (none: from the start),
        oldest change first, at most ``limit``; the page's ``next`` is the cursor to go on
        from. An item is listed at its latest change only; a change made while a page is read
        comes in a later page, never before a cursor already handed out."""
        with self._read() as session:
            return label_changes.read_page(
                session, self.labels, since=since, limit=limit, multilabel=self.multilabel
            )
