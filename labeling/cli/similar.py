"""``labelloop similar``: the items nearest to an item or to a typed text, by cosine similarity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
from labeling.rounds.similar import DEFAULT_LIMIT, MAX_LIMIT

# Characters of each text shown in the table (--json prints whole texts).
TEXT_WIDTH = 70


@app.command(short_help="Items most similar to an item or to a text.")
@handle_errors
def similar(
    item_id: Annotated[
        str | None, typer.Argument(help="External id of the item to compare with.")
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="Compare with this text instead of an item.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help=f"At most this many items (1 to {MAX_LIMIT:,}).")
    ] = DEFAULT_LIMIT,
    min_similarity: Annotated[
        float | None,
        typer.Option("--min-similarity", help="Only items at least this similar (-1 to 1)."),
    ] = None,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The items nearest to item ID (or to --text), best first, with their cosine similarity
    over the promoted round's features; the item itself and removed items are left out.
    --min-similarity 0.8 --limit 10000 lists every item at least 0.8 similar."""
    if (item_id is None) == (text is None):
        found = "both" if item_id is not None else "neither"
        raise BadInput(f"give either an item ID or --text (exactly one); found {found}")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"option '--limit': expected 1 to {MAX_LIMIT:,}, found {limit}")
    if min_similarity is not None and not -1.0 <= min_similarity <= 1.0:
        raise BadInput(
            f"option '--min-similarity': expected a cosine from -1 to 1, found {min_similarity}"
        )
    with open_workspace(workspace, db) as ws:
        found_items = ws.similar(item_id, text=text, limit=limit, min_similarity=min_similarity)
    if as_json:
        print_json(found_items)
        return
    items = found_items["items"]
    if not items:
        typer.echo("No similar items" + (" at that similarity." if min_similarity else "."))
        return
    width = max(len("id"), *(len(item["id"]) for item in items))
    typer.echo(f"{'similarity':>10}  {'split':<5}  {'id':<{width}}  text")
    for item in items:
        shown = " ".join(item["text"].split())
        if len(shown) > TEXT_WIDTH:
            shown = shown[: TEXT_WIDTH - 1] + "…"
        typer.echo(
            f"{item['similarity']:>10.3f}  {item['split']:<5}  {item['id']:<{width}}  {shown}"
        )
