"""``labelloop bulk-label``, ``bulk-undo`` and ``bulk-list``: audited bulk labelling from the
command line (labeling.annotation.bulk).

``bulk-label`` takes the same query and filters as ``labelloop search`` (the filter on the
current label is ``--label-is`` here, as ``--label`` is the label to give). With ``--audit N``
it first shows N random items of the set on stderr and asks y/n for each on stdin, then applies
the batch only if the precision interval allows it (or ``--override``). Without ``--audit`` the
batch is applied and recorded as "unaudited (command line)", with override: scripts can bulk-
label, and the batch list says that nobody checked.

In a multi-label workspace ``--action add|remove|set`` says what the batch does to each item's
set (labeling.annotation.bulk_sets): add or remove the one ``--label``, or set it to ``--label``
written as people write a set (``billing|refund``, ``[]`` for the empty set).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from labeling.annotation.bulk import MIN_PRECISION, UNAUDITED_CLI, precision_interval
from labeling.annotation.bulk_sets import ACTIONS, SET, set_action
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
from labeling.cli.search import (
    AnnotatorOpt,
    BatchOpt,
    DisagreementOpt,
    FlaggedOpt,
    LfOpt,
    MaxConfidenceOpt,
    MinConfidenceOpt,
    NativeOpt,
    OriginOpt,
    PredictedOpt,
    QueryArg,
    SplitOpt,
    UnlabelledOpt,
    WeakLabelOpt,
    filters,
)
from labeling.data.search import query_from_options
from labeling.errors import BadInput, UnknownAnnotator
from labeling.store import labelsets
from labeling.workspace import Workspace

LabelIsOpt = Annotated[
    str | None,
    typer.Option("--label-is", help="Only items whose current label is this."),
]
AsOpt = Annotated[str, typer.Option("--as", help="The person applying the batch (engineer).")]
ActionOpt = Annotated[
    str | None,
    typer.Option(
        "--action",
        help="Multi-label workspaces: add --label to each item's set, remove it, or set the "
        "set to --label (e.g. 'billing|refund', '[]' for none).",
    ),
]


def _given(ws: Workspace, action: str | None, label: str) -> str | list[str]:
    """``--label`` as the API takes it for ``--action`` (checked here, so that the messages
    name the options): a label, or for ``--action set`` the set written ``a|b``."""
    example = f"'{ws.labels[0]}|{ws.labels[-1]}'"
    if not ws.multilabel and action is not None:
        raise BadInput(
            "option '--action': this workspace is single-label, where a bulk label gives each "
            "item one label (--label); leave --action out"
        )
    if ws.multilabel and action is None:
        raise BadInput(
            "option '--action': this workspace is multi-label; say what to do to each item's "
            "set: --action add (put --label in it), --action remove (take --label out) or "
            f"--action set (make it exactly --label, e.g. --label {example}, or '[]' for none)"
        )
    if action is not None and action not in ACTIONS:
        raise BadInput(f"option '--action': expected one of {', '.join(ACTIONS)}, found {action!r}")
    if action != SET:
        if ws.multilabel and labelsets.DEFAULT_LABEL_SEP in label:
            raise BadInput(
                f"option '--label': --action {action} takes one label, found {label!r}; to give "
                "each item that whole set, use --action set"
            )
        return label
    try:
        names = labelsets.parse_cell(label, labelsets.DEFAULT_LABEL_SEP)
    except ValueError as exc:
        raise BadInput(f"option '--label': {exc}") from None
    if names is None:
        raise BadInput(f"option '--label': expected a set such as {example}, or '[]' for none")
    return names


def _audit_on_stdin(
    ws: Workspace, query: Any, n: int, *, action: str | None, label: str | list[str]
) -> dict[str, Any]:
    """Show ``n`` random items of the set on stderr and read y/n for each from stdin."""
    sample = ws.bulk_audit_sample(
        query, n=n, action=action, label=None if action is None else label
    )
    if not sample:
        raise BadInput("the search has no items a bulk label would change; nothing to audit")
    change = set_action(action, label, ws.labels, ws.multilabel)
    if change is None:
        echo_err(f"audit: is each of these {len(sample)} items correctly labelled? (y/n)")
    else:
        echo_err(f"audit of '{change.words()}': for each of these {len(sample)} items, "
                 f"{change.question()} (y/n)")  # fmt: skip
    correct = 0
    for number, item in enumerate(sample, 1):
        guess = f" [model: {item.prediction}]" if item.prediction is not None else ""
        if change is not None:
            guess = f" [now: {item.current or 'no set'}]{guess}"
        echo_err(f"{number:>3}. {item.id}{guess}: {' '.join(item.text.split())[:200]}")
        while True:
            echo_err("     y/n? ")
            answer = sys.stdin.readline()
            if not answer:
                raise BadInput(f"the audit ended after {number - 1} of {len(sample)} answers")
            if answer.strip().lower() in {"y", "yes", "n", "no"}:
                correct += answer.strip().lower().startswith("y")
                break
    return {"checked": len(sample), "correct": correct, "sample": [i.id for i in sample]}


def _apply(
    ws: Workspace,
    search: Any,
    *,
    label: str | list[str],
    action: str | None,
    by: str,
    audit: int | None,
    min_precision: float,
    override: bool,
) -> dict[str, Any]:
    """Audit on stdin when asked (else record the batch unaudited, with override) and apply."""
    record: dict[str, Any] = {"note": UNAUDITED_CLI}
    expected = None
    if audit is not None:
        if audit < 1:
            raise BadInput(f"option '--audit': expected at least 1, found {audit}")
        # Everything the store would refuse is refused before the person answers the audit;
        # the batch then labels the set that was audited, or is refused if it changed.
        expected = ws.bulk_label(search, label=label, action=action, by=by, dry_run=True)["count"]
        record = _audit_on_stdin(ws, search, audit, action=action, label=label)
    done = ws.bulk_label(
        search, label=label, action=action, by=by, audit=record, min_precision=min_precision,
        override=override or audit is None, expected=expected,
    )  # fmt: skip
    if "checked" in record:
        low, high = precision_interval(record["correct"], record["checked"], done["count"])
        done["audit"] = {**record, "precision_low": low, "precision_high": high}
    return done


def _headline(done: dict[str, Any], words: str | None, label: str, *, dry_run: bool) -> str:
    """What the batch did (or would do): a label given, or a set action's words."""
    if words is None:
        return f"{'would label' if dry_run else 'labelled'} {done['count']} items as {label!r}"
    return f"{'would change' if dry_run else 'changed'} {done['count']} items' sets: {words}"


