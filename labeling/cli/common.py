"""What every ``labelloop`` command shares: the Typer app, the common options, the error
handler that turns labelloop's errors into one line and an exit code, JSON output and the
progress bar."""

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

from labeling import __version__
from labeling.errors import LabelloopError
from labeling.workspace import Workspace

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


def one_line(message: str) -> str:
    return " ".join(str(message).split())


def handle_errors(fn: F) -> F:
    """Turn labelloop's own errors into ``error: ...`` and an exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LabelloopError as exc:
            typer.echo(f"error: {one_line(str(exc))}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except SQLAlchemyError as exc:
            # The database failed under us (unreachable, disk full, a constraint): the
            # transaction was rolled back, so nothing was written.
            detail = getattr(exc, "orig", None) or exc
            typer.echo(f"error: database error: {one_line(str(detail))[:500]}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("error: interrupted; nothing was written by the interrupted step", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def open_workspace(workspace: Path, db: str | None) -> Workspace:
    return Workspace.open(workspace, db_url=db)


def echo_err(line: str) -> None:
    typer.echo(line, err=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    # rich: only the progress bar on a terminal needs it
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
