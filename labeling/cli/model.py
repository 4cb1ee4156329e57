"""``labelloop predict`` and ``model export``: a round's model put to use outside the workspace."""

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
from labeling.store.labelsets import DEFAULT_LABEL_SEP

model_app = typer.Typer(
    help="A round's model outside labelloop: export it as a scikit-learn pipeline.",
    no_args_is_help=True,
)

RoundOpt = Annotated[
    int | None,
    typer.Option("--round", help="Round number (default: the promoted round).", show_default=False),
]


@app.command(short_help="Predict the texts of a file with a round's model.")
@handle_errors
def predict(
    file: Annotated[Path, typer.Argument(help="CSV, TSV, JSONL or Parquet file of texts.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="File to write (.csv, .tsv, .jsonl or .parquet): the id column, label and "
            "one p_<label> probability column per label.",
            show_default=False,
        ),
    ],
    round_id: RoundOpt = None,
    text_field: Annotated[
        str | None,
        typer.Option("--text-field", help="Field holding the text (default: the toml's)."),
    ] = None,
    id_field: Annotated[
        str | None,
        typer.Option(
            "--id-field",
            help="Field to copy to the output as the id (default: a field called id, if any).",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="Input format: csv, tsv, jsonl or parquet (default: extension)."
        ),
    ] = None,
    label_sep: Annotated[
        str,
        typer.Option(
            "--label-sep",
            help="Multi-label workspaces: the separator of a predicted set's names in CSV/TSV.",
        ),
    ] = DEFAULT_LABEL_SEP,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict every row of FILE with the promoted round's model (or --round N), a chunk at a
    time; OUT is written whole or not at all."""
    with open_workspace(workspace, db) as ws:
        report = ws.predict_file(
            file,
            out,
            round_id=round_id,
            text_field=text_field,
            id_field=id_field,
            format=fmt,
            label_sep=label_sep,
        )
    if as_json:
        print_json(report.to_dict())
    else:
        typer.echo(
            f"Wrote {report.rows:,} predictions of round {report.round_id} to {report.out} "
            f"({report.format}) in {report.seconds:.1f} s."
        )


@model_app.command("export", short_help="Export a round's model as a scikit-learn pipeline.")
@handle_errors
def export_model(
    directory: Annotated[Path, typer.Argument(help="New (or empty) folder to write.")],
    round_id: RoundOpt = None,
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write DIR/model.skops (featurizer + classifier, scikit-learn classes only, saved with
    skops) and DIR/model-card.md (labels, data, gold metrics, a loading example, limits)."""
    with open_workspace(workspace, db) as ws:
        report = ws.export_model(directory, round_id=round_id)
    if as_json:
        print_json(report.to_dict())
    else:
        typer.echo(
            f"Wrote round {report.round_id}'s model ({report.featurizer}, "
            f"{len(report.labels)} labels) to {report.model} and its card to {report.card}."
        )