def _report(
    done: dict[str, Any], label: str, *, dry_run: bool, words: str | None, as_json: bool
) -> None:
    """What the batch did (or would do), as JSON or in words."""
    if as_json:
        print_json(done)
        return
    line = _headline(done, words, label, dry_run=dry_run)
    if not dry_run:
        line += f" in batch {done['batch']} (undo: labelloop bulk-undo {done['batch']})"
    typer.echo(line)
    if done.get("replaced_bulk"):
        typer.echo(f"  {done['replaced_bulk']} of them had an earlier bulk label, now replaced")
    if done.get("skipped_unchanged"):
        typer.echo(f"  left {done['skipped_unchanged']} items whose set it would not change")
    if done["skipped_labelled"]:
        typer.echo(
            f"  left {done['skipped_labelled']} items labelled by people, an import or a "
            "decision as they were (correct those one by one)"
        )
    if done["skipped_not_pool"]:
        typer.echo(f"  left out {done['skipped_not_pool']} gold or removed items")
    audit = done.get("audit")
    if audit is not None and "checked" in audit:
        typer.echo(
            f"  audit: {audit['correct']} of {audit['checked']} correct, precision "
            f"{audit['precision_low']:.2f}-{audit['precision_high']:.2f} (95%)"
        )
    elif not dry_run:
        typer.echo(f"  {UNAUDITED_CLI}: nobody checked a sample; recorded with override")


