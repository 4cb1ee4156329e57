"""``labelloop lf ...``: labelling functions, rules and weak labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from labeling import figures
from labeling.cli.common import (
    DbOpt,
    JsonOpt,
    WorkspaceOpt,
    echo_err,
    handle_errors,
    open_workspace,
    print_json,
    progress_bar,
)
from labeling.errors import BadInput

lf_app = typer.Typer(
    help="Labelling functions: list, add rules, apply, fit weak labels, analyse.",
    no_args_is_help=True,
)


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
    with open_workspace(workspace, db) as ws:
        loaded = ws.load_lfs()
        rows = ws.list_lfs()
    if as_json:
        print_json({"lfs": rows, "errors": loaded.errors})
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
    absent: Annotated[
        bool,
        typer.Option("--absent", help="Multi-label: a match votes the label absent."),
    ] = False,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Add a rule: any of --keywords, or one --regex; it votes --label where it matches
    (with --absent, in a multi-label workspace: votes that the item does not have it)."""
    spec = _rule_spec(name, label, keywords, regex, case_sensitive, substring)
    if absent:
        spec["absent"] = True
    with open_workspace(workspace, db) as ws:
        ws.add_rule(spec)
        preview = ws.preview_rule(spec)
    shown = f"not {label}" if absent else label
    typer.echo(
        f"Added {spec['kind']} rule {name!r} -> {shown}: {_matches(preview)}. "
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
    with open_workspace(workspace, db) as ws:
        now = ws.rule_spec(name)
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
        spec |= {"absent": True} if now.get("absent") else {}  # stays an absent rule
        unchanged = ws.edit_rule(name, spec).spec == json.dumps(now)
        preview = ws.preview_rule(spec)
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
    with open_workspace(workspace, db) as ws:
        gone = ws.delete_rule(name)
        stale = ws.weak_labels_stale()
    typer.echo(
        f"Deleted rule {name!r} and its {gone:,} vote{'s' if gone != 1 else ''}."
        + (" Weak labels are stale now: run `labelloop lf label` to fit them again." * stale)
    )


def _switch_rule(workspace: Path, db: str | None, name: str, active: bool) -> None:
    with open_workspace(workspace, db) as ws:
        ws.set_rule_active(name, active)
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

    def waiting() -> None:
        echo_err("note: another `lf apply` is running on this workspace; waiting for it")

    with open_workspace(workspace, db) as ws, progress_bar(not as_json) as bar:
        report = ws.apply_lfs(
            engine=engine,
            scheduler=scheduler,
            progress=bar,
            skip_broken=skip_broken,
            everything=everything,
            on_wait=waiting,
        )
    if as_json:
        print_json(report.to_dict())
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
    with open_workspace(workspace, db) as ws:
        report = ws.fit_weak_labels(model=model)
    if as_json:
        print_json(report)
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
    for label, chosen in report.get("labels", {}).items():  # multi-label: a model per label
        why = f" ({chosen['message']})" if chosen["message"] else ""
        typer.echo(f"  {label}: {chosen['model']} over {figures.plural(chosen['lfs'], 'LF')}{why}")


@lf_app.command("analyze", short_help="Coverage, overlaps, conflicts and accuracy per LF.")
@handle_errors
def lf_analyze(
    workspace: WorkspaceOpt = Path("."), db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Per LF: polarity, coverage, overlaps, conflicts, accuracy on human and gold, faults."""
    with open_workspace(workspace, db) as ws:
        report = ws.lf_analysis()
    if as_json:
        print_json(report)
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
