"""The LLM labelling function against a local stub server: a first run, then one with the cache.

Issue 23's target: 10,000 items against a local stub server answering in 50 ms, with
concurrency 8, in <= 90 s; a second run with the answers kept in <= 5 s and zero calls. The
stub is an OpenAI-compatible chat-completions server on 127.0.0.1 in a process of its own (as
a real server would be), that sleeps ``--latency`` seconds per request and answers the item's
generated label (a wrong one for one item in ten; for sets, sometimes with a second label).
The corpus is ``benchmarks/common.py``'s (seed 7): 9,800 pool items and 200 gold items. Run
for a single-label and a multi-label workspace (one LF per label, so three times the votes).
The floor is ``items x latency / concurrency`` (62.5 s at the defaults): the rest is the
client's and the store's overhead.

    python benchmarks/bench_llm.py [--items 10000] [--latency 0.05] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_corpus, write_result  # noqa: E402
from labeling import Workspace  # noqa: E402
from labeling.config import write_config  # noqa: E402
from labeling.config_tables import LLMSettings  # noqa: E402

LABELS = ("billing", "technical", "shipping", "account", "feedback")
N_GOLD = 200


def _answer(text: str, truth: dict[str, str], multilabel: bool) -> str:
    """The generated label, wrong for one text in ten; for sets a second label in one in five."""
    label = truth.get(text, LABELS[0])
    digest = hashlib.sha256(text.encode()).digest()
    if digest[0] % 10 == 0:
        label = LABELS[(LABELS.index(label) + 1) % len(LABELS)]
    if multilabel and digest[1] % 5 == 0:
        return f"{label}, {LABELS[(LABELS.index(label) + 2) % len(LABELS)]}"
    return label


def serve(truth_file: Path, latency: float, multilabel: bool) -> None:
    """The stub server: prints its port, then answers until killed."""
    truth = json.loads(truth_file.read_text())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            return

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            time.sleep(latency)
            text = body["messages"][-1]["content"]
            raw = json.dumps(
                {
                    "choices": [
                        {
                            "message": {
                                "role": "assistant",
                                "content": _answer(text, truth, multilabel),
                            }
                        }
                    ],
                    "usage": {"total_tokens": 60},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


def _corpus(directory: Path, n_items: int) -> tuple[Path, Path, dict[str, str]]:
    """Pool and gold CSVs (the gold with labels) and every text's generated label."""
    rows = list(csv.DictReader(write_corpus(directory / "all.csv", n_items, labelled=True).open()))
    truth = {row["text"]: row["label"] for row in rows}
    pool, gold = directory / "pool.csv", directory / "gold.csv"
    for path, part, fields in (
        (pool, rows[N_GOLD:], ["id", "text"]),
        (gold, rows[:N_GOLD], ["id", "text", "label"]),
    ):
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fields, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(part)
    return pool, gold, truth


def run_task(directory: Path, task: str, args: argparse.Namespace) -> dict[str, Any]:
    """Both runs in a fresh workspace of ``task``, against a fresh stub."""
    pool, gold, truth = _corpus(directory, args.items)
    truth_file = directory / "truth.json"
    truth_file.write_text(json.dumps(truth))
    multilabel = task == "multi-label"
    stub = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(truth_file), "--latency", str(args.latency)]
        + (["--sets"] if multilabel else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stub.stdout is not None
        url = f"http://127.0.0.1:{int(stub.stdout.readline())}/v1"
        ws = Workspace.create(directory / "ws", labels=LABELS, task=task)
        ws.import_file(pool, id_field="id")
        ws.import_file(gold, id_field="id", label_field="label", split="gold")
        settings = LLMSettings(url, "stub", max_calls=0, concurrency=args.concurrency)
        write_config(ws.root, replace(ws.config, llm=settings))
        ws.close()
        ws = Workspace.open(directory / "ws")
        load = os.getloadavg()[0]
        runs = []
        for name in ("first", "cached"):
            started = time.perf_counter()
            report = ws.run_llm()
            wall = time.perf_counter() - started
            runs.append({"run": name, "wall_s": round(wall, 2)} | report)
        ws.close()
    finally:
        stub.kill()
        stub.wait()
    floor = args.items * args.latency / args.concurrency
    return {
        "task": task,
        "load_avg_at_start": round(load, 2),
        "floor_s": round(floor, 1),
        "runs": runs,
        "overhead_per_call_ms": round(
            (runs[0]["wall_s"] - floor) / max(runs[0]["calls"], 1) * args.concurrency * 1000, 2
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tasks", nargs="+", default=["single-label", "multi-label"])
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sets", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.latency, args.sets)
        return 0
    results = []
    for task in args.tasks:
        with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
            results.append(run_task(Path(tmp), task, args))
    first = [r["runs"][0] for r in results]
    cached = [r["runs"][1] for r in results]
    write_result(
        "llm_lf",
        {
            "title": "The LLM labelling function against a local stub server",
            "what": (
                f"{args.items:,} items ({N_GOLD} gold), a stub on 127.0.0.1 answering in "
                f"{args.latency * 1000:.0f} ms, concurrency {args.concurrency}: a first run "
                "asks about every item, a second finds every answer kept"
            ),
            "params": {
                "items": args.items,
                "latency_s": args.latency,
                "concurrency": args.concurrency,
            },
            "targets": {"first_s": 90, "cached_s": 5, "cached_calls": 0},
            "results": results,
            "met": all(r["wall_s"] <= 90 for r in first)
            and all(r["wall_s"] <= 5 and r["calls"] == 0 for r in cached),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
