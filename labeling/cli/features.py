"""``labelloop features ...``: the embedding pass that fills the feature cache ahead of rounds."""

from __future__ import annotations

import dataclasses
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
    progress_bar,
)

features_app = typer.Typer(
    help="Feature cache: embed every item ahead of the rounds, and see what is cached.",
    no_args_is_help=True,
)

EngineOpt = Annotated[
    str, typer.Option("--engine", help="local (this process) or dask (a dask.distributed cluster).")
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="dask: address of a running scheduler (default: a local cluster on 127.0.0.1).",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", help="dask without --scheduler: local worker processes (default 2)."),
]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", help="Embed at most this many items (default: all).")
]
ChunkOpt = Annotated[
    int,
    typer.Option(
        "--chunk-rows", help="Items embedded and written per chunk (a kill loses at most those)."
    ),
]


@features_app.command("build", short_help="Embed the items the feature cache lacks.")
@handle_errors
def features_build(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    limit: LimitOpt = None,
    chunk_rows: ChunkOpt = 2048,
    as_json: JsonOpt = False,
) -> None:
    """Embed every item whose sentence embedding is not cached yet, the items the queue will
    serve next first. Resumable: each chunk is on disk once embedded, so a rerun after a kill
    continues where it stopped. Does nothing when the workspace's featurizer uses no embeddings.
    """
    with open_workspace(workspace, db) as ws, progress_bar(not as_json) as bar:
        report = ws.build_features(
            engine=engine,
            scheduler=scheduler,
            workers=workers,
            limit=limit,
            chunk_rows=chunk_rows,
            progress=bar,
        )
        featurizer = ws.config.featurizer
    if report is None:
        if as_json:
            print_json({"featurizer": featurizer, "needs_embeddings": False, "embedded": 0})
        else:
            typer.echo(
                f"Nothing to build: the featurizer {featurizer!r} uses no embeddings "
                "(its features are made by the rounds)."
            )
        return
    if as_json:
        print_json(
            {"featurizer": featurizer, "needs_embeddings": True, **dataclasses.asdict(report)}
        )
        return
    rate = report.embedded / report.seconds if report.seconds else 0.0
    typer.echo(
        f"Embedded {report.embedded:,} items ({report.already_cached:,} already cached, "
        f"{report.missing:,} still missing) in {report.seconds:.1f} s, {rate:,.0f} items/s; "
        f"{report.engine} engine, {report.workers} worker{'s' if report.workers != 1 else ''}."
    )


@features_app.command("status", short_help="Items, cached and missing, per feature block.")
@handle_errors
def features_status(
    workspace: WorkspaceOpt = Path("."), db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Per cached feature block (the sentence embeddings): items, cached, missing, counted by
    distinct text (items with the same text share a row)."""
    with open_workspace(workspace, db) as ws:
        status = ws.feature_status()
    if as_json:
        print_json(dataclasses.asdict(status))
        return
    uses = "uses" if status.needs_embeddings else "does not use"
    typer.echo(f"featurizer {status.featurizer!r} ({uses} the embedding block)")
    for block in status.blocks:
        typer.echo(
            f"{block.block:<22} {block.items:>10,} items {block.cached:>10,} cached "
            f"{block.missing:>10,} missing"
        )
