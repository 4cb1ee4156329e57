"""``labelloop retrain``, ``rounds ...`` and ``simulate``: retraining rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
from labeling.config import SINGLE_LABEL
from labeling.rounds.promotion import RoundSummary
from labeling.rounds.simulate_sets import DEFAULT_METRIC
from labeling.store.labelsets import DEFAULT_LABEL_SEP
from labeling.workspace import Workspace

rounds_app = typer.Typer(
    help="Retraining rounds: list them, promote one, roll back.", no_args_is_help=True
)


def _retrain_json(summary: RoundSummary) -> dict[str, Any]:
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

    def stage(text: str) -> None:
        if not as_json:
            typer.echo(f"  {text}...", err=True)

    with open_workspace(workspace, db) as ws:
        ws.lower_priority()
        summary = ws.round_summary(ws.retrain(strategy=strategy, progress=stage))
    if as_json:
        print_json(_retrain_json(summary))
    else:
        _echo_round(summary)
    if summary["status"] != "succeeded":
        raise typer.Exit(1)


def _echo_round(summary: RoundSummary) -> None:
    metrics = summary["metrics"]
    if summary["status"] != "succeeded":
        typer.echo(f"Round {summary['round']} {summary['status']}: {summary['error']}")
        return
    scored = metrics.get("gold") or metrics.get("cv") or {}
    # A multi-label round: accuracy is the exact-match share, and micro-F1 is said too.
    sets = f", micro-F1 {scored['micro_f1']:.3f}" if "micro_f1" in scored else ""
    accuracy = "exact-match accuracy" if sets else "accuracy"
    if metrics.get("evaluation") == "gold":
        quality = (
            f"gold {accuracy} {metrics['gold_accuracy']:.3f}, "
            f"macro-F1 {metrics['gold_macro_f1']:.3f}{sets} on {metrics['gold']['n']} gold items"
        )
    elif metrics.get("evaluation") == "cross-validation":
        quality = (
            f"no gold items; {metrics['cv']['folds']}-fold cross-validated {accuracy} "
            f"{metrics['cv_accuracy']:.3f}, macro-F1 {metrics['cv_macro_f1']:.3f}{sets}"
        )
    else:
        quality = metrics.get("note", "not evaluated")
    typer.echo(
        f"Round {summary['round']} succeeded ({metrics.get('seconds', '?')} s): "
        f"{summary['n_human']} human"
        + (f" ({metrics['n_bulk']} of them bulk)" if metrics.get("n_bulk") else "")
        + f" + {summary['n_weak']} weak labels, "
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
    with open_workspace(workspace, db) as ws:
        summaries = ws.round_summaries()
    if as_json:
        for summary in summaries:
            summary["metrics"].pop("gold", None)
        print_json({"rounds": summaries})
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
    with open_workspace(workspace, db) as ws:
        summary = ws.round_summary(ws.promote(round_id))
    if as_json:
        print_json({"round": summary["round"], "promoted": True})
        return
    typer.echo(f"Round {round_id} is promoted; the queue follows its scores.")


@rounds_app.command("rollback", short_help="Go back to the previously promoted round.")
@handle_errors
def rounds_rollback(
    workspace: WorkspaceOpt = Path("."), db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Promote again the round that was promoted before the current one."""
    with open_workspace(workspace, db) as ws:
        summary = ws.round_summary(ws.rollback())
    if as_json:
        print_json({"round": summary["round"], "promoted": True})
        return
    typer.echo(f"Rolled back: round {summary['round']} is promoted again.")


# The options of ``simulate`` (one alias each, so that its signature reads as a list).
TestFileOpt = Annotated[
    Path | None, typer.Option("--test", help="A labelled test file (same fields).")
]
TestSizeOpt = Annotated[
    float, typer.Option("--test-size", min=0.05, max=0.9, help="Held-out share when no --test.")
]
StrategiesOpt = Annotated[
    list[str] | None,
    typer.Option("--strategy", help="Strategy to compare (repeat); random is the baseline."),
]
SimFeaturizerOpt = Annotated[
    str,
    typer.Option(
        "--featurizer",
        help="auto (picked per simulated round), tfidf, sentence-embeddings, hybrid, hashing.",
    ),
]
LfsFileOpt = Annotated[
    Path | None,
    typer.Option("--lfs", help="An LF file: its weak labels join training, as in rounds."),
]
ChartOpt = Annotated[
    Path | None, typer.Option("--chart", help="Write learning curves to .html (or .png).")
]
TaskOpt = Annotated[
    str, typer.Option("--task", help="single-label (one label per row) or multi-label (sets).")
]
LabelSepOpt = Annotated[
    str, typer.Option("--label-sep", help="Multi-label: the separator of names in a text cell.")
]
SetLabelsOpt = Annotated[
    str | None,
    typer.Option(
        "--labels",
        help="Multi-label: the labels, comma-separated (default: the data file's names).",
    ),
]
MetricOpt = Annotated[
    str,
    typer.Option(
        "--metric", help="What labels_to_95pct reads: macro-f1, or micro-f1 (multi-label only)."
    ),
]
ZeroShotOpt = Annotated[
    bool, typer.Option("--zero-shot", help="Also run with the zero-shot prior; report the gain.")
]
DescriptionsOpt = Annotated[
    Path | None,
    typer.Option("--descriptions", help="With --zero-shot: label = description (TOML, JSON)."),
]


