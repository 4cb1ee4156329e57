"""``labelloop init``, ``import``, ``export`` and ``items``: data into and out of a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from labeling import figures
from labeling.cli.common import (
    DbOpt,
    JsonOpt,
    WorkspaceOpt,
    app,
    handle_errors,
    open_workspace,
    print_json,
    progress_bar,
)
from labeling.config import SINGLE_LABEL, parse_labels_option, parse_task_option
from labeling.data.importer import ImportReport, duplicate_texts_warning
from labeling.errors import BadInput
from labeling.store.db import display_url
from labeling.store.labelsets import DEFAULT_LABEL_SEP
from labeling.workspace import Workspace


@app.command(short_help="Create a workspace.")
@handle_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")],
    labels: Annotated[
        str, typer.Option("--labels", help="Comma-separated label names, in shortcut order.")
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Project name (default: the folder's name).")
    ] = None,
    text_field: Annotated[
        str, typer.Option("--text-field", help="Default text field for imports.")
    ] = "text",
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="single-label (one label per answer) or multi-label (a set); fixed for good.",
        ),
    ] = SINGLE_LABEL,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a workspace: labelloop.toml, the database and the lfs/ folder."""

    label_tuple = parse_labels_option(labels)
    task = parse_task_option(task)
    with Workspace.create(
        directory, labels=label_tuple, name=name, db_url=db, text_field=text_field, task=task
    ) as ws:
        result = {
            "workspace": str(directory),
            "labels": list(ws.labels),
            "task": ws.config.task,
            "database": display_url(ws.db_url),
        }
    if as_json:
        print_json(result)
    else:
        typer.echo(
            f"Created {task} workspace {directory} with labels {', '.join(label_tuple)}.\n"
            f"Next: labelloop import FILE -w {directory} --text-field FIELD"
        )


@app.command("import", short_help="Import items from CSV, TSV, JSONL or Parquet.")
@handle_errors
def import_(
    file: Annotated[Path, typer.Argument(help="CSV, TSV, JSONL or Parquet file.")],
    text_field: Annotated[
        str | None,
        typer.Option("--text-field", help="Field holding the text (default: the toml's)."),
    ] = None,
    id_field: Annotated[
        str | None,
        typer.Option(
            "--id-field", help="Field holding a unique id (default: an id made from the text)."
        ),
    ] = None,
    label_field: Annotated[
        str | None,
        typer.Option(
            "--label-field",
            help="Field holding labels: gold answers with --split gold, existing labels "
            "(recorded as annotations by 'import') with --split pool.",
        ),
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="pool (to label) or gold (to check quality).")
    ] = "pool",
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv, tsv, jsonl or parquet (default: from the extension)."),
    ] = None,
    label_sep: Annotated[
        str,
        typer.Option(
            "--label-sep",
            help="Multi-label workspaces: the separator of label names in a text cell.",
        ),
    ] = DEFAULT_LABEL_SEP,
    allow_duplicate_texts: Annotated[
        bool,
        typer.Option(
            "--allow-duplicate-texts",
            help="Import rows whose text is already in the workspace (or earlier in the file) "
            "under another id; by default they are skipped and counted.",
        ),
    ] = False,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import items. The whole file is checked first: a bad file changes nothing."""
    with open_workspace(workspace, db) as ws, progress_bar(not as_json) as progress:
        report = ws.import_file(
            file,
            text_field=text_field,
            id_field=id_field,
            label_field=label_field,
            split=split,
            format=fmt,
            progress=progress,
            allow_duplicate_texts=allow_duplicate_texts,
            label_sep=label_sep,
        )
    _report_import(file, split, report, as_json=as_json)


def _report_import(file: Path, split: str, report: ImportReport, *, as_json: bool) -> None:
    """Warnings (repeated texts, drift) on stderr, then the JSON document or the summary."""
    # Warnings go to stderr with or without --json (stdout holds only the JSON document).
    repeated = duplicate_texts_warning(report)
    if repeated:
        typer.echo(f"warning: {repeated}", err=True)
    found = report.drift or {}
    if found.get("drifted"):
        typer.echo(f"warning: drift: {found['message']}", err=True)
        if found.get("round"):
            typer.echo(f"Queued round {found['round']}; the new items are served first.", err=True)
    if as_json:
        print_json(report.to_dict())
        return
    typer.echo(_import_summary(file, split, report))
    if not found.get("drifted") and found.get("auc") is not None:
        typer.echo(
            f"Drift check: AUC {found['auc']:.2f} against the {found['reference']} items "
            f"(threshold {found['threshold']}): no drift."
        )


def _import_summary(file: Path, split: str, report: ImportReport) -> str:
    """One line: rows read, items imported, what was skipped and why, labels recorded."""
    return (
        f"{file}: read {report.rows_read:,} rows, imported {report.imported:,} {split} items, "
        f"skipped {report.duplicates:,} duplicate ids ({report.duplicates_in_file:,} within the "
        f"file, {report.duplicates_in_store:,} already in the workspace)"
        + (
            f" and {report.duplicate_texts:,} repeated "
            + ("text" if report.duplicate_texts == 1 else "texts")
            if report.duplicate_texts and not report.allow_duplicate_texts
            else ""
        )
        + (f", recorded {report.labels_recorded:,} labels" if report.labels_recorded else "")
        + f" in {report.seconds:.1f} s."
    )


@app.command(short_help="Export items with final labels, or the annotation log.")
@handle_errors
def export(
    out: Annotated[
        Path,
        typer.Argument(help="File to write (.csv, .jsonl or .parquet); a folder with --format hf."),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="csv, jsonl or parquet (default: from the extension), or hf: a Hugging Face "
            "dataset folder (pool labels as train, gold as test).",
        ),
    ] = None,
    annotations: Annotated[
        bool,
        typer.Option(
            "--annotations", help="Export the raw append-only annotation log instead of items."
        ),
    ] = False,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            help="Only items whose final label came from: human (answers: majority, tie-break, "
            "correction), import or adjudication; with --annotations, only annotations of "
            "that origin. Repeat for several.",
        ),
    ] = None,
    label_sep: Annotated[
        str,
        typer.Option(
            "--label-sep",
            help="Multi-label workspaces: the separator of label names in a CSV cell.",
        ),
    ] = DEFAULT_LABEL_SEP,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="Add one 0/1 column label:NAME per label."),
    ] = False,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export one row per item with its final label (or, with --annotations, every annotation)."""
    with open_workspace(workspace, db) as ws:
        report = ws.export(
            out,
            format=fmt,
            annotations=annotations,
            origins=origin,
            label_sep=label_sep,
            wide=wide,
        )
    if as_json:
        print_json(report.to_dict())
    elif report.splits is not None:
        sizes = ", ".join(f"{split} {n:,}" for split, n in report.splits.items())
        typer.echo(f"Wrote {report.rows:,} labelled items to {out} (Hugging Face: {sizes}).")
    else:
        typer.echo(f"Wrote {report.rows:,} {report.kind} to {out} ({report.format}).")


