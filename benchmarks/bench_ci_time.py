"""Time of the slowest test files, one pytest run per file, as CI runs them (both backends).

CI (``.ci/run``) has a 45-minute budget; these files held most of the time that did not depend
on what they checked (embedding every item with the sentence model where TF-IDF does as well).
Each file runs alone, one after the other, with ``--durations=0``. Wall seconds follow the
machine's load (other work shares its 2 cores); CPU seconds (user + system of pytest and the
processes it waits for: the CLI, ``serve``, Chromium, the round worker) move much less, so
both are kept, with the load average at the start and the end of each file.

``--label before`` on a checkout of the commit before, ``--label after`` on this one: each
label's run replaces its previous one in ``benchmarks/results/ci_time.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, machine, write_result  # noqa: E402

FILES = (
    "tests/test_rounds.py",
    "tests/test_demo_data.py",
    "tests/test_lfs.py",
    "tests/test_round_big_pool.py",
    "tests/test_browser_queue.py",
)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def time_file(checkout: Path, test_file: str, output: Path | None) -> dict[str, Any]:
    """Wall and CPU seconds of one pytest run of ``test_file`` in ``checkout`` (its output,
    with every test's seconds, kept in the folder ``output`` when given)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_start = _load()
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            test_file,
            "-q",
            "-p",
            "no:cacheprovider",
            "--durations=0",
        ],
        cwd=checkout,
        env=dict(os.environ, PYTHONPATH=str(checkout)),
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        (output / f"{Path(test_file).stem}.txt").write_text(done.stdout + done.stderr)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return {
        "file": test_file,
        "wall s": round(wall, 1),
        "CPU s": round(cpu, 1),
        "load at start": load_start,
        "load at end": _load(),
        "result": summary,
    }


def _table(runs: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per file with each run's CPU and wall seconds, and a line of the totals."""
    names = list(dict.fromkeys(row["file"] for run in runs.values() for row in run["rows"]))
    table = []
    for name in [*names, "total"]:
        line: dict[str, Any] = {"file": name}
        for label, run in runs.items():
            for unit in ("CPU s", "wall s"):
                if name == "total":
                    values = [row[unit] for row in run["rows"]]
                    value = "" if None in values else round(sum(values), 1)
                else:
                    found = next((row for row in run["rows"] if row["file"] == name), None)
                    value = "" if found is None or found[unit] is None else found[unit]
                line[f"{label} {unit}"] = value
        table.append(line)
    return table


def write_runs(runs: dict[str, Any], notes: list[str] | None = None) -> Path:
    """Write ``benchmarks/results/ci_time.json`` from the runs (label -> machine and rows),
    and ``notes`` after those of the runs."""
    return write_result(
        "ci_time",
        {
            "title": "CI time of the slowest test files",
            "what": (
                "One `python -m pytest FILE -q --durations=0` per file, serially, both database "
                "backends: wall seconds, and CPU seconds of pytest and the processes it waits "
                "for. Other work shared the 2 cores: the load average of each run is below."
            ),
            "table": _table(runs),
            "notes": [
                f"{label}: commit {run['machine']['git_commit'] or '?'}, {run['machine']['date']}; "
                + "; ".join(
                    f"{Path(row['file']).name} load {row['load at start'] or '?'} -> "
                    f"{row['load at end']}, {row['result']}"
                    for row in run["rows"]
                )
                for label, run in runs.items()
            ]
            + (notes or []),
            "reproduce": "python benchmarks/bench_ci_time.py --label after",
            "runs": runs,
        },
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--label", required=True, help="the run's name: before, after, ...")
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--commit", help="the checkout's commit, when it has no .git")
    parser.add_argument("--output", type=Path, help="a folder for each file's pytest output")
    parser.add_argument("files", nargs="*", default=list(FILES))
    args = parser.parse_args()
    rows = [time_file(args.checkout, name, args.output) for name in args.files]
    path = RESULTS / "ci_time.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else {}
    facts = machine()
    if args.commit:
        facts["git_commit"] = args.commit
    runs[args.label] = {"machine": facts, "rows": rows}
    write_runs(runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
