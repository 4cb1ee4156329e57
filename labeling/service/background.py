"""Work the API server leaves to a second process, so that it never slows a request: the drift
check of each pool batch pushed over HTTP (as an import runs it, oldest first), the webhooks'
sender (labeling.service.webhooks, in a thread), pruning old rows (labeling.store.housekeeping)
and, on PostgreSQL, the planner's statistics after pushes.

The checks train a small classifier each; in the API's own process they would hold the GIL and
stretch the transactions of pushes and answers. The process runs at a lower priority, reads
the batches still to check from the store (so a check missed by a crash runs after a restart),
and stops when its parent is gone.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from labeling.service.webhooks import run_sender
from labeling.store.housekeeping import Pruner
from labeling.workspace import Workspace

log = logging.getLogger("labelloop.api")
POLL_SECONDS = 0.5
# The planner's statistics are refreshed at most this often while pushes come in.
STATISTICS_SECONDS = 30.0


class Background:
    """The API server's helper process (see the module)."""

    def __init__(self, root: Path, db_url: str | None) -> None:
        self.command = [sys.executable, "-m", "labeling.service.background"]
        self.command += ["--workspace", str(Path(root).resolve()), "--parent", str(os.getpid())]
        if db_url:
            self.command += ["--db", db_url]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Background:
        self.process = subprocess.Popen(self.command)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def check_pushes(ws: Workspace, failed: set[int]) -> int:
    """Run the drift check of every pushed pool batch still unchecked (but those in
    ``failed``, which failed in this process already); returns how many were checked."""
    done = 0
    for batch_id in ws.unchecked_pushes():
        if batch_id in failed:
            continue
        try:
            ws.check_drift(batch_id)
        except Exception:  # noqa: BLE001  the next batch is still checked; the log says why
            log.exception("drift check of import batch %s failed", batch_id)
            failed.add(batch_id)
        done += 1
    return done


def run(ws: Workspace, parent: int) -> None:
    analyzed = 0.0
    stale = False
    failed: set[int] = set()
    # Old client operations and webhook deliveries: a store served by `labelloop api` alone
    # has no round worker to prune them (under `serve` both prune; a prune is idempotent).
    pruner = Pruner()
    while os.getppid() == parent:
        pruner.maybe_prune(ws.engine)
        checked = check_pushes(ws, failed)
        stale = stale or checked > 0
        if stale and time.monotonic() - analyzed >= STATISTICS_SECONDS:
            ws.refresh_statistics()
            analyzed, stale = time.monotonic(), False
        if not checked:
            time.sleep(POLL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labeling.service.background")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--db", default=None)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="labelloop api: %(message)s")
    os.nice(10)
    ws = Workspace.open(Path(args.workspace), db_url=args.db)
    stop = threading.Event()
    sender = threading.Thread(target=run_sender, args=(ws, stop), name="webhooks", daemon=True)
    sender.start()
    try:
        run(ws, args.parent)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        sender.join(timeout=10)
        ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
