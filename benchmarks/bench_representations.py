"""Representations on real data: fixed tfidf, fixed sentence embeddings and ``auto``.

For each data set, ``simulate`` runs the default strategy and ``random`` with each setting
(same seeds, same pool and test set). Every count is read against one target per data set:
95% of the best full-supervision macro-F1 of any featurizer (``auto``'s full-supervision run
reports the best of its candidates, the hybrid included). The issue's targets:

* labels to the target with ``auto`` and the default strategy, over random's with tfidf
  (today's baseline): <= 0.4;
* ``auto`` with the default strategy needs no more labels (within one batch) than the better
  of the fixed tfidf and embeddings runs;
* macro-F1 at 20 labels with ``auto`` >= the better fixed featurizer's (mean over seeds);
* the default strategy never below random (its curve minus random's, per featurizer).

Usage: python benchmarks/bench_representations.py [--seeds 5] [--datasets youtube trec]
       [--csv FILE TEXT_FIELD LABEL_FIELD] (a labelled file of your own; 25% held out)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_label_efficiency import BUDGETS, trec, youtube  # noqa: E402
from benchmarks.common import RESULTS, write_result  # noqa: E402

SETTINGS = ("tfidf", "sentence-embeddings", "auto")


def _labels_to(curve: list[dict], target: float) -> int | None:
    return next((p["labels"] for p in curve if p["macro_f1"] >= target), None)


def _at(curve: list[dict], labels: int) -> float | None:
    return next((p["macro_f1"] for p in curve if p["labels"] == labels), None)


def _csv(path: str, text_field: str, label_field: str) -> tuple[list, list, None, None]:
    import pandas as pd

    frame = pd.read_csv(path, dtype=str).dropna(subset=[text_field, label_field])
    return frame[text_field].tolist(), frame[label_field].tolist(), None, None


def run_dataset(name: str, data, budget: int, args) -> dict:
    from labeling.rounds.simulate import simulate
    from strategies import DEFAULT_STRATEGY

    runs = {}
    for setting in SETTINGS:
        started = time.perf_counter()
        report = simulate(
            data[0],
            data[1],
            test_texts=data[2],
            test_labels=data[3],
            strategies=["random", DEFAULT_STRATEGY],
            budget=budget,
            batch=args.batch,
            seeds=args.seeds,
            featurizer=setting,
            progress=lambda message, s=setting: print(f"{name} {s}: {message}", file=sys.stderr),
        )
        report["wall_seconds"] = round(time.perf_counter() - started, 1)
        runs[setting] = report
    return runs


def summarise(name: str, runs: dict, batch: int) -> tuple[list[dict], list[str], dict]:
    from strategies import DEFAULT_STRATEGY

    best_full = max(r["full_supervision"]["macro_f1"] for r in runs.values())
    target = round(0.95 * best_full, 4)
    pool = runs["auto"]["settings"]["pool"]
    rows, counts, at20 = [], {}, {}
    for setting, report in runs.items():
        for strategy, summary in report["strategies"].items():
            curve = summary["curve"]
            counts[setting, strategy] = _labels_to(curve, target)
            at20[setting, strategy] = _at(curve, 20)
            rows.append(
                {
                    "data set": name,
                    "featurizer": setting,
                    "strategy": strategy,
                    "full supervision": report["full_supervision"]["macro_f1"],
                    "labels to target": counts[setting, strategy],
                    "macro-F1 at 20": at20[setting, strategy],
                    "macro-F1 at 50": _at(curve, 50),
                    "mean macro-F1 (curve)": summary["area_under_curve"],
                    "seconds": report["wall_seconds"],
                }
            )
    default = DEFAULT_STRATEGY
    auto = counts["auto", default]
    baseline = counts["tfidf", "random"]
    fixed = [counts[s, default] for s in ("tfidf", "sentence-embeddings")]
    fixed_best = min((c for c in fixed if c is not None), default=None)
    budget = runs["auto"]["settings"]["budget"]
    if baseline is None:
        bound = f"random with tfidf does not reach it within {budget} labels"
        ratio = None if auto is None else round(auto / budget, 3)
        ratio_text = (
            f"{bound}, so the ratio is below {ratio} (auto's count over the budget)"
            if ratio is not None
            else f"{bound}, nor does auto"
        )
    else:
        ratio = None if auto is None else round(auto / baseline, 3)
        ratio_text = f"auto needs {auto}, random with tfidf {baseline}: ratio {ratio}"
    met_ratio = ratio is not None and ratio <= 0.4
    met_fixed = auto is not None and (fixed_best is None or auto <= fixed_best + batch)
    best20 = max(v for k, v in at20.items() if k[1] == default and k[0] != "auto")
    met20 = at20["auto", default] is not None and at20["auto", default] >= best20
    gaps = {}
    for setting in SETTINGS:
        mine = runs[setting]["strategies"][default]["curve"]
        theirs = runs[setting]["strategies"]["random"]["curve"]
        gaps[setting] = round(
            min(a["macro_f1"] - b["macro_f1"] for a, b in zip(mine, theirs, strict=True)), 4
        )
    notes = [
        f"{name}: target {target} (95% of the best full supervision, {best_full}); pool {pool}. "
        f"Ratio: {ratio_text} (<= 0.4: {'met' if met_ratio else 'not met'}). Auto with "
        f"{default} needs {auto} labels, the better fixed featurizer {fixed_best} (within one "
        f"batch: {'met' if met_fixed else 'not met'}). Macro-F1 at 20 labels: auto "
        f"{at20['auto', default]}, better fixed {best20} ({'met' if met20 else 'not met'}). "
        f"{default} minus random, worst curve point per featurizer: "
        + ", ".join(f"{k} {v:+.3f}" for k, v in gaps.items())
        + "."
    ]
    verdict = {
        "target": target,
        "ratio": ratio,
        "ratio_met": met_ratio,
        "auto_labels": auto,
        "best_fixed_labels": fixed_best,
        "within_one_batch": met_fixed,
        "auto_at_20": at20["auto", default],
        "best_fixed_at_20": best20,
        "at_20_met": met20,
        "worst_gap_to_random": gaps,
    }
    return rows, notes, verdict


def _earlier(rerun: set[str]) -> tuple[list, list, dict, dict]:
    """The data sets of the last results file that this run does not redo (kept as they were,
    so `--datasets trec` updates TREC's rows only)."""
    path = RESULTS / "representations.json"
    if not path.exists():
        return [], [], {}, {}
    old = json.loads(path.read_text())
    keep = set(old.get("verdicts", {})) - rerun
    table = [row for row in old["table"] if row["data set"] in keep]
    notes = [note for note in old["notes"] if note.split(":")[0] in keep]
    verdicts = {k: v for k, v in old["verdicts"].items() if k in keep}
    curves = {k: v for k, v in old["curves"].items() if k in keep}
    return table, notes, verdicts, curves


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--datasets", nargs="+", default=list(BUDGETS))
    parser.add_argument("--csv", nargs=3, metavar=("FILE", "TEXT", "LABEL"), default=None)
    parser.add_argument("--budget", type=int, default=None, help="labels per run (--csv)")
    args = parser.parse_args()
    loaders = {"youtube": youtube, "trec": trec}
    sets = {name: (loaders[name](), BUDGETS[name]) for name in args.datasets}
    if args.csv:
        sets[Path(args.csv[0]).stem] = (_csv(*args.csv), args.budget or 300)
    table, notes, verdicts, curves = _earlier(set(sets))
    for name, (data, budget) in sets.items():
        runs = run_dataset(name, data, budget, args)
        rows, more, verdicts[name] = summarise(name, runs, args.batch)
        table += rows
        notes += more
        curves[name] = {
            setting: {s: v["curve"] for s, v in report["strategies"].items()}
            for setting, report in runs.items()
        }
    write_result(
        "representations",
        {
            "title": "Representations: tfidf, sentence embeddings and auto",
            "what": (
                f"`simulate` with each featurizer setting, the default strategy and random, "
                f"batches of {args.batch}, {args.seeds} seeds (the same pool and test sets as "
                "the label-efficiency section). 'labels to target': first point of the "
                "seed-averaged curve at 95% of the best full-supervision macro-F1 of any "
                "featurizer on that data set."
            ),
            "table": table,
            "notes": notes,
            "verdicts": verdicts,
            "curves": curves,
            "reproduce": f"python benchmarks/bench_representations.py --seeds {args.seeds}",
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
