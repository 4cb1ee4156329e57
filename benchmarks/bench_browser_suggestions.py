"""Key press to next item painted with suggestions on (``model``) against off.

One workspace of ``--rows`` generated items gets a promoted round (an annotator's first
labels, then one round in this process), and is copied; the copy has ``suggestions =
"model"``. Both are served side by side by ``labelloop serve`` and labelled in one Chromium,
in alternating blocks of ``--block`` presses (the order swapped every block, so that neither
mode always runs first or on a warmer machine), the same digits on both. Each press is timed
as bench_browser.py times it. Rounds are off during the runs (``retrain_every = 0``) so that
neither mode pays for a round the other does not.

The store's side of a press is timed too, through the service layer on each copy: the answer
and the next lease, the progress counts, the hint, and with suggestions on the suggestion read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_browser import press_and_time  # noqa: E402
from benchmarks.common import write_corpus, write_result  # noqa: E402
from labeling import Workspace  # noqa: E402
from labeling.annotation.session import UserSession  # noqa: E402
from labeling.config import write_config  # noqa: E402
from tests.browser import chromium, serve, wait_idle  # noqa: E402

LABELS = ["billing", "technical", "shipping", "account", "feedback"]
MODES = ("off", "model")
# The Label page's buttons: five labels, skip and undo; with a guess, Accept too.
BUTTONS = 7


def _prepare(scratch: Path, rows: int, seed_labels: int) -> tuple[dict[str, Path], str]:
    """Two copies of a workspace with a promoted round: suggestions off, and ``model``."""
    root = scratch / "off"
    corpus = write_corpus(scratch / "pool.csv", rows)
    ws = Workspace.create(root, labels=LABELS)
    ws.import_file(corpus, id_field="id")
    ws.add_user("seed")
    _, token = ws.add_user("bench")
    for n in range(seed_labels):
        item = ws.next_item("seed")
        if item is None:
            break
        ws.annotate(item.item_id, "seed", LABELS[n % len(LABELS)])
    ws.retrain()
    # The one-item page's latency (the buffered page: bench_browser_buffer.py).
    write_config(root, replace(ws.config, retrain_every=0, prefetch=0))
    ws.close()
    roots = {"off": root, "model": scratch / "model"}
    shutil.copytree(root, roots["model"])
    on = Workspace.open(roots["model"])
    write_config(roots["model"], replace(on.config, suggestions="model"))
    on.close()
    return roots, token


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)


def _browser_side(roots: dict[str, Path], token: str, presses: int, block: int) -> dict:
    """Per mode, the latencies of ``presses`` key presses, in alternating blocks."""
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    with (
        serve(roots["off"]) as off,
        serve(roots["model"]) as model,
        chromium() as browser,
    ):
        pages: dict[str, Any] = {}
        for mode, server in (("off", off), ("model", model)):
            page = browser.new_page(viewport={"width": 1366, "height": 800})
            page.goto(f"{server.url}?token={token}")
            wait_idle(page, buttons=BUTTONS)
            for n in range(5):  # warm caches and the websocket; not timed
                press_and_time(page, str(1 + n % 5), BUTTONS)
            pages[mode] = page
        shown = pages["model"].get_by_text("Suggested").count()
        done = 0
        blocks = 0
        while done < presses:
            size = min(block, presses - done)
            order = MODES if blocks % 2 == 0 else MODES[::-1]
            for mode in order:
                for n in range(done, done + size):
                    times[mode].append(press_and_time(pages[mode], str(1 + n % 5), BUTTONS))
            done += size
            blocks += 1
    return {"times": times, "suggestion_on_screen": shown > 0, "blocks": blocks}


def _store_side(roots: dict[str, Path], presses: int) -> dict[str, dict[str, float]]:
    """Per mode, ms of the store's part of a press (see the module), and of the suggestion
    read alone; the two workspaces are pressed in turn, so that load hits both alike."""
    workspaces = {mode: Workspace.open(roots[mode]) for mode in MODES}
    whole: dict[str, list[float]] = {mode: [] for mode in MODES}
    guess: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        users = {mode: UserSession(ws, "bench") for mode, ws in workspaces.items()}
        items = {mode: user.current_item() for mode, user in users.items()}
        for n in range(presses):
            for mode in MODES if n % 2 == 0 else MODES[::-1]:
                user, item = users[mode], items[mode]
                assert item is not None
                started = time.perf_counter()
                item = items[mode] = user.answer(item.item_id, LABELS[n % len(LABELS)])
                user.progress()
                if item is not None:
                    user.hint(item.item_id)
                    read = time.perf_counter()
                    user.suggestion(item.item_id)
                    guess[mode].append((time.perf_counter() - read) * 1000)
                whole[mode].append((time.perf_counter() - started) * 1000)
    finally:
        for ws in workspaces.values():
            ws.close()
    return {
        mode: {
            "p50_ms": round(statistics.median(whole[mode]), 1),
            "p95_ms": _percentile(whole[mode], 0.95),
            "suggestion_p50_ms": round(statistics.median(guess[mode]), 2),
            "suggestion_p95_ms": _percentile(guess[mode], 0.95),
        }
        for mode in MODES
    }


def _paired_blocks(times: dict[str, list[float]], block: int) -> dict[str, Any]:
    """Block by block (both modes pressed back to back), the median of ``model`` minus the
    median of ``off``: the comparison least moved by load that comes and goes."""
    differences = []
    for start in range(0, len(times["off"]), block):
        off = statistics.median(times["off"][start : start + block])
        on = statistics.median(times["model"][start : start + block])
        differences.append(round(on - off, 1))
    return {
        "differences_ms": differences,
        "median_difference_ms": round(statistics.median(differences), 1),
        "blocks_model_slower": sum(d > 0 for d in differences),
    }


def run(rows: int, presses: int, block: int, seed_labels: int) -> dict:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        roots, token = _prepare(Path(scratch), rows, seed_labels)
        prepare_seconds = time.perf_counter() - started
        browser = _browser_side(roots, token, presses, block)
        store = _store_side(roots, presses)
    load_after = os.getloadavg()
    per_mode = {
        mode: {
            "p50_ms": round(statistics.median(values), 1),
            "p95_ms": _percentile(values, 0.95),
            "max_ms": round(max(values), 1),
            "presses": len(values),
        }
        for mode, values in browser["times"].items()
    }
    return {
        "rows": rows,
        "presses_per_mode": presses,
        "block": block,
        "blocks": browser["blocks"],
        "seed_labels": seed_labels,
        "suggestion_on_screen": browser["suggestion_on_screen"],
        "browser": per_mode,
        "paired_blocks": _paired_blocks(browser["times"], block),
        "store": store,
        "latencies_ms": {mode: [round(v, 1) for v in vs] for mode, vs in browser["times"].items()},
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "prepare_seconds": round(prepare_seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--presses", type=int, default=300, help="timed presses per mode")
    parser.add_argument("--block", type=int, default=10, help="presses per mode in a row")
    parser.add_argument("--seed-labels", type=int, default=100, help="labels before the round")
    args = parser.parse_args()
    result = run(args.rows, args.presses, args.block, args.seed_labels)
    off, on = result["browser"]["off"], result["browser"]["model"]
    write_result(
        "browser_suggestions",
        {
            "title": "Label page with suggestions on: keypress to next item painted",
            "what": (
                f"One annotator presses the same digits on two copies of a workspace of "
                f"{result['rows']:,} items with a promoted round, one with `suggestions = "
                f'"model"` and one with suggestions off, served side by side by `labelloop '
                f"serve`, in alternating blocks of {result['block']} presses (the order swapped "
                f"each block); {result['presses_per_mode']} timed presses per mode. Time from "
                "the key press to the first animation frame showing the next item, measured in "
                "headless Chromium as for the Label page benchmark. Target: not worse than "
                "without suggestions"
            ),
            "table": [
                {
                    "suggestions": mode,
                    "presses": found["presses"],
                    "p50 ms": found["p50_ms"],
                    "p95 ms": found["p95_ms"],
                    "max ms": found["max_ms"],
                    "store p50 ms": result["store"][mode]["p50_ms"],
                    "store p95 ms": result["store"][mode]["p95_ms"],
                }
                for mode, found in result["browser"].items()
            ],
            "result": result,
            "target_met": on["p50_ms"] <= off["p50_ms"] * 1.05
            and on["p95_ms"] <= off["p95_ms"] * 1.05,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
