"""The background round worker that ``labelloop serve`` starts beside the UI.

It runs queued rounds one at a time, queues one every ``retrain_every`` new human labels, and,
at start, marks failed the rounds of a worker that died. With no round queued and a featurizer
that uses embeddings, it embeds the items the feature cache lacks, one chunk per turn
(:mod:`labeling.rounds.embedding_pass`), so a queued round waits at most one chunk. It stops
when the server that started it is gone. A thread beside it sends the webhooks' deliveries
(:func:`labeling.service.webhooks.run_sender`). Run by hand:
``python -m labeling.rounds.worker --workspace DIR [--db URL]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from labeling.config import load_config
from labeling.errors import LabelloopError
from labeling.rounds import jobs, pipeline
from labeling.rounds.embedding_pass import BackgroundEmbedder
from labeling.service.webhooks import run_sender
from labeling.store.housekeeping import Pruner
from labeling.workspace import Workspace

POLL_SECONDS = 2.0


def start_sender(ws: Workspace) -> tuple[threading.Event, threading.Thread]:
    """The webhooks' sender in a thread; set the event to stop it. Deliveries wait in the
    store, so the thread is a daemon: a stop cuts an attempt off and the next sender sends that
    delivery again (at least once)."""
    stop = threading.Event()
    sender = threading.Thread(target=run_sender, args=(ws, stop), daemon=True, name="webhooks")
    sender.start()
    return stop, sender


def run(root: Path, *, db_url: str | None, parent: int | None, poll: float = POLL_SECONDS) -> int:
    ws = Workspace.open(root, db_url=db_url)
    embedder = BackgroundEmbedder()
    stopping = False
    in_round = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if not in_round:
            # Idle, or embedding a chunk: the pass is resumable (a chunk is kept only once it
            # is whole on disk), so stop now instead of after the chunk, which takes 5-40 s
            # and outlasts serve's grace period. A round runs on to its end (or is killed).
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    stop_sending, sender = start_sender(ws)
    failed = jobs.recover(ws)
    pruner = Pruner()  # old client operations and webhook deliveries, every few minutes
    if failed:
        print(f"worker: marked failed the rounds of a worker that died: {failed}", flush=True)
    try:
        while not stopping:
            if parent is not None and os.getppid() != parent:
                break  # the server is gone
            try:
                ws.config = load_config(ws.root)  # settings may change while we run
                jobs.lower_priority(ws.config.round_nice)
                jobs.recover(ws)
                jobs.maybe_trigger(ws)
                pruned = pruner.maybe_prune(ws.engine)
                if pruned is not None and pruned.rows:
                    print(f"worker: pruned {pruned.rows} old rows", flush=True)
                in_round = True
                round_id = jobs.claim_queued(ws)
                if round_id is not None:
                    done = pipeline.run_round(ws, round_id)
                    print(f"worker: round {round_id} {done.status}", flush=True)
                    continue
                in_round = False
                if _embed_chunk(ws, embedder):
                    continue
            except LabelloopError as exc:
                _complain(f"worker: {exc}")
            except DBAPIError as exc:
                # The store is away (a PostgreSQL restart, a dropped network): wait for it,
                # as the UI does, instead of leaving the server without a worker.
                _complain(f"worker: the store is unreachable ({exc.orig!r}); retrying")
            finally:
                in_round = False
            if stopping:
                break
            time.sleep(poll)
    finally:
        stop_sending.set()
        sender.join(timeout=1.0)
        ws.close()
    return 0


def _embed_chunk(ws: Workspace, embedder: BackgroundEmbedder) -> bool:
    """Embed one chunk of the items the feature cache lacks, if any, and say so."""
    embedded = embedder.step(ws)
    if embedded is None:
        return False
    print(
        f"worker: embedded {embedded.embedded} items in {embedded.seconds:.1f} s "
        f"({embedded.missing} still missing)",
        flush=True,
    )
    return True


def _complain(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labeling.rounds.worker", description=__doc__)
    parser.add_argument("--workspace", "-w", type=Path, default=Path("."))
    parser.add_argument("--db", default=None)
    parser.add_argument("--parent", type=int, default=None, help="stop when this pid is gone")
    args = parser.parse_args(argv)
    return run(args.workspace, db_url=args.db, parent=args.parent)


if __name__ == "__main__":
    raise SystemExit(main())
