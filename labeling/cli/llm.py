"""``labelloop lf llm run``: the LLM labelling function (labeling.weak.llm)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labeling.cli.common import (
    DbOpt,
    JsonOpt,
    WorkspaceOpt,
    handle_errors,
    open_workspace,
    print_json,
)

llm_app = typer.Typer(
    help="The LLM labelling function: an OpenAI-compatible server ([llm] in labelloop.toml) "
    "labels items; its answers are kept, and its votes are the LF 'llm' (for sets, one LF "
    "'llm:LABEL' per label).",
    no_args_is_help=True,
)


@llm_app.command("run", short_help="Ask the LLM about items without a kept answer.")
@handle_errors
def llm_run(
    sample: Annotated[
        int | None,
        typer.Option("--sample", help="Only N gold items: see the accuracy and cost first."),
    ] = None,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Label the items with the LLM (its answers are kept: a second run asks nothing new)."""
    with open_workspace(workspace, db) as ws:
        report = ws.run_llm(sample=sample)
    if as_json:
        print_json(report)
        return
    accuracy = report["gold_accuracy"]
    on_gold = (
        f"{accuracy:.1%} right on {report['gold_n']} gold items"
        + (" (the exact set)" if "gold_per_label" in report else "")
        if accuracy is not None
        else "no gold items answered"
    )
    typer.echo(
        f"{report['calls']} calls ({report['tokens']:,} tokens), {report['cached']} answers "
        f"kept from before; {report['votes']} votes, {report['abstained']} unreadable answers, "
        f"{report['failed']} failed, {report['not_asked']} not asked (budget); {on_gold}."
    )
    if report["not_asked"]:
        typer.echo("Raise max_calls or max_tokens under [llm] to ask about the rest.")
