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

from labeling import figures
from labeling.errors import BadInput, LabelloopError

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
rounds_app = typer.Typer(
    help="Retraining rounds: list them, promote one, roll back.", no_args_is_help=True
)
app.add_typer(rounds_app, name="rounds")
lf_app = typer.Typer(
    help="Labelling functions: list, add rules, apply, fit weak labels, analyse.",
    no_args_is_help=True,
)
app.add_typer(lf_app, name="lf")

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


def _echo_err(line: str) -> None:
    typer.echo(line, err=True)


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
    from labeling.store.db import display_url
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
    from labeling.data.importer import duplicate_texts_warning

    with _open(workspace, db) as ws, _progress(not as_json) as progress:
        report = ws.import_file(
            file,
            text_field=text_field,
            id_field=id_field,
            label_field=label_field,
            split=split,
            format=fmt,
            progress=progress,
            allow_duplicate_texts=allow_duplicate_texts,
        )
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
        _print_json(report.to_dict())
        return
    typer.echo(
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
    if not found.get("drifted") and found.get("auc") is not None:
        typer.echo(
            f"Drift check: AUC {found['auc']:.2f} against the {found['reference']} items "
            f"(threshold {found['threshold']}): no drift."
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
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            help="Only items whose final label came from: human (answers: majority, tie-break, "
            "correction), import or adjudication; with --annotations, only annotations of "
            "that origin. Repeat for several.",
        ),
    ] = None,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export one row per item with its final label (or, with --annotations, every annotation)."""
    with _open(workspace, db) as ws:
        report = ws.export(out, format=fmt, annotations=annotations, origins=origin)
    if as_json:
        _print_json(report.to_dict())
    else:
        typer.echo(f"Wrote {report.rows:,} {report.kind} to {out} ({report.format}).")


@app.command(short_help="Take a consistent copy of the store while people keep labelling.")
@handle_errors
def backup(
    out: Annotated[Path, typer.Argument(help="File to write (must not exist yet).")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """SQLite: the SQLite backup API (online, consistent). PostgreSQL: pg_dump --format=custom."""
    with _open(workspace, db) as ws:
        found = ws.backup(out)
    if as_json:
        _print_json(found)
    else:
        typer.echo(f"Wrote a {found['kind']} backup to {out} ({found['bytes'] / 1e6:,.1f} MB).")


@app.command(short_help="Check the store's integrity and labelloop's invariants.")
@handle_errors
def doctor(
    fix: Annotated[
        bool,
        typer.Option("--fix", help="Repair label counts from the log and fail dead rounds."),
    ] = False,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Exit 0 when every check passes (or was repaired with --fix), 1 otherwise."""
    with _open(workspace, db) as ws:
        found = ws.doctor(fix=fix)
    if as_json:
        _print_json(found)
    else:
        schema = found["schema"]
        typer.echo(f"schema revision: {schema['revision']} (newest known: {schema['head']})")
        for check in found["checks"]:
            state = "ok" if check["ok"] else f"{check['count']} problem(s)"
            if check["fixed"]:
                state += f", {check['fixed']} fixed"
            typer.echo(f"{check['check']}: {state}")
            for problem in check["problems"]:
                typer.echo(f"  {problem}")
    if not found["ok"]:
        raise typer.Exit(1)


