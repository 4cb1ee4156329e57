"""A retraining round in a multi-label workspace: wall time and peak memory on a big pool.

A child process builds a SQLite multi-label workspace: generated texts with Zipf-distributed
words, 20 labels, each with a few words of its own that a text holds when its set holds the
label (1-3 labels per text, some texts none); ``--labelled`` pool items come with their sets
(an import with labels) and 500 gold items with theirs. It then runs a first round (the
featurizer fitted and every item featurized), and a second one (features from the cache), and
reports both, with the round's own stage times and its gold figures.
Usage: python benchmarks/bench_multilabel_round.py [--rows 100000] [--labelled 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, peak_rss_mb, write_result, zipf_vocabulary  # noqa: E402

N_LABELS = 20


def write_sets(path: Path, n_rows: int, *, seed: int, prefix: str, labelled: int) -> Path:
    """JSONL of ``n_rows`` texts; the first ``labelled`` carry their label sets."""
    rng = random.Random(seed)
    words, weights = zipf_vocabulary()
    marks = {f"topic{j:02d}": [f"mark{j:02d}{k}" for k in range(4)] for j in range(N_LABELS)}
    names = list(marks)
    with path.open("w", encoding="utf-8") as handle:
        for k in range(n_rows):
            chosen = rng.sample(names, k=rng.choice((0, 1, 1, 2, 2, 3)))
            text = rng.choices(words, cum_weights=weights, k=rng.randint(8, 30))
            for name in chosen:  # each label's words, not always all of them (noise)
                text += rng.sample(marks[name], k=rng.randint(1, 2))
            if rng.random() < 0.05:  # a stray label word in a text without the label
                text.append(rng.choice(marks[rng.choice(names)]))
            rng.shuffle(text)
            row = {"id": f"{prefix}{k:07d}", "text": " ".join(text)}
            row["labels"] = chosen if k < labelled else None
            handle.write(json.dumps(row) + "\n")
    return path


def _child(rows: int, labelled: int, scratch: str) -> None:
    from labeling import Workspace

    root = Path(scratch) / "ws"
    labels = [f"topic{j:02d}" for j in range(N_LABELS)]
    pool = write_sets(Path(scratch) / "pool.jsonl", rows, seed=3, prefix="p", labelled=labelled)
    gold = write_sets(Path(scratch) / "gold.jsonl", 500, seed=4, prefix="g", labelled=500)
    ws = Workspace.create(root, labels=labels, task="multi-label")
    ws.import_file(pool, id_field="id", label_field="labels")
    ws.import_file(gold, id_field="id", label_field="labels", split="gold")
    runs = []
    for name in ("first (featurize all)", "second (features cached)"):
        started = time.perf_counter()
        round_ = ws.retrain()
        seconds = time.perf_counter() - started
        metrics = json.loads(round_.metrics)
        assert round_.status == "succeeded", round_.error
        runs.append(
            {
                "round": name,
                "seconds": round(seconds, 2),
                "round_seconds": metrics["seconds"],
                "strategy": metrics["strategy"],
                "gold_micro_f1": metrics["gold_micro_f1"],
                "gold_macro_f1": metrics["gold_macro_f1"],
                "gold_subset_accuracy": metrics["gold"]["subset_accuracy"],
            }
        )
    print(json.dumps({"runs": runs, "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--labelled", type=int, default=2_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.rows, args.labelled, args.scratch)
        return
    before = _previous(args.rows, args.labelled)
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [sys.executable, __file__, "--child", "--rows", str(args.rows), "--labelled",
             str(args.labelled), "--scratch", scratch],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    found = json.loads(done.stdout.strip().splitlines()[-1])
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    steady = found["runs"][-1]["seconds"]
    result = {
        "title": "A multi-label round (one calibrated classifier per label)",
        "what": (
            f"A SQLite multi-label workspace of {args.rows:,} generated pool texts, "
            f"{N_LABELS} labels (1-3 per text, some none), {args.labelled:,} pool items "
            "imported with their sets and 500 gold items: the first round fits the featurizer "
            "and featurizes every item, the second reads the feature cache. Seconds are wall "
            "time of `Workspace.retrain()`; the gold figures are the round's own."
        ),
        "rows": args.rows,
        "labels": N_LABELS,
        "labelled": args.labelled,
        "gold": 500,
        "load_average": load,
        **found,
        "table": found["runs"],
        "notes": [
            f"Load average while it ran: {', '.join(load)} (1, 5, 15 min) on 2 cores; peak "
            f"memory {found['peak_rss_mb']:,} MB.",
            f"Issue target: a 100k-item multi-label round <= 15 s. The round with the feature "
            f"cache took {steady} s: {'met' if steady <= 15 else 'not met'}"
            + ("" if args.rows == 100_000 else f" (this run had {args.rows:,} items)")
            + ".",
        ],
        "reproduce": "python benchmarks/bench_multilabel_round.py --rows 100000 --labelled 2000",
    }
    if before:
        result["notes"].append(before)
    print(json.dumps(result, indent=2))
    write_result("multilabel_round", result)


def _previous(rows: int, labelled: int) -> str:
    """The result this run replaces, as a note (same sizes only): so a change to the round
    shows its time and gold figures before and after."""
    path = RESULTS / "multilabel_round.json"
    if not path.exists():
        return ""
    old = json.loads(path.read_text())
    if (old.get("rows"), old.get("labelled")) != (rows, labelled):
        return ""
    run = old["runs"][-1]
    return (
        f"The result before this one (commit {old['machine'].get('git_commit')}, load "
        f"{', '.join(old.get('load_average', []))}): the cached round took {run['seconds']} s, "
        f"gold micro-F1 {run['gold_micro_f1']}, macro-F1 {run['gold_macro_f1']}, subset "
        f"accuracy {run['gold_subset_accuracy']}."
    )


if __name__ == "__main__":
    main()
