"""``labelloop serve`` and ``demo``: the labelling UI in the browser; ``api``: the HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labeling.cli.common import (
    DbOpt,
    JsonOpt,
    WorkspaceOpt,
    app,
    echo_err,
    handle_errors,
    print_json,
)
from labeling.demo.build import build_demo
from labeling.service.server import run as run_api
from labeling.ui.server import serve as run_server

HostOpt = Annotated[
    str,
    typer.Option(
        "--host", help="Address to listen on; other than loopback, others can reach the UI."
    ),
]
PortOpt = Annotated[int, typer.Option("--port", help="Port to listen on.")]
DEFAULT_API_PORT = 8000
ApiPortOpt = Annotated[
    int, typer.Option("--api-port", help="Port of the HTTP API that runs beside the UI.")
]
NoApiOpt = Annotated[bool, typer.Option("--no-api", help="Do not start the HTTP API.")]
LinkHoursOpt = Annotated[
    float,
    typer.Option("--link-hours", min=0.01, help="How long the printed admin sign-in link works."),
]


@app.command(short_help="Start the labelling UI in the browser.")
@handle_errors
def serve(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8501,
    link_hours: LinkHoursOpt = 24.0,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The address people open, when not http://HOST:PORT/ (behind an HTTPS "
            "proxy): sign-in links name it.",
            show_default=False,
        ),
    ] = None,
    api_port: ApiPortOpt = DEFAULT_API_PORT,
    no_api: NoApiOpt = False,
) -> None:
    """Serve the Streamlit UI for a workspace and print a sign-in link for the first admin.

    The HTTP API (`labelloop api`) runs beside it on --api-port, unless --no-api."""
    code = run_server(
        workspace,
        db_url=db,
        host=host,
        port=port,
        link_hours=link_hours,
        public_url=public_url,
        api_port=None if no_api else api_port,
        echo=typer.echo,
        echo_err=echo_err,
    )
    raise typer.Exit(0 if code in (0, -15, 143) else 1)


@app.command(short_help="Serve the HTTP API: push items, follow labels, predict, label.")
@handle_errors
def api(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on; other than loopback, others can reach it."
        ),
    ] = "127.0.0.1",
    port: PortOpt = DEFAULT_API_PORT,
) -> None:
    """Serve the HTTP API of a workspace (docs/api.md; OpenAPI at /docs) until Ctrl+C.

    Requests carry a person's token: `Authorization: Bearer <token>`."""
    run_api(workspace, db_url=db, host=host, port=port, echo=typer.echo)


@app.command(short_help="Build a workspace on the bundled demo data and serve it.")
@handle_errors
def demo(
    directory: Annotated[Path, typer.Argument(help="Folder for the demo workspace.")] = Path(
        "labelloop-demo"
    ),
    db: DbOpt = None,
    as_json: JsonOpt = False,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Only build the workspace; do not start the UI.")
    ] = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8501,
    api_port: ApiPortOpt = DEFAULT_API_PORT,
    no_api: NoApiOpt = False,
) -> None:
    """Create a workspace on the bundled demo data (support messages, 5 classes), then serve it
    (the UI, and the HTTP API on --api-port unless --no-api)."""
    info = build_demo(directory, db_url=db)
    if as_json:
        print_json(info)
        return
    typer.echo(info["message"])
    if no_serve:
        return
    typer.echo("")
    code = run_server(
        directory,
        db_url=db,
        host=host,
        port=port,
        api_port=None if no_api else api_port,
        echo=typer.echo,
        echo_err=echo_err,
    )
    raise typer.Exit(0 if code in (0, -15, 143) else 1)


# ---------------------------------------------------------------------------- items
