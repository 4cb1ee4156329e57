"""``labelloop backup``, ``doctor``, ``report`` and ``status``: looking after a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
)
from labeling.figures import drift_check


@app.command(short_help="Take a consistent copy of the store while people keep labelling.")
@handle_errors
def backup(
    out: Annotated[Path, typer.Argument(help="File to write (must not exist yet).")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """SQLite: the SQLite backup API (online, consistent). PostgreSQL: pg_dump --format=custom."""
    with open_workspace(workspace, db) as ws:
        found = ws.backup(out)
    if as_json:
        print_json(found)
    else:
        typer.echo(f"Wrote a {found['kind']} backup to {out} ({found['bytes'] / 1e6:,.1f} MB).")


@app.command(short_help="Check the store's integrity and labelloop's invariants.")
@handle_errors
def doctor(
    fix: Annotated[
        bool,
        typer.Option(
            "--fix", help="Repair label counts from the log, fail dead rounds, prune old rows."
        ),
    ] = False,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Exit 0 when every check passes (or was repaired with --fix), 1 otherwise."""
    with open_workspace(workspace, db) as ws:
        found = ws.doctor(fix=fix)
    if as_json:
        print_json(found)
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
    with open_workspace(workspace, db) as ws:
        path = ws.write_report(out)
    if as_json:
        print_json({"report": str(path), "bytes": path.stat().st_size})
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

    with open_workspace(workspace, db) as ws:
        info = ws.status(metrics=True)
    if as_json:
        print_json(info)
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
