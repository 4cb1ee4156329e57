"""``labelloop queue ANNOTATOR``: the next items a person would be served, in order, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labeling.annotation.queue_preview import QueuePreview
from labeling.cli.common import (
    DbOpt,
    JsonOpt,
    WorkspaceOpt,
    app,
    handle_errors,
    open_workspace,
    print_json,
)
from labeling.errors import BadInput

# Characters of an item's text in the table (the whole text is in --json).
TEXT_WIDTH = 48


@app.command(short_help="Show the next items an annotator would get, and why.")
@handle_errors
def queue(
    annotator: Annotated[str, typer.Argument(help="The annotator's name.")],
    limit: Annotated[
        int, typer.Option("--limit", help="How many items (1 to 500).", show_default=True)
    ] = 50,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the next items ANNOTATOR would be served now, in the order their claims would
    serve them, with the round, strategy, score and the reason in words. Nothing is leased or
    written. Gold checks come at random among these (the gold-check rate) and are not listed."""
    if not 1 <= limit <= 500:
        raise BadInput(f"option '--limit': expected 1 to 500, found {limit}")
    with open_workspace(workspace, db) as ws:
        preview = ws.queue_preview(annotator, n=limit)
    if as_json:
        print_json(preview)
        return
    for line in table_lines(preview):
        typer.echo(line)


def table_lines(preview: QueuePreview) -> list[str]:
    """The preview as a heading and a plain-text table, one item a line."""
    name = preview["annotator"]
    if preview["round"] is None:
        order = "no promoted round yet: the seeded random order"
    else:
        order = f"round {preview['round']} ({preview['strategy'] or 'unknown strategy'})"
    lines = [f"Queue of {name!r}: {order}, overlap {preview['overlap']}."]
    if preview["gold_rate"] > 0:
        lines.append(
            f"Gold checks: {preview['gold_rate']:.0%} of claims, at random and unmarked "
            "(not listed)."
        )
    if preview["note"]:
        lines.append(f"Note: {preview['note']}.")
    if not preview["items"]:
        lines.append(f"Nothing left for {name!r}: every open item is done, held or answered.")
        return lines
    width = min(max(len(row["id"]) for row in preview["items"]), 30)
    lines.append(
        f"{'#':>3}  {'id':<{width}}  {'round':>5}  {'score':>8}  {'text':<{TEXT_WIDTH}}  reason"
    )
    for row in preview["items"]:
        text = " ".join(row["text"].split())
        if len(text) > TEXT_WIDTH:
            text = text[: TEXT_WIDTH - 1] + "…"
        score = f"{row['score']:.4f}" if row["score"] is not None else "-"
        round_ = str(row["round"]) if row["round"] is not None else "-"
        lines.append(
            f"{row['position']:>3}  {row['id']:<{width}}  {round_:>5}  {score:>8}  "
            f"{text:<{TEXT_WIDTH}}  {row['reason']}"
        )
    return lines
