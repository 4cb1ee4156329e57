"""Pruning old client operations (labeling.store.housekeeping) on SQLite, and what an annotator
feels meanwhile.

A workspace with ``--items`` generated items gets ``--ops`` client operations written straight
into ``clientop``, all past their retention, in two shapes: older than the most a tab keeps
(180 days: every row goes, by plain batched DELETEs) and 31-170 days old in tabs of 1,000
operations (each tab's 200 newest stay: the prune walks the old rows and looks up each tab's
newest). While each prune runs, another process labels flat out (answer and next item in one
transaction, as the one-item Label page does on each key press) and records each press's
latency; the same loop runs once with no prune for comparison.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, insert, select  # noqa: E402
from sqlmodel import Session  # noqa: E402

from benchmarks.common import write_corpus, write_result  # noqa: E402
from labeling import Workspace  # noqa: E402
from labeling.store import housekeeping  # noqa: E402
from labeling.store.models import Annotator, ClientOp, utcnow  # noqa: E402

OPS = ClientOp.__table__  # type: ignore[attr-defined]
TAB_OPS = 1_000
CHUNK = 50_000


def _fill(ws: Workspace, ops: int, *, ancient: bool) -> None:
    """``ops`` operations past their retention (see the module)."""
    with Session(ws.engine) as session:
        session.execute(delete(OPS))
        me = session.execute(select(Annotator.id).where(Annotator.name == "ann")).scalar()
        start = utcnow() - timedelta(days=400 if ancient else 170)
        step = timedelta(days=139) / ops  # 170 to 31 days ago
        for first in range(0, ops, CHUNK):
            rows = [
                {"cid": f"c{k:09d}", "annotator_id": me, "tab": f"t{k // TAB_OPS:06d}",
                 "op": "answer", "created_at": start + step * k}
                for k in range(first, min(ops, first + CHUNK))
            ]  # fmt: skip
            session.execute(insert(OPS), rows)
        session.commit()


def _label(root: str, stop: Any, out: Any) -> None:
    """Answer and take the next item until ``stop``; each press's latency in ms to ``out``."""
    presses: list[tuple[float, float]] = []
    with Workspace.open(Path(root)) as ws:
        item = ws.next_item("ann")
        while item is not None and not stop.is_set():
            started = time.perf_counter()
            item = ws.answer_and_next(item.item_id, "ann", "billing")
            presses.append((time.time(), (time.perf_counter() - started) * 1000))
    out.put(presses)


def _while_labelling(root: Path, work: Callable[[], object]) -> tuple[float, list[float]]:
    """Run ``work()`` while another process labels; its seconds and the presses' latencies."""
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    labeller = context.Process(target=_label, args=(str(root), stop, out))
    labeller.start()
    time.sleep(3.0)  # the labeller's imports and first claim
    started, since = time.perf_counter(), time.time()
    work()
    seconds, until = time.perf_counter() - started, time.time()
    stop.set()
    presses = out.get(timeout=120)
    labeller.join()
    return seconds, [ms for at, ms in presses if since <= at <= until]


def _prune_into(ws: Workspace, batch: int, done: list[housekeeping.Pruned]) -> None:
    done.append(housekeeping.prune(ws.engine, batch=batch))


def _row(
    case: str, seconds: float, latencies: list[float], done: housekeeping.Pruned | None = None
) -> dict:
    latencies = sorted(latencies) or [0.0]
    return {
        "case": case,
        "rows pruned": done.clientops if done else 0,
        "transactions": done.batches if done else 0,
        "seconds": round(seconds, 1),
        "presses": len(latencies),
        "press p50 ms": round(statistics.median(latencies), 1),
        "press p95 ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "press max ms": round(latencies[-1], 1),
    }


def run(items: int, ops: int, batches: list[int]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "ws"
        corpus = write_corpus(Path(scratch) / "pool.csv", items)
        ws = Workspace.create(root, labels=["billing", "technical"])
        ws.import_file(corpus, id_field="id")
        ws.add_user("ann")
        seconds, latencies = _while_labelling(root, lambda: time.sleep(10.0))
        rows.append(_row("no prune (10 s of labelling)", seconds, latencies))
        done: list[housekeeping.Pruned] = []
        shapes = ((True, "older than 180 days"), (False, "31-170 days, tabs of 1,000"))
        for batch, (ancient, case) in itertools.product(batches, shapes):
            _fill(ws, ops, ancient=ancient)
            seconds, latencies = _while_labelling(
                root, functools.partial(_prune_into, ws, batch, done)
            )
            rows.append(_row(f"{ops:,} ops {case}, batches of {batch:,}", seconds, latencies,
                             done[-1]))  # fmt: skip
        ws.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[housekeeping.BATCH_ROWS])
    args = parser.parse_args()
    table = run(args.items, args.ops, args.batch)
    write_result(
        "prune",
        {
            "title": "Pruning old client operations while an annotator labels",
            "what": (
                f"{args.ops:,} rows of `clientop` past their retention on a SQLite store of "
                f"{args.items:,} items, pruned by `labeling.store.housekeeping.prune` (batches "
                f"of the rows given, each its own transaction, "
                f"{housekeeping.PAUSE_SECONDS * 1000:.0f} ms apart) while another process "
                "answers and takes the next item flat out (one transaction per press, as the "
                "one-item Label page); the presses counted are those that ended during the prune"
            ),
            "table": table,
            "notes": [
                "'31-170 days' keeps each tab's 200 newest operations (1/5 of the rows): the "
                "prune reads every old row and looks each tab up once per batch. Presses wait "
                "for at most one batch's write lock.",
                f"One-minute load average at the end: {os.getloadavg()[0]:.1f} on "
                f"{os.cpu_count()} cores (other work shared the machine).",
            ],
            "reproduce": (
                f"python benchmarks/bench_prune.py --items {args.items} --ops {args.ops} "
                f"--batch {' '.join(map(str, args.batch))}"
            ),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
