"""The ``labelloop`` command line: a thin Typer layer over :class:`labeling.Workspace`.

User mistakes print one line ``error: ...`` on stderr and exit 2; failures exit 1. ``--json``
prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from labeling.errors import LabelloopError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="labelloop",
    help=(
        "labelloop: active-learning labelling for text classification. Create a workspace, "
        "import texts, hand them to annotators (who never get the same item twice), export "
        "the labels. Every command takes -w/--workspace and --db; --json prints one JSON "
        "document. Errors: one line on stderr, exit 2 for bad input, 1 for failures."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
user_app = typer.Typer(help="Manage annotators and their sign-in tokens.", no_args_is_help=True)
app.add_typer(user_app, name="user")

WorkspaceOpt = Annotated[
    Path,
    typer.Option(
        "-w",
        "--workspace",
        help="Workspace folder (default: the current folder).",
        show_default=False,
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy database URL; overrides LABELLOOP_DB and the workspace's toml.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def handle_errors(fn: F) -> F:
    """Turn labelloop's own errors into ``error: ...`` and an exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LabelloopError as exc:
            typer.echo(f"error: {_one_line(str(exc))}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except SQLAlchemyError as exc:
            # The database failed under us (unreachable, disk full, a constraint): the
            # transaction was rolled back, so nothing was written.
            detail = getattr(exc, "orig", None) or exc
            typer.echo(f"error: database error: {_one_line(str(detail))[:500]}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("error: interrupted; nothing was written by the interrupted step", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _open(workspace: Path, db: str | None) -> Any:
    from labeling.workspace import Workspace

    return Workspace.open(workspace, db_url=db)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done)

        yield update


def _version(value: bool) -> None:
    if value:
        from labeling import __version__

        typer.echo(f"labelloop {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Top-level options."""


# ---------------------------------------------------------------------------- commands


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
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a workspace: labelloop.toml, the database and the lfs/ folder."""
    from labeling.config import parse_labels_option
    from labeling.db import display_url
    from labeling.workspace import Workspace

    label_tuple = parse_labels_option(labels)
    with Workspace.create(
        directory, labels=label_tuple, name=name, db_url=db, text_field=text_field
    ) as ws:
        result = {
            "workspace": str(directory),
            "labels": list(ws.labels),
            "database": display_url(ws.db_url),
        }
    if as_json:
        _print_json(result)
    else:
        typer.echo(
            f"Created workspace {directory} with labels {', '.join(label_tuple)}.\n"
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
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import items. The whole file is checked first: a bad file changes nothing."""
    with _open(workspace, db) as ws, _progress(not as_json) as progress:
        report = ws.import_file(
            file,
            text_field=text_field,
            id_field=id_field,
            label_field=label_field,
            split=split,
            format=fmt,
            progress=progress,
        )
    if as_json:
        _print_json(report.to_dict())
        return
    typer.echo(
        f"{file}: read {report.rows_read:,} rows, imported {report.imported:,} {split} items, "
        f"skipped {report.duplicates:,} duplicate ids ({report.duplicates_in_file:,} within the "
        f"file, {report.duplicates_in_store:,} already in the workspace)"
        + (f", recorded {report.labels_recorded:,} labels" if report.labels_recorded else "")
        + f" in {report.seconds:.1f} s."
    )


@app.command(short_help="Export items with final labels, or the annotation log.")
@handle_errors
def export(
    out: Annotated[Path, typer.Argument(help="File to write (.csv, .jsonl or .parquet).")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv, jsonl or parquet (default: from the extension)."),
    ] = None,
    annotations: Annotated[
        bool,
        typer.Option(
            "--annotations", help="Export the raw append-only annotation log instead of items."
        ),
    ] = False,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export one row per item with its final label (or, with --annotations, every annotation)."""
    with _open(workspace, db) as ws:
        report = ws.export(out, format=fmt, annotations=annotations)
    if as_json:
        _print_json(report.to_dict())
    else:
        typer.echo(f"Wrote {report.rows:,} {report.kind} to {out} ({report.format}).")


@app.command(short_help="Show counts: items, labels, annotators, rounds.")
@handle_errors
def status(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts: items by split, labelled items, annotations, annotators, rounds."""
    with _open(workspace, db) as ws:
        info = ws.status()
    if as_json:
        _print_json(info)
        return
    items = info["items"]
    typer.echo(
        f"Workspace {info['workspace']} ({info['database']})\n"
        f"  labels:      {', '.join(info['labels'])}\n"
        f"  items:       {items['total']:,} ({items['pool']:,} pool, {items['gold']:,} gold)\n"
        f"  labelled:    {items['labelled']:,} of {items['pool']:,} pool items "
        f"({info['coverage']['human']:.1%})\n"
        f"  annotations: {info['annotations']:,} current labels, {info['skips']:,} skips\n"
        f"  by label:    "
        + ", ".join(f"{k} {v:,}" for k, v in info["annotations_by_label"].items())
        + f"\n  annotators:  {info['annotators']:,} active\n"
        f"  rounds:      {info['rounds']:,}"
    )


@user_app.command("add", short_help="Add an annotator; prints their token once.")
@handle_errors
def user_add(
    name: Annotated[str, typer.Argument(help="Annotator name (unique).")],
    role: Annotated[
        str, typer.Option("--role", help="annotator, engineer or admin.")
    ] = "annotator",
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an annotator and print their sign-in token (shown once, stored only hashed)."""
    with _open(workspace, db) as ws:
        annotator, token = ws.add_user(name, role=role)
    if as_json:
        _print_json({"name": annotator.name, "role": annotator.role, "token": token})
    else:
        typer.echo(
            f"Added {annotator.role} {annotator.name!r}. Sign-in token (shown only now):\n{token}"
        )


@user_app.command("list", short_help="List annotators and roles.")
@handle_errors
def user_list(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List annotators with their roles (tokens are never shown again)."""
    with _open(workspace, db) as ws:
        people = [
            {"name": a.name, "role": a.role, "active": a.active, "created_at": a.created_at}
            for a in ws.list_users()
        ]
    if as_json:
        _print_json(people)
        return
    if not people:
        typer.echo("No annotators yet: labelloop user add NAME --role annotator")
    for person in people:
        state = "" if person["active"] else " (deactivated)"
        typer.echo(f"{person['name']}\t{person['role']}{state}")


@user_app.command("deactivate", short_help="Revoke an annotator's token.")
@handle_errors
def user_deactivate(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Revoke an annotator's token; their annotations stay."""
    with _open(workspace, db) as ws:
        ws.deactivate_user(name)
    typer.echo(f"Deactivated {name!r}; their token no longer signs in.")


HostOpt = Annotated[
    str,
    typer.Option(
        "--host", help="Address to listen on; other than loopback, others can reach the UI."
    ),
]
PortOpt = Annotated[int, typer.Option("--port", help="Port to listen on.")]
LinkHoursOpt = Annotated[
    float,
    typer.Option("--link-hours", min=0.01, help="How long the printed admin sign-in link works."),
]


@app.command(short_help="Start the labelling UI in the browser.")
@handle_errors
def serve(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8501,
    link_hours: LinkHoursOpt = 24.0,
) -> None:
    """Serve the Streamlit UI for a workspace and print a sign-in link for the first admin."""
    from labeling.server import serve as run_server

    code = run_server(
        workspace, db_url=db, host=host, port=port, link_hours=link_hours, echo=typer.echo
    )
    raise typer.Exit(0 if code in (0, -15, 143) else 1)


@app.command(short_help="Build a workspace on the bundled demo data and serve it.")
@handle_errors
def demo(
    directory: Annotated[Path, typer.Argument(help="Folder for the demo workspace.")] = Path(
        "labelloop-demo"
    ),
    db: DbOpt = None,
    as_json: JsonOpt = False,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Only build the workspace; do not start the UI.")
    ] = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8501,
) -> None:
    """Create a workspace on the bundled demo data (support messages, 5 classes), then serve it."""
    from labeling.demo import build_demo

    info = build_demo(directory, db_url=db)
    if as_json:
        _print_json(info)
        return
    typer.echo(info["message"])
    if no_serve:
        return
    typer.echo("")
    from labeling.server import serve as run_server

    code = run_server(directory, db_url=db, host=host, port=port, echo=typer.echo)
    raise typer.Exit(0 if code in (0, -15, 143) else 1)


def main() -> None:
    app(prog_name="labelloop")


if __name__ == "__main__":
    main()
