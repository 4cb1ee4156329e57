"""``labelloop item``, ``correct``, ``flag``, ``flags`` and ``resolve-flag``: one item's whole
story, correcting its label, and flags for the leads' Review page."""

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
from labeling.quality.corrections import FlagRecord
from labeling.quality.item_story import ItemStory
from labeling.store import labelsets
from labeling.store.labelsets import readable

ItemArg = Annotated[
    str,
    typer.Argument(help="The item's external id (as in the imported file).", show_default=False),
]
AsOpt = Annotated[
    str,
    typer.Option(
        "--as", help="The person doing it, by name (see `user list`).", show_default=False
    ),
]


@app.command("item", short_help="Everything about one item: answers, votes, model, flags.")
@handle_errors
def item(
    item_id: ItemArg,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One item's text and fields, import batch, label now and how it was decided, every answer
    with its history, LF votes, weak label, the promoted model's prediction and its flags."""
    with open_workspace(workspace, db) as ws:
        story = ws.item(item_id)
    if as_json:
        print_json(story)
    else:
        typer.echo("\n".join(_story_lines(story)))


def _story_lines(story: ItemStory) -> list[str]:
    """The item as text, one fact a line, then its answers and flags."""
    batch = story["import_batch"]
    lines = [
        f"item {story['id']} ({story['split']})",
        f"text: {story['text']}",
        f"label: {readable(story['label']) or '-'} (decided by {story['decided_by']})",
    ]
    if story["gold_label"] is not None:
        lines.append(f"gold label: {readable(story['gold_label'])}")
    if batch is not None:
        lines.append(f"import batch: {batch['id']} ({batch['file']})")
    for field, value in story["source"].items():
        lines.append(f"  {field}: {value}")
    if story["weak_label"] is not None:
        weak = readable(story["weak_label"])
        lines.append(f"weak label: {weak} ({story['weak_confidence']:.2f})")
    if story["lf_votes"]:
        votes = ", ".join(f"{name}: {label}" for name, label in story["lf_votes"].items())
        lines.append(f"LF votes: {votes}")
    if story["prediction"] is not None:
        confidence = story["prediction_confidence"]
        shown = "" if confidence is None else f" ({confidence:.2f})"
        lines.append(
            f"prediction (round {story['prediction_round']}): "
            f"{readable(story['prediction'])}{shown}"
        )
    lines.append(f"answers ({len(story['answers'])}):")
    for a in story["answers"]:
        answer = "skip" if a["skipped"] else readable(a["label"])
        state = "current" if a["current"] else f"superseded by {a['superseded_by']}"
        lines.append(
            f"  {a['annotation']}\t{a['created_at'][:16]}\t{a['who']} ({a['role']})\t"
            f"{answer}\t{a['origin']}\t{state}"
        )
    for f in story["flags"]:
        lines.append(_flag_line(f))
    return lines


def _flag_line(f: FlagRecord) -> str:
    state = f"resolved by {f['resolved_by']}" if f["resolved"] else "open"
    return f"flag {f['flag']}\t{f['item']}\t{f['when'][:16]}\t{f['who']}\t{state}\t{f['note']}"


@app.command("correct", short_help="Correct an item's label (it supersedes earlier decisions).")
@handle_errors
def correct(
    item_id: ItemArg,
    label: Annotated[
        str,
        typer.Argument(
            help="The right label; multi-label: the set, names joined by | ([] for none).",
            show_default=False,
        ),
    ],
    person: AsOpt,
    note: Annotated[
        str, typer.Option("--note", help="Why (kept in the item's history).", show_default=False)
    ] = "",
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make LABEL the item's label: an annotation of origin correction that wins over the
    majority and supersedes an adjudication or earlier correction; every earlier answer stays
    in the history. Gold and removed items are refused."""
    with open_workspace(workspace, db) as ws:
        if ws.multilabel:
            try:
                names = labelsets.parse_cell(label, labelsets.DEFAULT_LABEL_SEP)
            except ValueError as exc:
                raise BadInput(f"argument LABEL: {exc}") from exc
            if names is None:
                raise BadInput("argument LABEL: expected names joined by |, or [] for none")
            done = ws.correct(item_id, names, by=person, note=note)
        else:
            done = ws.correct(item_id, label, by=person, note=note)
    if as_json:
        print_json(done)
    else:
        before = readable(done["previous_label"]) or "no label"
        typer.echo(f"Corrected item {done['item']}: {before} -> {readable(done['label'])}.")


@app.command("flag", short_help="Flag an item with a note for the Review page.")
@handle_errors
def flag(
    item_id: ItemArg,
    note: Annotated[
        str, typer.Option("--note", help="What is wrong with the item.", show_default=False)
    ],
    person: AsOpt,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Raise a flag on an item; it is listed on the Review page until a lead resolves it."""
    with open_workspace(workspace, db) as ws:
        raised = ws.flag(item_id, note, by=person)
    if as_json:
        print_json(raised)
    else:
        typer.echo(f"Flagged item {raised['item']} (flag {raised['flag']}).")


@app.command("flags", short_help="List open flags (--all: resolved ones too).")
@handle_errors
def flags(
    every: Annotated[bool, typer.Option("--all", help="Resolved flags too.")] = False,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Flags, newest first: number, item, when, who, open or resolved, note."""
    with open_workspace(workspace, db) as ws:
        found = ws.flags(open_only=not every)
    if as_json:
        print_json(found)
        return
    if not found:
        typer.echo("No flags." if every else "No open flags.")
    for f in found:
        typer.echo(_flag_line(f))


@app.command("resolve-flag", short_help="Mark a flag resolved.")
@handle_errors
def resolve_flag(
    flag_id: Annotated[int, typer.Argument(help="The flag's number (see `flags`).")],
    person: AsOpt,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Mark a flag resolved; it leaves the Review page's list."""
    with open_workspace(workspace, db) as ws:
        ws.resolve_flag(flag_id, by=person)
    typer.echo(f"Resolved flag {flag_id}.")
