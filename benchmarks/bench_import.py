"""Import speed and peak memory: N-row CSV into a fresh workspace on SQLite and PostgreSQL.

Each run is its own child process so that peak RSS belongs to that import alone (for
PostgreSQL, the client's; the server is a separate process started for the run).
Usage: python benchmarks/bench_import.py [--rows 100000 ...] [--backend sqlite postgresql]
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


def _child(csv_path: str, ws_dir: str, db_url: str) -> None:
    from labeling import Workspace

    baseline = peak_rss_mb()
    ws = Workspace.create(
        ws_dir,
        labels=["billing", "technical", "shipping", "account", "feedback"],
        db_url=db_url or None,
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
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    runs = []
    server = None
    if "postgresql" in args.backend:
        from tests import pgserver

        server = pgserver.start()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for rows in args.rows:
                csv_path = write_corpus(Path(scratch) / f"corpus_{rows}.csv", rows, labelled=True)
                for backend in args.backend:
                    db_url = ""
                    if backend == "postgresql":
                        assert server is not None
                        db_url = server.create_database(f"import_{rows}")
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            str(csv_path),
                            f"{scratch}/ws_{backend}_{rows}",
                            db_url,
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    run = json.loads(out.stdout.strip().splitlines()[-1])
                    run.update(
                        rows=rows, backend=backend, file_mb=round(csv_path.stat().st_size / 1e6, 1)
                    )
                    runs.append(run)
                    print(run, file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
    write_result(
        "import",
        {
            "what": "CSV (id, text, channel, label) -> workspace, labels recorded as "
            "annotations; two streamed passes (validate, then write in one transaction); "
            "PostgreSQL writes with COPY",
            "runs": runs,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
