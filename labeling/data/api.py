"""The Workspace calls for data in and out: import (with its drift check), preview, export,
removal and restore, import batches, search. :class:`labeling.workspace.Workspace` inherits them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labeling.annotation.progress import PoolCounts
from labeling.context import Context, ProgressCallback
from labeling.data import drift, exporter, hf_export, importer, removal, search
from labeling.errors import BadInput
from labeling.rounds import predictions
from labeling.store import labelsets
from labeling.store.labelsets import DEFAULT_LABEL_SEP
from labeling.store.models import ImportBatch


class DataAPI(Context):
    """Items in and out of the store."""

    def import_file(
        self,
        path: str | Path,
        *,
        text_field: str | None = None,
        id_field: str | None = None,
        label_field: str | None = None,
        split: str = "pool",
        format: str | None = None,
        progress: ProgressCallback | None = None,
        allow_duplicate_texts: bool = False,
        source_name: str | None = None,
        label_sep: str = DEFAULT_LABEL_SEP,
    ) -> importer.ImportReport:
        """Import a CSV/TSV, JSONL or Parquet file; all of it or, on any fault, nothing.

        Rows whose text is already in the workspace (or earlier in the file) under another id
        are skipped and counted, unless ``allow_duplicate_texts``. ``source_name``: what
        messages call the file (an upload's own name; default: the path).

        A pool import is then checked for drift against the labelled items (labeling.data.drift);
        the result is on the report and stored with the import batch.
        """
        report = importer.run_import(
            self.engine,
            Path(path),
            labels=self.labels,
            text_field=text_field or self.config.text_field,
            id_field=id_field,
            label_field=label_field,
            split=split,
            fmt=format,
            queue_seed=self.config.queue_seed,
            progress=progress,
            allow_duplicate_texts=allow_duplicate_texts,
            source_name=source_name,
            multilabel=self.multilabel,
            label_sep=label_sep,
        )
        if split == "pool" and report.imported and report.batch_id is not None:
            report.drift = drift.check_batch(self, report.batch_id)
        PoolCounts.forget()
        return report

    def export(
        self,
        out: str | Path,
        *,
        format: str | None = None,
        annotations: bool = False,
        origins: list[str] | tuple[str, ...] | None = None,
        label_sep: str = DEFAULT_LABEL_SEP,
        wide: bool = False,
    ) -> exporter.ExportReport:
        """Write one row per item (or the annotation log) as CSV, JSONL or Parquet; or, with
        ``format="hf"``, the labelled items as a Hugging Face dataset folder ``out``
        (labeling.data.hf_export: pool labels as ``train``, gold as ``test``).

        ``origins`` (``human``, ``import``, ``adjudication``): only the annotations of those
        origins, or the items whose final label they decided. A multi-label workspace writes
        label sets as names joined by ``label_sep`` in CSV, lists in JSONL and Parquet;
        ``wide`` adds one 0/1 column ``label:NAME`` per label.
        """
        if format == "hf":
            if annotations or origins or wide:
                raise BadInput(
                    "--format hf exports the labelled items: --annotations, --origin and "
                    "--wide do not apply to it"
                )
            return hf_export.run_hf_export(
                self.engine,
                Path(out),
                labels=self.labels,
                multilabel=self.multilabel,
                name=self.config.name,
            )
        return exporter.run_export(
            self.engine,
            Path(out),
            labels=self.labels,
            fmt=format,
            annotations=annotations,
            round_predictions=lambda round_id: predictions.load(self, round_id),
            origins=origins,
            form=exporter.LabelForm(multilabel=self.multilabel, sep=label_sep, wide=wide),
        )

    def remove_items(
        self,
        external_ids: Sequence[str] | None = None,
        *,
        batch: int | None = None,
        by: str | None = None,
    ) -> removal.RemovalReport:
        """Remove items (by external id, or a whole import batch) from the queue, rounds,
        metrics and export; their answers stay, and :meth:`restore_items` brings them back."""
        with self._write() as session:
            report = removal.remove_items(session, external_ids=external_ids, batch_id=batch, by=by)
        PoolCounts.forget()
        return report

    def restore_items(
        self, external_ids: Sequence[str] | None = None, *, batch: int | None = None
    ) -> removal.RemovalReport:
        """Put removed items back where they were (pool or gold), answers and all."""
        with self._write() as session:
            report = removal.restore_items(session, external_ids=external_ids, batch_id=batch)
        PoolCounts.forget()
        return report

    def import_batches(self) -> list[removal.BatchInfo]:
        """Every import batch, with how many of its items are removed."""
        with self._read() as session:
            return removal.list_batches(session)

    def preview_file(
        self,
        path: str | Path,
        *,
        fmt: str | None = None,
        rows: int = 20,
        source_name: str | None = None,
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """The field names and first ``rows`` rows of a file, read as :meth:`import_file` reads
        it (the Data page's field mapping); nothing is validated beyond what parsing needs."""
        return importer.preview(Path(path), fmt=fmt, rows=rows, source_name=source_name)

    def stop_priority(self, batch_id: int) -> None:
        """End the queue priority a drifted import was given."""
        with self._write() as session:
            batch = session.get(ImportBatch, batch_id)
            if batch is None:
                raise BadInput(f"import batch {batch_id} does not exist")
            batch.priority_left = 0
            session.add(batch)

    def search(
        self,
        query: str = "",
        *,
        limit: int = search.DEFAULT_LIMIT,
        offset: int = 0,
        **filters: Any,
    ) -> dict[str, Any]:
        """Find items by words and filters (labeling.data.search): ``{"total", "items",
        "counts", "offset", "limit"}``; ``total`` is exact, ``items`` one page of it.

        ``filters`` are :class:`~labeling.data.search.SearchQuery`'s fields (label,
        unlabelled, annotator, origin, predicted, min_confidence, max_confidence, weak_label,
        min_weak_confidence, max_weak_confidence, lf, disagreement, flagged, split, batch,
        sort, native); a wrong one raises BadInput naming it.
        """
        found = search.query_from_options(self.labels, text=query, **filters)
        result = search.search(self, found, limit=limit, offset=offset).as_dict()
        if self.multilabel:  # counts per label a set holds ("": unlabelled), not per set
            counts = result["counts"]
            result["counts"] = {
                **{k: v for k, v in labelsets.per_label(counts, self.labels, True).items() if v},
                **({"": counts[""]} if counts.get("") else {}),
            }
        return result
