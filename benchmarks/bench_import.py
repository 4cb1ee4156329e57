"""Import speed and peak memory: N-row CSV into a fresh SQLite workspace.

Each size runs in its own child process so that peak RSS belongs to that import alone.
Usage: python benchmarks/bench_import.py [--rows 100000 ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import peak_rss_mb, write_corpus, write_result  # noqa: E402


def _child(csv_path: str, ws_dir: str) -> None:
    from labeling import Workspace

    baseline = peak_rss_mb()
    ws = Workspace.create(
        ws_dir, labels=["billing", "technical", "shipping", "account", "feedback"]
    )
    started = time.perf_counter()
    report = ws.import_file(csv_path, text_field="text", id_field="id", label_field="label")
    seconds = time.perf_counter() - started
    ws.close()
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "rows_per_second": round(report.rows_read / seconds),
                "imported": report.imported,
                "peak_rss_mb": peak_rss_mb(),
                "rss_before_import_mb": baseline,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for rows in args.rows:
            csv_path = write_corpus(Path(scratch) / f"corpus_{rows}.csv", rows, labelled=True)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(csv_path), f"{scratch}/ws_{rows}"],
                capture_output=True,
                text=True,
                check=True,
            )
            run = json.loads(out.stdout.strip().splitlines()[-1])
            run.update(rows=rows, file_mb=round(csv_path.stat().st_size / 1e6, 1))
            runs.append(run)
    write_result(
        "import",
        {
            "what": "CSV (id, text, channel, label) -> SQLite workspace, labels recorded as "
            "annotations; two streamed passes (validate, then write in one transaction)",
            "runs": runs,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
