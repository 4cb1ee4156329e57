"""Running the HTTP API: ``labelloop api``, and the API process ``labelloop serve`` starts
beside the UI (``python -m labeling.service.server``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from labeling.errors import LabelloopError
from labeling.service.app import create_app
from labeling.service.background import Background
from labeling.ui.server import check_port, is_loopback
from labeling.workspace import Workspace

DEFAULT_PORT = 8000


def announce(host: str, port: int, root: Path, echo: Callable[[str], None]) -> None:
    """Where the API is; the same warning as ``serve`` when others can reach it."""
    if not is_loopback(host):
        echo(
            f"warning: the API listens on {host}, reachable from other machines. Anyone who "
            "can reach it may try tokens; put it behind HTTPS for a team."
        )
    echo(f"labelloop API for workspace {root} at http://{host}:{port}/ (OpenAPI: /docs)")


def run(
    root: Path,
    *,
    db_url: str | None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    echo: Callable[[str], None] = print,
    option: str = "--port",
) -> None:
    """Serve the API until interrupted (SIGINT or SIGTERM)."""
    import uvicorn  # the ASGI server: only a running API needs it

    try:
        check_port(host, port)
    except LabelloopError as exc:
        raise LabelloopError(str(exc).replace("option '--port'", f"option '{option}'")) from exc
    ws = Workspace.open(root, db_url=db_url)
    background = Background(root, db_url).start()
    try:
        announce(host, port, root, echo)
        config = uvicorn.Config(
            create_app(ws, background=background),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        uvicorn.Server(config).run()
    finally:
        background.stop()
        ws.close()


def main(argv: list[str] | None = None) -> int:
    """The API process of ``labelloop serve``: stops when its parent is gone."""
    parser = argparse.ArgumentParser(prog="python -m labeling.service.server")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--db", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="labelloop api: %(message)s")
    try:
        run(
            Path(args.workspace),
            db_url=args.db or os.environ.get("LABELLOOP_DB") or None,
            host=args.host,
            port=args.port,
            echo=lambda line: print(line, file=sys.stderr),
            option="--api-port",
        )
    except LabelloopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises it
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