items_app = typer.Typer(
    help="Remove items from the workspace (soft delete) and restore them; list import batches.",
    no_args_is_help=True,
)

ItemIdsArg = Annotated[
    list[str] | None,
    typer.Argument(help="External ids of the items (as in the imported file).", show_default=False),
]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch", help="Every item of this import batch (see `items batches`).", show_default=False
    ),
]
IdFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--ids-from", help="A text file with one external id per line.", show_default=False
    ),
]


def _chosen_ids(
    ids: list[str] | None, ids_from: Path | None, batch: int | None
) -> list[str] | None:
    """The external ids named on the command line and in ``--ids-from``; None for a batch."""
    given = list(ids or [])
    if ids_from is not None:
        try:
            text = ids_from.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"option '--ids-from': cannot read {str(ids_from)!r}: {exc}") from exc
        given += [line.strip() for line in text.splitlines() if line.strip()]
    if batch is not None and given:
        raise BadInput("give item ids or --batch, not both")
    if batch is None and not given:
        raise BadInput("no items chosen: give external ids, --ids-from FILE or --batch N")
    return None if batch is not None else given


def _removal_output(verb: str, report: Any, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                verb: report.changed,
                "unchanged": report.unchanged,
                "leases_dropped": report.leases_dropped,
            }
        )
        return
    already = "removed" if verb == "removed" else "in place"
    line = f"{verb.capitalize()} {figures.plural(report.changed, 'item')}"
    if report.unchanged:
        line += f" ({figures.plural(report.unchanged, 'item')} already {already})"
    typer.echo(line + ".")


@items_app.command("remove", short_help="Remove items (soft delete: restorable).")
@handle_errors
def items_remove(
    ids: ItemIdsArg = None,
    batch: BatchOpt = None,
    ids_from: IdFileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take items out of the queue, rounds, metrics and export. Their answers, votes and weak
    labels stay, and `labelloop items restore` puts them back. An unknown id changes nothing."""
    chosen = _chosen_ids(ids, ids_from, batch)
    with open_workspace(workspace, db) as ws:
        report = ws.remove_items(chosen, batch=batch, by="command line")
    _removal_output("removed", report, as_json)


@items_app.command("restore", short_help="Put removed items back where they were.")
@handle_errors
def items_restore(
    ids: ItemIdsArg = None,
    batch: BatchOpt = None,
    ids_from: IdFileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore removed items to the pool or gold split they came from, answers and all."""
    chosen = _chosen_ids(ids, ids_from, batch)
    with open_workspace(workspace, db) as ws:
        report = ws.restore_items(chosen, batch=batch)
    _removal_output("restored", report, as_json)


@items_app.command("batches", short_help="List import batches and what is removed of them.")
@handle_errors
def items_batches(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every import batch: its number (for --batch), file, split, items and removed items."""
    with open_workspace(workspace, db) as ws:
        batches = ws.import_batches()
    if as_json:
        print_json(
            [
                {
                    "batch": b.batch_id,
                    "file": b.source_name,
                    "split": b.split,
                    "imported": b.imported,
                    "removed": b.removed,
                    "created_at": b.created_at,
                }
                for b in batches
            ]
        )
        return
    if not batches:
        typer.echo("No import batches yet: labelloop import FILE")
    for b in batches:
        removed = f", {b.removed:,} removed" if b.removed else ""
        items = figures.plural(b.imported, "item")
        typer.echo(
            f"{b.batch_id}\t{b.source_name}\t{b.split}\t{items}{removed}"
            f"\t{b.created_at:%Y-%m-%d %H:%M}"
        )
