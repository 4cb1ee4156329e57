"""Bulk-label 100k items of a big pool and undo the batch, while an annotator keeps claiming.

For each backend: import ``--rows`` items, give them a promoted round's queue scores (the top
50,000, as a real round stores them), then bulk-label ``--bulk`` items (a list of external ids,
as a similar-items result or a search hands over) and undo the batch. A thread claims the next
item and labels it meanwhile, in a loop; its claim latencies are reported for a quiet spell
before, during the bulk write and during the undo. Targets (issue 21): each step <= 10 s,
claims p95 <= 20 ms meanwhile.

With ``--task multi-label`` the workspace holds sets: two batches first give the chosen items
different sets (``set {billing}`` on every second one, ``add technical`` on every third, so
the measured batch meets four different sets, none included), then the measured batch adds
``shipping`` to every chosen item's set (issue 22), and is undone. Results go to
``bulk_multilabel.json``.

    python benchmarks/bench_bulk.py --rows 1000000 --bulk 100000
    python benchmarks/bench_bulk.py --rows 1000000 --bulk 100000 --task multi-label
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_corpus, write_result  # noqa: E402

LABELS = ("billing", "technical", "shipping", "account", "feedback")
QUEUE_SCORES = 50_000


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)


def _prepare(
    root: Path, db_url: str, csv_path: Path, task: str = "single-label"
) -> tuple[Any, dict[str, Any]]:
    import numpy as np
    from sqlmodel import col, select

    from labeling import Workspace
    from labeling.store import db
    from labeling.store.bulk import bulk_insert
    from labeling.store.models import Item, Round, Score, utcnow

    ws = Workspace.create(root, labels=LABELS, db_url=db_url or None, task=task)
    started = time.perf_counter()
    ws.import_file(csv_path, text_field="text", id_field="id")
    imported = time.perf_counter() - started
    with db.read_session(ws.engine) as session:
        ids = np.array(session.exec(select(Item.id).order_by(col(Item.id))).all())
    rng = np.random.default_rng(0)
    scored = rng.choice(ids, size=min(QUEUE_SCORES, len(ids)), replace=False)
    with db.write_session(ws.engine) as session:
        round_ = Round(status="succeeded", trigger="benchmark", promoted=True, promoted_at=utcnow())
        session.add(round_)
        session.flush()
        round_id = round_.id
    with db.write_session(ws.engine) as session:
        bulk_insert(
            session,
            Score.__table__,  # type: ignore[attr-defined]
            [
                {"round_id": round_id, "item_id": int(i), "score": float(s), "closed": False}
                for i, s in zip(scored, rng.random(len(scored)), strict=True)
            ],
        )
    db.refresh_statistics(ws.engine, Score.__table__.name)  # type: ignore[attr-defined]
    ws.add_user("eng", role="engineer")
    ws.add_user("ann")
    return ws, {"import_seconds": round(imported, 1)}


class _Annotator(threading.Thread):
    """Claims the next item and labels it, in a loop, recording each claim's latency."""

    def __init__(self, ws: Any, pace: float) -> None:
        super().__init__(daemon=True)
        self.ws, self.pace = ws, pace
        self.phase = "before"
        self.claims: dict[str, list[float]] = {"before": [], "bulk": [], "undo": [], "after": []}
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            phase = self.phase
            try:
                started = time.perf_counter()
                item = self.ws.next_item("ann")
                self.claims[phase].append(time.perf_counter() - started)
                if item is not None:
                    label = LABELS[item.item_id % len(LABELS)]
                    self.ws.annotate(item.item_id, "ann", [label] if self.ws.multilabel else label)
            except Exception as exc:  # reported, not hidden: a benchmark must not stop here
                self.errors.append(repr(exc))
            time.sleep(self.pace)