@app.command(short_help="Play the loop on a labelled file to see what active learning buys.")
@handle_errors
def simulate(
    data: Annotated[Path, typer.Argument(help="A fully labelled CSV, TSV, JSONL or Parquet file.")],
    text_field: Annotated[str, typer.Option("--text-field", help="Field holding the text.")],
    label_field: Annotated[str, typer.Option("--label-field", help="Field holding the label.")],
    test: TestFileOpt = None,
    test_size: TestSizeOpt = 0.25,
    strategy: StrategiesOpt = None,
    budget: Annotated[int, typer.Option("--budget", min=1, help="Labels per run.")] = 200,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Labels per round.")] = 10,
    seeds: Annotated[int, typer.Option("--seeds", min=1, max=100, help="Runs to average.")] = 5,
    featurizer: SimFeaturizerOpt = "auto",
    lfs_file: LfsFileOpt = None,
    chart: ChartOpt = None,
    task: TaskOpt = SINGLE_LABEL,
    label_sep: LabelSepOpt = DEFAULT_LABEL_SEP,
    labels: SetLabelsOpt = None,
    metric: MetricOpt = DEFAULT_METRIC,
    zero_shot: ZeroShotOpt = False,
    descriptions: DescriptionsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate labelling with the file's labels as the oracle, for each strategy and seed."""
    report = Workspace.simulate(
        data=data,
        task=task,
        label_sep=label_sep,
        labels=None if labels is None else [n.strip() for n in labels.split(",") if n.strip()],
        metric=metric,
        text_field=text_field,
        label_field=label_field,
        test=test,
        test_size=test_size,
        strategies=strategy,
        budget=budget,
        batch=batch,
        seeds=seeds,
        featurizer=featurizer,
        lfs_file=lfs_file,
        chart=chart,
        zero_shot=zero_shot,
        descriptions=descriptions,
        progress=None if as_json else (lambda text: typer.echo(f"  {text}", err=True)),
    )
    if as_json:
        print_json(report)
        return
    _echo_simulation(report)
    if chart is not None:
        typer.echo(f"Chart: {chart}")


def _echo_simulation(report: dict[str, Any]) -> None:
    """The simulation's summary: weak labels, full supervision, each strategy's last point."""
    weak_report = report.get("weak_supervision")
    if weak_report is not None:
        typer.echo(
            f"Weak labels from {weak_report['lfs']} LFs ({weak_report['model']}): "
            f"{weak_report['coverage']:.1%} of the pool covered."
        )
    full = report["full_supervision"]
    if report.get("task") == "multi-label":
        _echo_set_simulation(report)
        return
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
    if "zero_shot" in report:
        _echo_zero_shot(report["zero_shot"])


def _echo_zero_shot(found: dict[str, Any]) -> None:
    """Macro-F1 without and with the zero-shot prior at a few checkpoints."""
    typer.echo(f"Zero-shot prior alone on the test set: macro-F1 {found['prior_macro_f1']:.3f}.")
    for name, result in found["strategies"].items():
        curve = result["curve"]
        points = [p for p in curve if p["labels"] in (10, 20, 50, 100)] or curve[-1:]
        shown = ", ".join(
            f"{p['labels']}: {p['without']:.3f} -> {p['with']:.3f} ({p['gain']:+.3f})"
            for p in points
        )
        typer.echo(f"  {name} without -> with the prior, by labels: {shown}")


def _echo_set_simulation(report: dict[str, Any]) -> None:
    """A multi-label simulation's summary: full supervision's figures, each strategy's last
    point, and where it reached 95% of the chosen metric."""
    full, key = report["full_supervision"], report["target_metric"]
    typer.echo(
        f"Full supervision ({report['settings']['pool']:,} labelled rows, "
        f"{len(report['settings']['labels'])} labels): micro-F1 {full['micro_f1']:.3f}, "
        f"macro-F1 {full['macro_f1']:.3f}, Hamming loss {full['hamming_loss']:.3f}, "
        f"subset accuracy {full['subset_accuracy']:.3f}; 95% of its {report['metric']} is "
        f"{report[f'target_{key}']:.3f}."
    )
    for name, result in report["strategies"].items():
        last = result["curve"][-1]
        reached = result["labels_to_95pct"]
        typer.echo(
            f"  {name:<26} {report['metric']} {last[key]:.3f} at {last['labels']} labels; "
            + (f"95% reached at {reached} labels" if reached else "95% not reached")
        )
