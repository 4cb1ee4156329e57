"""``labelloop search``: find items by words and filters (labeling.data.search).

The filter options are defined here once, as ``*Opt`` aliases and :func:`filters`, so that every
command that takes a search (``bulk-label`` too) spells them the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from labeling.cli.common import (
    DbOpt,
    JsonOpt,
    WorkspaceOpt,
    app,
    echo_err,
    handle_errors,
    open_workspace,
    print_json,
)
from labeling.data.search import DEFAULT_LIMIT
from labeling.errors import BadInput
from labeling.store.labelsets import readable
from labeling.workspace import Workspace

QueryArg = Annotated[
    str,
    typer.Argument(
        help='Words (all must occur), "a phrase", a OR b, -word to exclude, pre* for a prefix; '
        '"" for every item.'
    ),
]
LabelIsOpt = Annotated[
    str | None, typer.Option("--label", help="Only items whose current label is this.")
]
UnlabelledOpt = Annotated[
    bool, typer.Option("--unlabelled", help="Only items without a label yet.")
]
AnnotatorOpt = Annotated[
    str | None, typer.Option("--annotator", help="Only items this person answered.")
]
OriginOpt = Annotated[
    str | None,
    typer.Option(
        "--origin",
        help="Only items with a current answer of this origin (human, import, adjudication, "
        "correction, bulk), whether or not it decided the label.",
    ),
]
PredictedOpt = Annotated[
    str | None, typer.Option("--predicted", help="Only items the promoted model predicts as this.")
]
MinConfidenceOpt = Annotated[
    float | None, typer.Option("--min-confidence", help="Model confidence at least this (0-1).")
]
MaxConfidenceOpt = Annotated[
    float | None, typer.Option("--max-confidence", help="Model confidence at most this (0-1).")
]
WeakLabelOpt = Annotated[
    str | None, typer.Option("--weak-label", help="Only items whose weak label is this.")
]
MinWeakOpt = Annotated[
    float | None,
    typer.Option("--min-weak-confidence", help="Weak-label confidence at least this (0-1)."),
]
MaxWeakOpt = Annotated[
    float | None,
    typer.Option("--max-weak-confidence", help="Weak-label confidence at most this (0-1)."),
]
LfOpt = Annotated[
    str | None,
    typer.Option(
        "--lf",
        help="NAME: items the LF voted on; NAME=LABEL: it voted LABEL; NAME=abstain; "
        "NAME=not:LABEL: it voted LABEL absent (multi-label).",
    ),
]
DisagreementOpt = Annotated[
    str | None,
    typer.Option(
        "--disagreement",
        help="people: annotators gave different labels; model: the model predicts another label.",
    ),
]
FlaggedOpt = Annotated[
    bool | None,
    typer.Option("--flagged/--not-flagged", help="Only items with (without) an open flag."),
]
SplitOpt = Annotated[
    str | None,
    typer.Option("--split", help="pool, gold or removed (default: pool and gold)."),
]
BatchOpt = Annotated[
    str | None,
    typer.Option("--batch", help="Only items of this import batch (number or file name)."),
]
SortOpt = Annotated[
    str | None,
    typer.Option("--sort", help="relevance (default), confidence, uncertainty or id."),
]
NativeOpt = Annotated[
    bool,
    typer.Option("--native", help="Pass the query to the database's own syntax (FTS5 or tsquery)."),
]


def filters(
    *,
    label: str | None = None,
    unlabelled: bool = False,
    annotator: str | None = None,
    origin: str | None = None,
    predicted: str | None = None,
    min_confidence: float | None = None,
    max_confidence: float | None = None,
    weak_label: str | None = None,
    min_weak_confidence: float | None = None,
    max_weak_confidence: float | None = None,
    lf: str | None = None,
    disagreement: str | None = None,
    flagged: bool | None = None,
    split: str | None = None,
    batch: str | None = None,
    sort: str | None = None,
    native: bool = False,
) -> dict[str, Any]:
    """The search options given on the command line, as ``Workspace.search`` keywords."""
    given = {
        "label": label,
        "unlabelled": unlabelled or None,
        "annotator": annotator,
        "origin": origin,
        "predicted": predicted,
        "min_confidence": min_confidence,
        "max_confidence": max_confidence,
        "weak_label": weak_label,
        "min_weak_confidence": min_weak_confidence,
        "max_weak_confidence": max_weak_confidence,
        "lf": lf,
        "disagreement": disagreement,
        "flagged": flagged,
        "split": split,
        "batch": batch,
        "sort": sort,
        "native": native or None,
    }
    return {k: v for k, v in given.items() if v is not None}


def _preview(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@app.command("search", short_help="Find items by words and filters.")
@handle_errors
def search_command(
    query: QueryArg = "",
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    label: LabelIsOpt = None,
    unlabelled: UnlabelledOpt = False,
    annotator: AnnotatorOpt = None,
    origin: OriginOpt = None,
    predicted: PredictedOpt = None,
    min_confidence: MinConfidenceOpt = None,
    max_confidence: MaxConfidenceOpt = None,
    weak_label: WeakLabelOpt = None,
    min_weak_confidence: MinWeakOpt = None,
    max_weak_confidence: MaxWeakOpt = None,
    lf: LfOpt = None,
    disagreement: DisagreementOpt = None,
    flagged: FlaggedOpt = None,
    split: SplitOpt = None,
    batch: BatchOpt = None,
    sort: SortOpt = None,
    native: NativeOpt = False,
    limit: Annotated[int, typer.Option("--limit", help="Items per page.")] = DEFAULT_LIMIT,
    offset: Annotated[int, typer.Option("--offset", help="Items to pass over first.")] = 0,
    save_rule: Annotated[
        str | None,
        typer.Option(
            "--save-rule", help="Also store the query as a keyword rule of this name (an LF)."
        ),
    ] = None,
    rule_label: Annotated[
        str | None, typer.Option("--rule-label", help="The label the saved rule votes.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find items: the exact number of matches, and one page of them.

    Examples: ``labelloop search refund --unlabelled``, ``labelloop search '"not working" OR
    crash -password' --predicted technical --max-confidence 0.6``. With ``--save-rule NAME
    --rule-label L``, a query of alternatives (``refund OR "money back"``) is also stored as a
    keyword rule voting L.
    """
    with open_workspace(workspace, db) as ws:
        options = filters(
            label=label, unlabelled=unlabelled, annotator=annotator, origin=origin,
            predicted=predicted, min_confidence=min_confidence, max_confidence=max_confidence,
            weak_label=weak_label, min_weak_confidence=min_weak_confidence,
            max_weak_confidence=max_weak_confidence, lf=lf, disagreement=disagreement,
            flagged=flagged, split=split, batch=batch, sort=sort, native=native,
        )  # fmt: skip
        found = ws.search(query, limit=limit, offset=offset, **options)
        if save_rule is not None or rule_label is not None:
            found["rule"] = _save_rule(ws, query, save_rule, rule_label, quiet=as_json)
    if as_json:
        print_json(found)
        return
    _print_page(found)