def _run(ws: Any, n_bulk: int, pace: float, quiet: float) -> dict[str, Any]:
    from sqlmodel import col, select

    from labeling.store import db
    from labeling.store.models import Item

    with db.read_session(ws.engine) as session:
        externals = list(session.exec(select(Item.external_id).order_by(col(Item.id))).all())
    step = max(1, len(externals) // n_bulk)
    chosen = externals[::step][:n_bulk]
    action: dict[str, Any] = {"label": "billing"}
    if ws.multilabel:  # the sets the measured batch meets: {billing}, {technical}, both, none
        ws.bulk_label(item_ids=chosen[::2], action="set", label=["billing"], by="eng",
                      override=True)  # fmt: skip
        ws.bulk_label(item_ids=chosen[::3], action="add", label="technical", by="eng",
                      override=True)  # fmt: skip
        action = {"action": "add", "label": "shipping"}
    load_before = os.getloadavg()[0]
    annotator = _Annotator(ws, pace)
    annotator.start()
    time.sleep(quiet)
    annotator.phase = "bulk"
    started = time.perf_counter()
    done = ws.bulk_label(item_ids=chosen, by="eng", override=True, **action)
    bulk_seconds = time.perf_counter() - started
    annotator.phase = "undo"
    started = time.perf_counter()
    undone = ws.undo_bulk(done["batch"], by="eng")
    undo_seconds = time.perf_counter() - started
    annotator.phase = "after"
    time.sleep(quiet)
    annotator.stop.set()
    annotator.join()
    found: dict[str, Any] = {
        "bulk_items": len(chosen),
        "labelled": done["count"],
        "skipped_labelled": done["skipped_labelled"],
        "removed": undone["removed"],
        "bulk_seconds": round(bulk_seconds, 2),
        "undo_seconds": round(undo_seconds, 2),
        "errors": annotator.errors[:5],
        # 1-minute load average of the machine (other engineers' work included) around it.
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }
    for phase, values in annotator.claims.items():
        found[f"claims_{phase}"] = len(values)
        found[f"claim_{phase}_p50_ms"] = _pct(values, 50)
        found[f"claim_{phase}_p95_ms"] = _pct(values, 95)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bulk", type=int, default=100_000)
    parser.add_argument("--pace", type=float, default=0.05, help="seconds between claims")
    parser.add_argument("--quiet", type=float, default=5.0, help="seconds before and after")
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--note", action="append", default=[], help="a note for the report")
    parser.add_argument("--task", choices=["single-label", "multi-label"], default="single-label")
    args = parser.parse_args()
    runs = []
    server = None
    if "postgresql" in args.backend:
        from tests import pgserver

        server = pgserver.start()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            csv_path = write_corpus(Path(scratch) / "corpus.csv", args.rows)
            for backend in args.backend:
                db_url = ""
                if backend == "postgresql":
                    assert server is not None
                    db_url = server.create_database("bulk")
                ws, run = _prepare(Path(scratch) / f"ws_{backend}", db_url, csv_path, args.task)
                run = {"backend": backend, "rows": args.rows, **run}
                run |= _run(ws, args.bulk, args.pace, args.quiet)
                ws.close()
                print(run, file=sys.stderr)
                runs.append(run)
    finally:
        if server is not None:
            server.stop()
    sets = args.task == "multi-label"
    write_result(
        "bulk_multilabel" if sets else "bulk",
        {
            "what": (
                f"add a label to the sets of {args.bulk:,} items of a {args.rows:,}-item "
                "multi-label pool (a list of external ids; their sets before: four different "
                "ones) and undo the batch"
                if sets
                else f"bulk-label {args.bulk:,} items of a {args.rows:,}-item pool (a list of "
                "external ids) and undo the batch"
            )
            + ", while one annotator thread of the same process claims the next item and "
            f"labels it every {args.pace:g} s",
            "task": args.task,
            "parameters": vars(args),
            "runs": runs,
            "notes": args.note,
            "reproduce": f"python benchmarks/bench_bulk.py --rows {args.rows} --bulk {args.bulk}"
            + (" --task multi-label" if sets else ""),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
