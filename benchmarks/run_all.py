"""Run every benchmark, then regenerate docs/benchmarks.md.

Usage: python benchmarks/run_all.py [--quick]

The full run takes about an hour on a 2-core machine (the 1M-item runs dominate); ``--quick``
uses 100k items where the full run uses 1M, to check that everything still works. Each
benchmark writes its JSON to benchmarks/results/ as it finishes, so an interrupted run keeps
what it measured.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _steps(quick: bool) -> list[list[str]]:
    big = "100000" if quick else "1000000"
    return [
        ["bench_import.py", "--rows", "100000", big],
        ["bench_claims.py", "--rows", big],
        ["bench_search.py", "--rows", big],
        ["bench_bulk.py", "--rows", big, "--bulk", "100000"],
        ["bench_rounds.py", "--rows", "100000", big],
        ["bench_round_core.py", "--rows", "100000", big],
        ["bench_multilabel_strategies.py", "--rows", "102000", *([] if quick else ["1002000"])],
        ["bench_multilabel_round.py", "--rows", "100000", "--labelled", "2000"],
        ["bench_lf_apply.py", "--rows", big],
        ["bench_browser.py", "--rows", "100000", "--labels", "200"],
        ["bench_browser_suggestions.py", "--rows", "100000", "--presses", "300"],
        ["bench_browser_buffer.py", "--rows", "100000", "--presses", "200", "--sessions", "8"],
        ["bench_label_batch.py", "--rows", "100000", "--tabs", "8", "--per-batch", "3"],
        ["bench_label_efficiency.py"],
        ["bench_weak_quality.py", "--seeds", "5"],
        ["bench_weak_weight.py", "--seeds", "3"],
        ["bench_embeddings.py", "--texts", "1000"],
        ["bench_similar.py", "--rows", big],
        ["bench_predict.py", "--rows", "20000", "--texts", "10000", "--file-rows", "100000"],
        ["bench_api.py", "--ingest", "100000", "--walk", big],
        ["bench_llm.py"],
        ["bench_confused_pairs.py", "--rows", "100000", big],
        ["bench_prune.py", "--items", "100000", "--ops", big, "--batch", "5000", "2000"],
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    failed = []
    for script, *options in _steps(args.quick):
        started = time.perf_counter()
        print(f"== {script} {' '.join(options)}", flush=True)
        done = subprocess.run([sys.executable, str(HERE / script), *options], check=False)
        print(f"   {time.perf_counter() - started:.0f} s, exit {done.returncode}", flush=True)
        if done.returncode:
            failed.append(script)
    subprocess.run([sys.executable, str(HERE / "report.py")], check=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