def _save_rule(
    ws: Workspace, query: str, name: str | None, label: str | None, *, quiet: bool
) -> dict[str, str | None]:
    """``--save-rule NAME --rule-label L``: the query stored as a keyword rule voting L."""
    if name is None or label is None:
        raise BadInput("options '--save-rule' and '--rule-label' go together; give both")
    rule = ws.rule_from_search(name, query, label)
    if not quiet:
        echo_err(
            f"saved the search as {rule.kind} rule {rule.name!r} voting {rule.label!r}; "
            "run `labelloop lf apply` and `lf label` to use it"
        )
    return {"name": rule.name, "kind": rule.kind, "label": rule.label}


def _print_page(found: dict[str, Any]) -> None:
    """The number of matches, their count by label, and the page's items, one a line."""
    shown = len(found["items"])
    first = found["offset"] + 1 if shown else 0
    typer.echo(f"{found['total']} items match; showing {first}-{found['offset'] + shown}")
    counts = ", ".join(f"{label or '(none)'} {n}" for label, n in found["counts"].items())
    if counts:
        typer.echo(f"by label: {counts}")
    for item in found["items"]:
        guess = ""
        if item["predicted"] is not None:
            guess = f"  model: {readable(item['predicted'])} {item['confidence']:.2f}"
        label = readable(item["label"]) or "-"
        typer.echo(f"{item['id']:>12}  [{label}]{guess}  {_preview(item['text'])}")