@app.command(short_help="Write a self-contained HTML report of every metric.")
@handle_errors
def report(
    out: Annotated[Path, typer.Argument(help="HTML file to write.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the Metrics page as one HTML file: charts as inline SVG, no scripts, no network."""
    with _open(workspace, db) as ws:
        path = ws.write_report(out)
    if as_json:
        _print_json({"report": str(path), "bytes": path.stat().st_size})
    else:
        typer.echo(f"Wrote the report to {path} ({path.stat().st_size / 1024:,.0f} KB).")


@app.command(short_help="Show counts, label quality, coverage and model metrics.")
@handle_errors
def status(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts, label quality, coverage, model metrics, drift and the stopping hint.

    --json carries every number under the keys documented in docs/status.md.
    """
    from labeling.quality.core import drift_check  # heavy (pandas, scikit-learn): only here

    with _open(workspace, db) as ws:
        info = ws.status(metrics=True)
    if as_json:
        _print_json(info)
        return
    items = info["items"]
    cover = info["coverage"]
    quality = info["quality"]
    model = info["model"]
    promoted = next((r for r in model["rounds"] if r["round"] == model["promoted"]), None)

    pct, num = figures.share, figures.score
    review = quality["review"]["counts"]
    lines = [
        "  coverage:    "
        + "; ".join(f"{name} {pct(cover[key])}" for key, name, _text in figures.COVERAGE_FIGURES),
        f"  gold checks: {figures.plural(quality['gold']['n'], 'current answer')}, accuracy "
        f"{pct(quality['gold']['accuracy'])}",
        f"  agreement:   Krippendorff's alpha {num(quality['agreement']['alpha'])} on "
        f"{figures.plural(quality['agreement']['alpha_items'], 'pool item')}",
        "  model:       "
        + (
            f"round {promoted['round']}, macro-F1 {num(promoted['macro_f1'])} "
            f"({promoted['evaluation']})"
            if promoted
            else "none promoted"
        ),
        f"  review:      {review['disagreement']:,} disagreements, {review['model']:,} model, "
        f"{review['weak']:,} weak, {review['likely_error']:,} likely errors",
        f"  stopping:    {info['stopping']['message']}",
    ]
    lines += [
        f"  warning:     {drift_check(d)} {d['message']}" for d in info["drift"] if d.get("drifted")
    ]
    lines += [f"  drift:       {drift_check(d)}" for d in info["drift"] if not d.get("drifted")]
    typer.echo(
        f"Workspace {info['workspace']} ({info['database']})\n"
        f"  labels:      {', '.join(info['labels'])}\n"
        f"  items:       {items['total']:,} ({items['pool']:,} pool, {items['gold']:,} gold)\n"
        f"  labelled:    {items['labelled']:,} of {figures.plural(items['pool'], 'pool item')} "
        f"have a current label\n"
        f"  annotations: {figures.plural(info['annotations'], 'current label')}, "
        f"{figures.plural(info['skips'], 'skip')}\n"
        f"  by label:    "
        + ", ".join(f"{k} {v:,}" for k, v in info["annotations_by_label"].items())
        + f"\n  people:      {figures.people(info['people_by_role'])} (active)\n"
        f"  rounds:      {info['rounds']:,}\n" + "\n".join(lines)
    )


@user_app.command("add", short_help="Add an annotator; prints their token once.")
@handle_errors
def user_add(
    name: Annotated[str, typer.Argument(help="Annotator name (unique).")],
    role: Annotated[
        str, typer.Option("--role", help="annotator, engineer, lead or admin.")
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


@user_app.command("deactivate", short_help="Revoke a person's token and end their sessions.")
@handle_errors
def user_deactivate(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Revoke a person's token and sign-in links; their signed-in browsers are signed out at
    their next request. Their annotations stay."""
    with _open(workspace, db) as ws:
        ws.deactivate_user(name)
    typer.echo(f"Deactivated {name!r}; their token no longer signs in.")


@user_app.command("role", short_help="Change a person's role.")
@handle_errors
def user_role(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    role: Annotated[str, typer.Argument(help="annotator, engineer, lead or admin.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Change a person's role; it takes effect at their next click (the last active admin
    keeps theirs)."""
    with _open(workspace, db) as ws:
        annotator = ws.set_user_role(name, role)
    typer.echo(f"{annotator.name!r} is now {annotator.role}.")


def _echo_token(message: str, annotator_name: str, token: str, as_json: bool) -> None:
    if as_json:
        _print_json({"name": annotator_name, "token": token})
    else:
        typer.echo(f"{message} Sign-in token (shown only now):\n{token}")


@user_app.command("reactivate", short_help="Let a deactivated person sign in again.")
@handle_errors
def user_reactivate(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Switch a deactivated person back on with a new token, printed once (their old token
    stays revoked)."""
    with _open(workspace, db) as ws:
        annotator, token = ws.reactivate_user(name)
    _echo_token(f"Reactivated {annotator.name!r}.", annotator.name, token, as_json)


@user_app.command("new-token", short_help="Replace a person's token; prints the new one once.")
@handle_errors
def user_new_token(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a person a new sign-in token, printed once. The old token, their sign-in links and
    their signed-in browsers stop working."""
    with _open(workspace, db) as ws:
        annotator, token = ws.new_user_token(name)
    _echo_token(
        f"New token for {annotator.name!r}; the old one no longer signs in.",
        annotator.name,
        token,
        as_json,
    )


@user_app.command("revoke-links", short_help="Revoke every sign-in link serve printed.")
@handle_errors
def user_revoke_links(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Revoke the launch sign-in links of every server on this store, on any host: for a
    server that died without revoking its own. Running servers keep serving; the links they
    printed stop signing in (signed-in browsers stay signed in)."""
    with _open(workspace, db) as ws:
        revoked = ws.revoke_sign_in_links()
    typer.echo(f"Revoked {revoked} sign-in link(s).")


def _retrain_json(summary: dict[str, Any]) -> dict[str, Any]:
    metrics = summary["metrics"]
    return {
        "round": summary["round"],
        "status": summary["status"],
        "promoted": summary["promoted"],
        "error": summary["error"],
        "metrics": {
            "gold_accuracy": metrics.get("gold_accuracy"),
            "gold_macro_f1": metrics.get("gold_macro_f1"),
            "n_human": summary["n_human"],
            "n_weak": summary["n_weak"],
            **{k: v for k, v in metrics.items() if k not in ("gold",)},
        },
    }


@app.command(short_help="Run a retraining round now.")
@handle_errors
def retrain(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="Query strategy for this round (default: the toml's)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train on the labels so far, evaluate on gold, re-rank the queue; promote if not worse."""
    from labeling.rounds import core as rounds

    def stage(text: str) -> None:
        if not as_json:
            typer.echo(f"  {text}...", err=True)

    with _open(workspace, db) as ws:
        rounds.lower_priority(ws.config.round_nice)
        done = rounds.retrain(ws, strategy=strategy, progress=stage)
        summary = rounds.round_summary(done)
    if as_json:
        _print_json(_retrain_json(summary))
    else:
        _echo_round(summary)
    if summary["status"] != "succeeded":
        raise typer.Exit(1)


def _echo_round(summary: dict[str, Any]) -> None:
    metrics = summary["metrics"]
    if summary["status"] != "succeeded":
        typer.echo(f"Round {summary['round']} {summary['status']}: {summary['error']}")
        return
    if metrics.get("evaluation") == "gold":
        quality = (
            f"gold accuracy {metrics['gold_accuracy']:.3f}, "
            f"macro-F1 {metrics['gold_macro_f1']:.3f} on {metrics['gold']['n']} gold items"
        )
    elif metrics.get("evaluation") == "cross-validation":
        quality = (
            f"no gold items; {metrics['cv']['folds']}-fold cross-validated accuracy "
            f"{metrics['cv_accuracy']:.3f}, macro-F1 {metrics['cv_macro_f1']:.3f}"
        )
    else:
        quality = metrics.get("note", "not evaluated")
    typer.echo(
        f"Round {summary['round']} succeeded ({metrics.get('seconds', '?')} s): "
        f"{summary['n_human']} human + {summary['n_weak']} weak labels, "
        f"strategy {summary['strategy']}; {quality}. "
        + ("Promoted: the queue now follows it." if summary["promoted"] else "Not promoted")
        + f" ({metrics.get('promotion', '')})."
    )


@rounds_app.command("list", short_help="Every round with status and gold metrics.")
@handle_errors
def rounds_list(
    workspace: WorkspaceOpt = Path("."), db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Every round: status, trigger, labels used, gold metrics, promoted."""
    from labeling.rounds import core as rounds

    with _open(workspace, db) as ws:
        summaries = [rounds.round_summary(r) for r in rounds.list_rounds(ws)]
    if as_json:
        for summary in summaries:
            summary["metrics"].pop("gold", None)
        _print_json({"rounds": summaries})
        return
    if not summaries:
        typer.echo("No rounds yet; run `labelloop retrain`.")
        return
    typer.echo(
        f"{'round':>5}  {'status':<9} {'trigger':<16} {'human':>6} {'weak':>6} "
        f"{'gold acc':>8} {'gold F1':>8}  promoted"
    )
    for s in summaries:
        acc = "-" if s["gold_accuracy"] is None else f"{s['gold_accuracy']:.3f}"
        f1 = "-" if s["gold_macro_f1"] is None else f"{s['gold_macro_f1']:.3f}"
        typer.echo(
            f"{s['round']:>5}  {s['status']:<9} {str(s['trigger'])[:16]:<16} {s['n_human']:>6} "
            f"{s['n_weak']:>6} {acc:>8} {f1:>8}  {'yes' if s['promoted'] else ''}"
        )


@rounds_app.command("promote", short_help="Make a round's ranking order the queue.")
@handle_errors
def rounds_promote(
    round_id: Annotated[int, typer.Argument(help="Round number.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Promote a succeeded round by hand, whatever its metrics."""
    from labeling.rounds import core as rounds

    with _open(workspace, db) as ws:
        summary = rounds.round_summary(rounds.promote(ws, round_id))
    if as_json:
        _print_json({"round": summary["round"], "promoted": True})
        return
    typer.echo(f"Round {round_id} is promoted; the queue follows its scores.")


@rounds_app.command("rollback", short_help="Go back to the previously promoted round.")
@handle_errors
def rounds_rollback(
    workspace: WorkspaceOpt = Path("."), db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Promote again the round that was promoted before the current one."""
    from labeling.rounds import core as rounds

    with _open(workspace, db) as ws:
        summary = rounds.round_summary(rounds.rollback(ws))
    if as_json:
        _print_json({"round": summary["round"], "promoted": True})
        return
    typer.echo(f"Rolled back: round {summary['round']} is promoted again.")


@app.command(short_help="Play the loop on a labelled file to see what active learning buys.")
@handle_errors
def simulate(
    data: Annotated[Path, typer.Argument(help="A fully labelled CSV, TSV, JSONL or Parquet file.")],
    text_field: Annotated[str, typer.Option("--text-field", help="Field holding the text.")],
    label_field: Annotated[str, typer.Option("--label-field", help="Field holding the label.")],
    test: Annotated[
        Path | None, typer.Option("--test", help="A labelled test file (same fields).")
    ] = None,
    test_size: Annotated[
        float,
        typer.Option("--test-size", min=0.05, max=0.9, help="Held-out share when no --test."),
    ] = 0.25,
    strategy: Annotated[
        list[str] | None,
        typer.Option("--strategy", help="Strategy to compare (repeat); random is the baseline."),
    ] = None,
    budget: Annotated[int, typer.Option("--budget", min=1, help="Labels per run.")] = 200,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Labels per round.")] = 10,
    seeds: Annotated[int, typer.Option("--seeds", min=1, max=100, help="Runs to average.")] = 5,
    featurizer: Annotated[str, typer.Option("--featurizer", help="Featurizer name.")] = "tfidf",
    lfs_file: Annotated[
        Path | None,
        typer.Option("--lfs", help="An LF file: its weak labels join training, as in rounds."),
    ] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Write learning curves to .html (or .png).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate labelling with the file's labels as the oracle, for each strategy and seed."""
    from labeling.data.importer import read_labelled
    from labeling.rounds.simulate import simulate as run_simulation
    from labeling.rounds.simulate import write_chart

    texts, labels, _rows = read_labelled(data, text_field=text_field, label_field=label_field)
    test_texts = test_labels = None
    if test is not None:
        test_texts, test_labels, _ = read_labelled(
            test, text_field=text_field, label_field=label_field
        )
    names = list(dict.fromkeys(["random", *(strategy or ["diverse_uncertainty"])]))
    weak_labels = weak_confidence = None
    weak_report = None
    label_names = sorted(set(labels) | set(test_labels or []))
    if lfs_file is not None:
        from labeling.weak.lfs import weak_labels_for_file

        weak_labels, weak_confidence, weak_report = weak_labels_for_file(
            lfs_file, label_names, _rows, texts
        )
    try:
        report = run_simulation(
            texts,
            labels,
            test_texts=test_texts,
            test_labels=test_labels,
            test_size=test_size,
            strategies=names,
            budget=budget,
            batch=batch,
            seeds=seeds,
            featurizer=featurizer,
            label_names=label_names,
            weak_labels=weak_labels,
            weak_confidence=weak_confidence,
            progress=None if as_json else (lambda text: typer.echo(f"  {text}", err=True)),
        )
    except (ValueError, KeyError) as exc:
        raise LabelloopError(str(exc)) from exc
    if weak_report is not None:
        report["weak_supervision"] = weak_report
    if chart is not None:
        write_chart(report, chart)
    if as_json:
        _print_json(report)
        return
    if weak_report is not None:
        typer.echo(
            f"Weak labels from {weak_report['lfs']} LFs ({weak_report['model']}): "
            f"{weak_report['coverage']:.1%} of the pool covered."
        )
    full = report["full_supervision"]
    typer.echo(
        f"Full supervision ({report['settings']['pool']:,} labels): accuracy "
        f"{full['accuracy']:.3f}, macro-F1 {full['macro_f1']:.3f}; 95% of it is "
        f"{report['target_macro_f1']:.3f}."
    )
    for name, result in report["strategies"].items():
        last = result["curve"][-1]
        reached = result["labels_to_95pct"]
        typer.echo(
            f"  {name:<22} macro-F1 {last['macro_f1']:.3f} at {last['labels']} labels; "
            + (f"95% reached at {reached} labels" if reached else "95% not reached")
        )
    if chart is not None:
        typer.echo(f"Chart: {chart}")


EngineOpt = Annotated[
    str, typer.Option("--engine", help="local (vectorised), snorkel (PandasLFApplier) or dask.")
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler", help="dask: address of a running scheduler (default: a LocalCluster)."
    ),
]


@lf_app.command("list", short_help="Every LF and rule, with votes and faults.")
@handle_errors
def lf_list(
    workspace: WorkspaceOpt = Path("."), db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Code LFs from lfs/ and stored rules: kind, label, active, applied, votes, faults."""
    from labeling.weak import lfs

    with _open(workspace, db) as ws:
        loaded = lfs.load(ws)
        rows = lfs.list_lfs(ws)
    if as_json:
        _print_json({"lfs": rows, "errors": loaded.errors})
        return
    for error in loaded.errors:
        typer.echo(f"warning: {error}", err=True)
    if not rows:
        typer.echo("No LFs yet: put LF files in lfs/ or add a rule with `labelloop lf add-rule`.")
        return
    for r in rows:
        state = ("active" if r["active"] else "inactive") + (
            "" if r["applied"] else ", not applied"
        )
        faults = r["stats"].get("faults", 0)
        # A code LF without label= has no declared label: show the labels its votes name.
        label = r["label"] or ",".join(r["polarity"]) or "-"
        typer.echo(
            f"{r['name']:<28} {r['kind']:<8} {label:<12} {r['votes']:>8,} votes"
            f"  {state}" + (f", {faults} faults" if faults else "")
        )


KeywordsOpt = Annotated[
    str | None, typer.Option("--keywords", help="Comma-separated words: a keyword rule.")
]
RegexOpt = Annotated[
    str | None, typer.Option("--regex", help="An RE2 pattern (linear time): a regex rule.")
]


def _rule_spec(
    name: str,
    label: str,
    keywords: str | None,
    regex: str | None,
    case_sensitive: bool,
    substring: bool,
) -> dict[str, Any]:
    if (keywords is None) == (regex is None):
        raise BadInput("give exactly one of --keywords and --regex")
    if keywords is not None:
        return {
            "kind": "keyword",
            "name": name,
            "label": label,
            "keywords": [w.strip() for w in keywords.split(",") if w.strip()],
            "case_sensitive": case_sensitive,
            "whole_word": not substring,
        }
    return {
        "kind": "regex",
        "name": name,
        "label": label,
        "pattern": regex,
        "case_sensitive": case_sensitive,
    }


def _matches(preview: dict[str, Any]) -> str:
    return f"matches {preview['matches']:,} of {preview['pool']:,} pool items" + (
        f"; {preview['correct']}/{preview['human_labelled_matches']} right on human labels"
        if preview["accuracy"] is not None
        else ""
    )


@lf_app.command("add-rule", short_help="Store a keyword or regex rule.")
@handle_errors
def lf_add_rule(
    name: Annotated[str, typer.Argument(help="Rule name (unique among LFs).")],
    label: Annotated[str, typer.Option("--label", help="The label it votes for.")],
    keywords: KeywordsOpt = None,
    regex: RegexOpt = None,
    case_sensitive: Annotated[
        bool, typer.Option("--case-sensitive", help="Match case (default: ignore case).")
    ] = False,
    substring: Annotated[
        bool, typer.Option("--substring", help="Keywords match inside words too.")
    ] = False,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Add a rule: any of --keywords, or one --regex; it votes --label where it matches."""
    from labeling.weak import lfs

    spec = _rule_spec(name, label, keywords, regex, case_sensitive, substring)
    with _open(workspace, db) as ws:
        lfs.add_rule(ws, spec)
        preview = lfs.preview_rule(ws, spec)
    typer.echo(
        f"Added {spec['kind']} rule {name!r} -> {label}: {_matches(preview)}. "
        "Run `labelloop lf apply` to store its votes."
    )


@lf_app.command("edit-rule", short_help="Change a keyword or regex rule.")
@handle_errors
def lf_edit_rule(
    name: Annotated[str, typer.Argument(help="The rule to change (its name stays).")],
    label: Annotated[
        str | None, typer.Option("--label", help="The label it votes for (default: as now).")
    ] = None,
    keywords: KeywordsOpt = None,
    regex: RegexOpt = None,
    case_sensitive: Annotated[
        bool | None,
        typer.Option("--case-sensitive/--ignore-case", help="Match case or not (default: as now)."),
    ] = None,
    substring: Annotated[
        bool | None,
        typer.Option(
            "--substring/--whole-word",
            help="Keywords match inside words too, or whole words only (default: as now).",
        ),
    ] = None,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Change a rule; options not given keep their value. The next `lf apply` runs it over
    every item again, and its old votes stop counting at once."""
    from labeling.weak import lfs

    with _open(workspace, db) as ws:
        now = lfs.rule_spec(ws, name)
        if keywords is None and regex is None:
            keywords = ",".join(now["keywords"]) if now["kind"] == "keyword" else None
            regex = now.get("pattern") if now["kind"] == "regex" else None
        spec = _rule_spec(
            name,
            label if label is not None else now["label"],
            keywords,
            regex,
            now.get("case_sensitive", False) if case_sensitive is None else case_sensitive,
            (not now.get("whole_word", True)) if substring is None else substring,
        )
        unchanged = lfs.edit_rule(ws, name, spec).spec == json.dumps(now)
        preview = lfs.preview_rule(ws, spec)
    typer.echo(
        f"Rule {name!r} ({spec['kind']} -> {spec['label']}) "
        + ("unchanged" if unchanged else "changed")
        + f": {_matches(preview)}."
        + ("" if unchanged else " Run `labelloop lf apply` to re-apply it to every item.")
    )


@lf_app.command("delete", short_help="Delete a rule and its votes.")
@handle_errors
def lf_delete(
    name: Annotated[str, typer.Argument(help="The rule to delete.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Delete a keyword or regex rule and its votes. Code LFs live in lfs/: remove them there."""
    from labeling.weak import lfs

    with _open(workspace, db) as ws:
        gone = lfs.delete_rule(ws, name)
        stale = lfs.weak_labels_stale(ws)
    typer.echo(
        f"Deleted rule {name!r} and its {gone:,} vote{'s' if gone != 1 else ''}."
        + (" Weak labels are stale now: run `labelloop lf label` to fit them again." * stale)
    )


def _switch_rule(workspace: Path, db: str | None, name: str, active: bool) -> None:
    from labeling.weak import lfs

    with _open(workspace, db) as ws:
        lfs.set_active(ws, name, active)
    typer.echo(f"Rule {name!r} is {'on' if active else 'off'}.")


@lf_app.command("disable", short_help="Turn a rule off.")
@handle_errors
def lf_disable(
    name: Annotated[str, typer.Argument(help="Rule name.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Stop using a rule (its votes stay, unused); code LFs follow their files."""
    _switch_rule(workspace, db, name, False)


@lf_app.command("enable", short_help="Turn a rule back on.")
@handle_errors
def lf_enable(
    name: Annotated[str, typer.Argument(help="Rule name.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Use a rule again."""
    _switch_rule(workspace, db, name, True)


@lf_app.command("apply", short_help="Apply LFs to items they have not voted on.")
@handle_errors
def lf_apply(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    skip_broken: Annotated[
        bool,
        typer.Option(
            "--skip-broken",
            help="Apply the LFs that load even if some LF file fails to load (default: stop).",
        ),
    ] = False,
    everything: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Re-apply every active LF to every item (restores votes that labelloop 0.1.0 "
            "lost when it re-applied LFs after an import).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply every active LF to new items, and to all items for an LF that changed.

    One apply runs at a time per workspace: a second one waits for the first to finish."""
    from labeling.weak import lfs

    def waiting() -> None:
        _echo_err("note: another `lf apply` is running on this workspace; waiting for it")

    with _open(workspace, db) as ws, _progress(not as_json) as bar:
        report = lfs.apply(
            ws,
            engine=engine,
            scheduler=scheduler,
            progress=None if bar is None else (lambda done, total: bar("applying", done, total)),
            skip_broken=skip_broken,
            everything=everything,
            on_wait=waiting,
        )
    if as_json:
        _print_json(report.to_dict())
        return
    for error in report.errors:
        typer.echo(f"warning: {error}", err=True)
    if not report.lfs:
        typer.echo("Nothing to apply: every active LF has voted on every item.")
        return
    for row in report.lfs:
        typer.echo(
            f"{row['lf']:<28} {row['rows']:>9,} items  {row['new_votes']:>8,} votes"
            + ("  (changed: all items re-applied)" if row["rescored"] else "")
            + (f"  {row['faults']} faults, first: {row['first_fault']}" if row["faults"] else "")
        )
    typer.echo(f"{engine} engine, {report.seconds:.2f} s.")


@lf_app.command("label", short_help="Fit the label model and store weak labels.")
@handle_errors
def lf_label(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    model: Annotated[
        str, typer.Option("--model", help="auto (LabelModel with >= 3 LFs), snorkel or majority.")
    ] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Turn the stored votes into one weak label and confidence per item."""
    from labeling.weak import lfs

    with _open(workspace, db) as ws:
        report = lfs.fit_weak_labels(ws, model=model)
    if as_json:
        _print_json(report)
        return
    if report["message"]:
        typer.echo(f"note: {report['message']}", err=True)
    human = report["human_accuracy"]
    weak_gold_words = figures.weak_gold_words
    typer.echo(
        f"{report['model']} over {figures.plural(report['lfs'], 'LF')}: "
        f"{figures.plural(report['weak_labels'], 'weak label')} (any confidence), "
        f"{figures.share(report['coverage'])} of the pool"
        + (f"; {weak_gold_words(report)}" if report["gold_n"] else "")
        + (
            "; agrees with people on "
            + figures.right_of(report["human_correct"], report["human_n"])
            if human is not None
            else ""
        )
    )


@lf_app.command("analyze", short_help="Coverage, overlaps, conflicts and accuracy per LF.")
@handle_errors
def lf_analyze(
    workspace: WorkspaceOpt = Path("."), db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Per LF: polarity, coverage, overlaps, conflicts, accuracy on human and gold, faults."""
    from labeling.weak import lfs

    with _open(workspace, db) as ws:
        report = lfs.analyze(ws)
    if as_json:
        _print_json(report)
        return
    for error in report["errors"]:
        typer.echo(f"warning: {error}", err=True)
    typer.echo(
        f"{'lf':<24} {'polarity':<12} {'cover':>6} {'overlap':>7} {'conflict':>8} "
        f"{'human acc':>13} {'gold acc':>13} {'faults':>6}"
    )

    def acc(record: dict[str, Any], kind: str) -> str:
        n = record.get(f"{kind}_n") or 0
        if not n:
            return "-"
        return f"{record[f'{kind}_correct']}/{n} {record[f'{kind}_accuracy']:.2f}"

    for r in report["lfs"]:
        typer.echo(
            f"{r['lf'][:24]:<24} {','.join(r['polarity'])[:12]:<12} {r['coverage']:>6.1%} "
            f"{r['overlaps']:>7.1%} {r['conflicts']:>8.1%} {acc(r, 'human'):>13} "
            f"{acc(r, 'gold'):>13} {r['faults']:>6}"
        )
    totals = report["totals"]
    typer.echo(
        "Pool coverage: "
        + "; ".join(
            f"{name} {figures.share(totals[key])}" for key, name, _text in figures.COVERAGE_FIGURES
        )
        + f" (confident: at least weak_threshold {totals['weak_threshold']})."
    )


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
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The address people open, when not http://HOST:PORT/ (behind an HTTPS "
            "proxy): sign-in links name it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the Streamlit UI for a workspace and print a sign-in link for the first admin."""
    from labeling.ui.server import serve as run_server

    code = run_server(
        workspace,
        db_url=db,
        host=host,
        port=port,
        link_hours=link_hours,
        public_url=public_url,
        echo=typer.echo,
        echo_err=_echo_err,
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
    from labeling.demo.build import build_demo

    info = build_demo(directory, db_url=db)
    if as_json:
        _print_json(info)
        return
    typer.echo(info["message"])
    if no_serve:
        return
    typer.echo("")
    from labeling.ui.server import serve as run_server

    code = run_server(
        directory, db_url=db, host=host, port=port, echo=typer.echo, echo_err=_echo_err
    )
    raise typer.Exit(0 if code in (0, -15, 143) else 1)


# ---------------------------------------------------------------------------- items

items_app = typer.Typer(
    help="Remove items from the workspace (soft delete) and restore them; list import batches.",
    no_args_is_help=True,
)
app.add_typer(items_app, name="items")

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
        _print_json(
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
    with _open(workspace, db) as ws:
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
    with _open(workspace, db) as ws:
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
    with _open(workspace, db) as ws:
        batches = ws.import_batches()
    if as_json:
        _print_json(
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


def main() -> None:
    app(prog_name="labelloop")


if __name__ == "__main__":
    main()
