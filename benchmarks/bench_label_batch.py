"""Server CPU per answer of the buffered Label page's route, without a browser.

A workspace with ``--rows`` generated items and ``prefetch = 3`` is served by ``labelloop
serve``; ``--tabs`` clients (one annotator each, in threads of this process) sign in with
their links and label through ``POST /label/batch`` as the page's component does: each batch
carries ``--per-batch`` answers and refills the buffer to four items. We read the Streamlit
process's CPU time (user + system, from /proc) before and after, and divide by the answers.
The browser's side (paint latency, presses dropped) is ``bench_browser_buffer.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import Session, func, select  # noqa: E402

from benchmarks.common import write_corpus, write_result  # noqa: E402
from labeling import Workspace  # noqa: E402
from labeling.config import write_config  # noqa: E402
from labeling.store.models import Annotation  # noqa: E402
from tests.browser import NO_REDIRECTS, cpu_seconds, serve, session_cookie, streamlit_pid  # noqa: E402

LABELS = ["billing", "technical", "shipping", "account", "feedback"]


def _labeller(base: str, cookie: str, answers: int, per_batch: int, out: list[float]) -> None:
    tab = "bench-" + secrets.token_hex(8)
    keep: list[str] = []
    pending: list[dict] = []
    done = 0

    def send() -> dict:
        body = {"tab": tab, "ops": pending, "keep": keep, "want": 4}
        request = urllib.request.Request(
            base + "/label/batch", data=json.dumps(body).encode(), method="POST"
        )
        request.add_header("Content-Type", "application/json")
        request.add_header("Cookie", cookie)
        request.add_header("Origin", base)
        started = time.perf_counter()
        with NO_REDIRECTS.open(request, timeout=60) as reply:
            data = json.loads(reply.read())
        out.append((time.perf_counter() - started) * 1000)
        return data

    reply = send()
    keep = [item["id"] for item in reply["items"]]
    while done < answers and keep:
        for _ in range(min(per_batch, len(keep), answers - done)):
            item = keep.pop(0)
            label = LABELS[secrets.randbelow(len(LABELS))]
            pending.append({"cid": secrets.token_hex(12), "op": "answer", "item": item,
                            "label": label, "ms": 800})  # fmt: skip
        reply = send()
        if not all(ack["ok"] for ack in reply["acks"]):
            raise RuntimeError(f"refused: {reply['acks']}")
        done += len(pending)
        pending = []
        keep += [item["id"] for item in reply["items"]]


def run(rows: int, tabs: int, answers: int, per_batch: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "ws"
        corpus = write_corpus(Path(scratch) / "pool.csv", rows)
        ws = Workspace.create(root, labels=LABELS)
        ws.import_file(corpus, id_field="id")
        tokens = [ws.add_user(f"tab{n}")[1] for n in range(tabs)]
        config = replace(ws.config, prefetch=3, featurizer="tfidf", retrain_every=0)
        write_config(root, config)
        ws.close()
        latencies: list[float] = []
        with serve(root) as server:
            base = server.url.rstrip("/")
            pid = streamlit_pid(server.process.pid)
            cookies = [session_cookie(f"{base}/?token={token}") for token in tokens]
            before = cpu_seconds(pid)
            started = time.perf_counter()
            threads = [
                threading.Thread(
                    target=_labeller, args=(base, cookie, answers, per_batch, latencies)
                )
                for cookie in cookies
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            cpu = cpu_seconds(pid) - before
        with Workspace.open(root) as ws, Session(ws.engine) as session:
            stored = session.exec(select(func.count()).select_from(Annotation)).one()
    latencies.sort()
    total = tabs * answers
    return {
        "rows": rows,
        "tabs": tabs,
        "answers": total,
        "stored": stored,
        "per_batch": per_batch,
        "cpu_ms_per_answer": round(cpu * 1000 / total, 2),
        "answers_per_second": round(total / wall, 1),
        "batch_p50_ms": round(statistics.median(latencies), 1),
        "batch_p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "load_average": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tabs", type=int, default=8)
    parser.add_argument("--answers", type=int, default=200, help="per tab")
    parser.add_argument("--per-batch", type=int, default=1)
    args = parser.parse_args()
    results = [run(args.rows, args.tabs, args.answers, n) for n in sorted({1, args.per_batch})]
    target = 20.0
    write_result(
        "label_batch",
        {
            "title": "Buffered Label page: server CPU per answer (POST /label/batch)",
            "what": (
                f"{args.tabs} annotators at once, each answering {args.answers} items through "
                f"the buffered Label page's route on a pool of {args.rows:,} items (SQLite), "
                "as fast as the server replies; CPU time of the Streamlit process (which serves "
                "the route) divided by the answers. No browser: the clients are threads"
            ),
            "table": [
                {
                    "pool items": r["rows"],
                    "tabs": r["tabs"],
                    "answers per batch": r["per_batch"],
                    "answers": r["answers"],
                    "stored": r["stored"],
                    "server CPU ms per answer": r["cpu_ms_per_answer"],
                    "answers/s": r["answers_per_second"],
                    "batch p50 ms": r["batch_p50_ms"],
                    "batch p95 ms": r["batch_p95_ms"],
                    "target CPU ms": target,
                    "met": "yes" if r["cpu_ms_per_answer"] <= target else "no",
                }
                for r in results
            ],
            "notes": [
                "Each batch applies its answers, leases the next items in one transaction, and "
                "(as every batch that acknowledges an answer does) reads the progress line's "
                "counts, the pool's cached for a few seconds. Rounds are off (retrain_every = 0) "
                "so that the figure is the route's own; with rounds on they run in the worker "
                "process.",
                "The clients send the next batch as soon as a reply comes, with no pause, so "
                "the batch latency is mostly queueing behind the other clients' batches (one "
                "writer at a time on SQLite): the answers per second are the server's ceiling.",
            ],
            "reproduce": (
                f"python benchmarks/bench_label_batch.py --rows {args.rows} --tabs {args.tabs} "
                f"--answers {args.answers} --per-batch 3"
            ),
            "result": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