@app.command(
    "bulk-label",
    short_help="Give one label to every item a search finds (multi-label: add, remove, set).",
)
@handle_errors
def bulk_label_command(
    label: Annotated[
        str, typer.Option("--label", help="The label to give (or add, remove, set to).")
    ],
    by: AsOpt,
    query: QueryArg = "",
    action: ActionOpt = None,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    label_is: LabelIsOpt = None,
    unlabelled: UnlabelledOpt = False,
    annotator: AnnotatorOpt = None,
    origin: OriginOpt = None,
    predicted: PredictedOpt = None,
    min_confidence: MinConfidenceOpt = None,
    max_confidence: MaxConfidenceOpt = None,
    weak_label: WeakLabelOpt = None,
    lf: LfOpt = None,
    disagreement: DisagreementOpt = None,
    flagged: FlaggedOpt = None,
    split: SplitOpt = None,
    batch: BatchOpt = None,
    native: NativeOpt = False,
    audit: Annotated[
        int | None,
        typer.Option("--audit", help="Check N random items of the set first (y/n on stdin)."),
    ] = None,
    min_precision: Annotated[
        float, typer.Option("--min-precision", help="Lowest acceptable precision (lower bound).")
    ] = MIN_PRECISION,
    override: Annotated[
        bool, typer.Option("--override", help="Apply even when the audit is below the bar.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be labelled.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Give LABEL to every pool item the search finds that no person has labelled, as one
    batch that ``labelloop bulk-undo`` takes back in one step.

    Items labelled by people, an import or a decision are left as they are; gold and removed
    items are never bulk-labelled; an earlier bulk label is replaced. Example: ``labelloop
    bulk-label '"refund request"' --unlabelled --label billing --as eve --audit 20``. In a
    multi-label workspace, ``--action add|remove|set`` (``--action set --label 'a|b'``).
    """
    _check_audit_options(min_precision, audit=audit, dry_run=dry_run)
    options = filters(
        label=label_is, unlabelled=unlabelled, annotator=annotator, origin=origin,
        predicted=predicted, min_confidence=min_confidence, max_confidence=max_confidence,
        weak_label=weak_label, lf=lf, disagreement=disagreement, flagged=flagged, split=split,
        batch=batch, native=native,
    )  # fmt: skip
    with open_workspace(workspace, db) as ws:
        done, words = _label_search(
            ws, query, options, label=label, action=action, by=by, audit=audit,
            min_precision=min_precision, override=override, dry_run=dry_run,
        )  # fmt: skip
    _report(done, label, dry_run=dry_run, words=words, as_json=as_json)


def _check_audit_options(min_precision: float, *, audit: int | None, dry_run: bool) -> None:
    if not 0.0 <= min_precision <= 1.0:
        raise BadInput(f"option '--min-precision': expected 0 to 1, found {min_precision}")
    if audit is not None and dry_run:
        raise BadInput("options '--audit' and '--dry-run': a dry run labels nothing to audit")


def _label_search(
    ws: Workspace,
    query: str,
    options: dict[str, Any],
    *,
    label: str,
    action: str | None,
    by: str,
    audit: int | None,
    min_precision: float,
    override: bool,
    dry_run: bool,
) -> tuple[dict[str, Any], str | None]:
    """The batch over the search's items applied (or only counted, for a dry run), and the
    words of its set action (None: a label given); the messages name the command's options."""
    try:
        search = query_from_options(ws.labels, text=query, **options)
    except BadInput as exc:
        raise BadInput(str(exc).replace("'--label'", "'--label-is'")) from None
    given = _given(ws, action, label)
    change = set_action(action, given, ws.labels, ws.multilabel)
    try:
        if dry_run:
            done = ws.bulk_label(search, label=given, action=action, by=by, dry_run=True)
        else:
            done = _apply(ws, search, label=given, action=action, by=by, audit=audit,
                          min_precision=min_precision, override=override)  # fmt: skip
    except UnknownAnnotator as exc:
        raise UnknownAnnotator(f"option '--as': {exc}") from None
    return done, None if change is None else change.words()


@app.command("bulk-undo", short_help="Undo a whole bulk batch.")
@handle_errors
def bulk_undo_command(
    batch: Annotated[str, typer.Argument(help="The batch id (see labelloop bulk-list).")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    by: Annotated[
        str | None, typer.Option("--as", help="The person undoing it (recorded).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove every label of a bulk batch; the bulk labels it replaced come back."""
    with open_workspace(workspace, db) as ws:
        done = ws.undo_bulk(batch, by=by)
        sets = ws.multilabel
    if as_json:
        print_json(done)
        return
    removed = f"undid batch {done['batch']}: removed {done['removed']}"
    typer.echo(
        f"{removed} bulk answers of {done['label']!r}; the sets they replaced are back"
        if sets
        else f"{removed} {done['label']!r} labels"
    )


@app.command("bulk-list", short_help="List bulk batches.")
@handle_errors
def bulk_list_command(
    workspace: WorkspaceOpt = Path("."), db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Every bulk batch, newest first: who, label, how many items, the audit, the status."""
    with open_workspace(workspace, db) as ws:
        batches = ws.bulk_batches()
    if as_json:
        print_json({"batches": [dataclasses.asdict(b) for b in batches]})
        return
    if not batches:
        typer.echo("no bulk batches yet")
    for b in batches:
        when = f"{b.created_at:%Y-%m-%d %H:%M}"
        typer.echo(
            f"{b.batch}  {when}  {b.status:<8} {b.count:>7} x {b.label!r} by {b.by}: {b.audit}"
        )
