"""Next-item latency: 8 annotators claiming and labelling at once on a large scored pool.

For each backend (SQLite file, PostgreSQL server started for the run): a pool of N generated
items, a promoted round whose scores order the queue (seeded random scores written straight
to the ``score`` table, as a round would), then 8 annotators that each loop "claim the next
item, label it", first as 8 threads of one process, then as 8 separate processes. Each
annotator answers every ``--pace`` seconds (0.5 s: a very fast person); ``--pace 0`` loops
flat out, which measures throughput on this machine rather than what a person waits. We
report p50/p95/p99 of the claim, of the label, and of both together (what a key press
costs), and the errors seen; then the paced threads again while a real round (``labelloop
retrain``: featurize, train on the labels given so far, score and write the whole pool)
runs beside them. Each annotator's first three operations (cold caches right
after opening the store) are left out of the percentiles and reported apart. Next to it,
the naive query a simpler design would run for every claim: the best unlabelled item by
score, sorted on the fly.

Usage: python benchmarks/bench_claims.py [--rows 1000000] [--seconds 20] [--backend ...]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_corpus, write_result  # noqa: E402

LABELS = ["billing", "technical", "shipping", "account", "feedback"]


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)


WARMUP = 3  # each annotator's first operations: cold caches, reported apart


def _summary(
    per_annotator: list[list[tuple[float, float]]], errors: int, seconds: float
) -> dict[str, Any]:
    samples = [s for ops in per_annotator for s in ops[WARMUP:]]
    first = [ops[0][0] for ops in per_annotator if ops]
    claims = [c for c, _ in samples]
    labels = [a for _, a in samples]
    both = [c + a for c, a in samples]
    return {
        "operations": sum(len(ops) for ops in per_annotator),
        "per_second": round(sum(len(ops) for ops in per_annotator) / seconds, 1),
        "errors": errors,
        "first_claim_p50_ms": _pct(first, 0.5),
        "first_claim_max_ms": round(max(first), 2) if first else None,
        **{f"claim_p{int(p * 100)}_ms": _pct(claims, p) for p in (0.5, 0.95, 0.99)},
        **{f"label_p{int(p * 100)}_ms": _pct(labels, p) for p in (0.5, 0.95, 0.99)},
        **{f"both_p{int(p * 100)}_ms": _pct(both, p) for p in (0.5, 0.95, 0.99)},
    }


def _loop(ws: Any, name: str, seconds: float, out: list, errors: list, pace: float) -> None:
    rng = random.Random(name)
    deadline = time.perf_counter() + seconds
    time.sleep(rng.random() * pace)  # people do not press keys in step
    while time.perf_counter() < deadline:
        if pace:
            time.sleep(pace * (0.5 + rng.random()))
        try:
            t0 = time.perf_counter()
            item = ws.next_item(name)
            t1 = time.perf_counter()
            if item is None:
                return
            ws.annotate(item.item_id, name, rng.choice(LABELS), duration_ms=1000)
            t2 = time.perf_counter()
            out.append(((t1 - t0) * 1000, (t2 - t1) * 1000))
        except Exception as exc:  # counted and reported, never hidden
            errors.append(repr(exc))


def _worker(
    root: str, db_url: str, name: str, seconds: float, start_at: float, pace: float
) -> None:
    """One annotator in its own process; prints its samples as JSON."""
    from labeling import Workspace

    ws = Workspace.open(root, db_url=db_url or None)
    out: list = []
    errors: list = []
    time.sleep(max(0.0, start_at - time.time()))
    _loop(ws, name, seconds, out, errors, pace)
    ws.close()
    print(json.dumps({"samples": out, "errors": errors}))


def _prepare(root: Path, db_url: str, csv_path: Path, annotators: int) -> dict[str, Any]:
    import numpy as np
    from sqlmodel import Session, col, select

    from labeling import Workspace
    from labeling.config import write_config
    from labeling.store import db
    from labeling.store.bulk import bulk_insert
    from labeling.store.models import Item, Round, Score, utcnow

    ws = Workspace.create(root, labels=LABELS, db_url=db_url or None)
    # The round run beside the annotators uses the featurizer meant for big pools.
    ws.config = replace(ws.config, featurizer="hashing", retrain_every=0)
    write_config(ws.root, ws.config)
    started = time.perf_counter()
    ws.import_file(csv_path, text_field="text", id_field="id")
    imported = time.perf_counter() - started
    with Session(ws.engine) as session:
        ids = np.array(session.exec(select(Item.id).order_by(col(Item.id))).all())
    scores = np.random.default_rng(0).random(len(ids))
    started = time.perf_counter()
    with db.write_session(ws.engine) as session:
        round_ = Round(status="succeeded", trigger="benchmark", promoted=True, promoted_at=utcnow())
        session.add(round_)
        session.flush()
        round_id = round_.id
    for start in range(0, len(ids), 50_000):
        with db.write_session(ws.engine) as session:
            bulk_insert(
                session,
                Score.__table__,  # type: ignore[attr-defined]
                [
                    {"round_id": round_id, "item_id": int(i), "score": float(s)}
                    for i, s in zip(
                        ids[start : start + 50_000], scores[start : start + 50_000], strict=True
                    )
                ],
            )
    # What a round does after writing its scores (the import refreshed the rest itself).
    db.refresh_statistics(ws.engine, Score.__table__.name)  # type: ignore[attr-defined]
    scored = time.perf_counter() - started
    for k in range(annotators):
        ws.add_user(f"a{k}")
    ws.close()
    return {"import_seconds": round(imported, 1), "scores_seconds": round(scored, 1)}


def _naive(root: Path, db_url: str, repeats: int = 15) -> dict[str, Any]:
    """The best unlabelled, unleased item by score, sorted on the fly (index defeated)."""
    from labeling import Workspace

    ws = Workspace.open(root, db_url=db_url or None)
    sql = (
        "SELECT item.id FROM item JOIN score ON score.item_id = item.id "
        "WHERE score.round_id = (SELECT max(id) FROM round WHERE promoted) "
        "AND item.split = 'pool' AND item.n_labels < 1 "
        "AND NOT EXISTS (SELECT 1 FROM lease WHERE lease.item_id = item.id) "
        "ORDER BY score.score + 0.0 DESC LIMIT 1"
    )
    times = []
    with ws.engine.connect() as conn:
        for _ in range(repeats):
            t0 = time.perf_counter()
            conn.exec_driver_sql(sql).first()
            times.append((time.perf_counter() - t0) * 1000)
    ws.close()
    return {"naive_p50_ms": _pct(times, 0.5), "naive_p95_ms": _pct(times, 0.95)}


def _threads(
    root: Path, db_url: str, annotators: int, seconds: float, pace: float
) -> dict[str, Any]:
    from labeling import Workspace

    ws = Workspace.open(root, db_url=db_url or None)
    outs: list[list] = [[] for _ in range(annotators)]
    errors: list = []
    threads = [
        threading.Thread(target=_loop, args=(ws, f"a{k}", seconds, outs[k], errors, pace))
        for k in range(annotators)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ws.close()
    result = _summary(outs, len(errors), seconds)
    result["first_errors"] = errors[:3]
    return result


def _processes(
    root: Path, db_url: str, annotators: int, seconds: float, pace: float
) -> dict[str, Any]:
    start_at = time.time() + 3.0  # every process imports and opens the store first
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(root),
                db_url,
                f"a{k}",
                str(seconds),
                str(start_at),
                str(pace),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(annotators)
    ]
    outs: list[list] = []
    errors: list = []
    for proc in procs:
        stdout, _ = proc.communicate()
        found = json.loads(stdout.strip().splitlines()[-1])
        outs.append([tuple(s) for s in found["samples"]])
        errors += found["errors"]
    result = _summary(outs, len(errors), seconds)
    result["first_errors"] = errors[:3]
    return result


def _during_round(root: Path, db_url: str, annotators: int, pace: float) -> dict[str, Any]:
    """The paced threads loop while a real round (``labelloop retrain``) runs beside it."""
    from labeling import Workspace

    command = [sys.executable, "-m", "labeling.cli", "retrain", "-w", str(root), "--json"]
    if db_url:
        command += ["--db", db_url]
    started = time.perf_counter()
    round_proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ws = Workspace.open(root, db_url=db_url or None)
    outs: list[list] = [[] for _ in range(annotators)]
    errors: list = []
    stop = threading.Event()

    def loop(k: int) -> None:
        while not stop.is_set():
            _loop(ws, f"a{k}", 5.0, outs[k], errors, pace)

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(annotators)]
    for t in threads:
        t.start()
    round_proc.wait()
    round_seconds = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join()
    ws.close()
    result = _summary(outs, len(errors), round_seconds)
    result |= {
        "mode": "threads, during a round",
        "pace": pace,
        "round_seconds": round(round_seconds, 1),
        "round_exit": round_proc.returncode,
        "first_errors": errors[:3],
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--pace", type=float, nargs="+", default=[0.5, 0.0])
    parser.add_argument(
        "--no-round",
        dest="during_round",
        action="store_false",
        help="skip the run with a real round going on beside the annotators",
    )
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        root, db_url, name, seconds, start_at, pace = args.worker
        _worker(root, db_url, name, float(seconds), float(start_at), float(pace))
        return 0
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
                    db_url = server.create_database("claims")
                root = Path(scratch) / f"ws_{backend}"
                run: dict[str, Any] = {"backend": backend, "rows": args.rows}
                run |= _prepare(root, db_url, csv_path, args.annotators)
                run |= _naive(root, db_url)
                print(run, file=sys.stderr)
                for pace in args.pace:
                    for mode, measure in (("threads", _threads), ("processes", _processes)):
                        found = measure(root, db_url, args.annotators, args.seconds, pace)
                        found |= {"mode": mode, "pace": pace}
                        print(found, file=sys.stderr)
                        run.setdefault("loops", []).append(found)
                if args.during_round:
                    found = _during_round(root, db_url, args.annotators, args.pace[0])
                    print(found, file=sys.stderr)
                    run["loops"].append(found)
                runs.append(run)
    finally:
        if server is not None:
            server.stop()
    write_result(
        "claims",
        {
            "what": f"{args.annotators} annotators each looping 'claim the next item, label it' "
            f"for {args.seconds:g} s on a {args.rows:,}-item pool ordered by a promoted "
            "round's scores; as threads of one process and as separate processes; at a "
            "person's pace (an answer every `pace` seconds on average) and flat out (pace 0)",
            "parameters": {
                "rows": args.rows,
                "annotators": args.annotators,
                "seconds": args.seconds,
                "pace": args.pace,
            },
            "runs": runs,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
