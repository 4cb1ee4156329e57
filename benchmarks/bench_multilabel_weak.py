"""The label model per label against majority vote on generated multi-label votes.

Issue 22's target: "the label model per label >= majority vote on gold where both apply, or
the fallback makes it so". Each seed generates true sets (6 labels, 10-40% prevalence) for
4,000 items and LFs per label of four kinds: two-sided LFs (vote present or absent, 55-95%
right, 10-60% coverage), a correlated pair (one noisy LF and its copy, which breaks the
LabelModel's independence assumption), one-sided keyword-like LFs (only "present", 70-95%
right), and for some labels a single LF. 400 items are gold: the first 200 are the reference
the fallback is judged on (``fit_label_models_per_label(..., reference=...)``), the other 200
are held out. Per label and seed, on the held-out gold items the label's LFs cover: right
answers of the LabelModel, of majority vote, and of the model ``auto`` chose.

    python benchmarks/bench_multilabel_weak.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result  # noqa: E402
from weak_supervision.multilabel import fit_label_models_per_label  # noqa: E402

LABELS = tuple(f"topic{k}" for k in range(6))
N_ITEMS = 4_000
N_REFERENCE = 200
N_HELD_OUT = 200


def _vote(rng: np.random.Generator, truth: np.ndarray, accuracy: float) -> np.ndarray:
    return np.where(rng.random(truth.shape[0]) < accuracy, truth, 1 - truth)


def generate(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True sets ``(items, labels)`` and the vote matrix (present k, absent n + k, -1)."""
    rng = np.random.default_rng(seed)
    n_labels = len(LABELS)
    Y = (rng.random((N_ITEMS, n_labels)) < rng.uniform(0.1, 0.4, n_labels)).astype(np.int64)
    columns: list[np.ndarray] = []

    def add(k: int, vote: np.ndarray, coverage: float, *, one_sided: bool = False) -> None:
        fired = rng.random(N_ITEMS) < coverage
        if one_sided:
            fired &= vote == 1
        columns.append(np.where(fired, np.where(vote == 1, k, n_labels + k), -1))

    for k in range(n_labels):
        kind = k % 3
        for _ in range(int(rng.integers(2, 5))):
            add(k, _vote(rng, Y[:, k], rng.uniform(0.55, 0.95)), rng.uniform(0.1, 0.6))
        if kind == 1:  # a noisy LF and its copy: dependent LFs
            noisy = _vote(rng, Y[:, k], rng.uniform(0.55, 0.7))
            coverage = rng.uniform(0.3, 0.6)
            fired = rng.random(N_ITEMS) < coverage
            for _ in range(2):
                columns.append(np.where(fired, np.where(noisy == 1, k, n_labels + k), -1))
        if kind == 2:  # keyword-like LFs that only ever say "present"
            for _ in range(2):
                add(k, _vote(rng, Y[:, k], rng.uniform(0.7, 0.95)), 0.5, one_sided=True)
    return Y, np.stack(columns, axis=1)


def run_seed(seed: int) -> list[dict[str, Any]]:
    Y, L = generate(seed)
    reference = np.full_like(Y, -1)
    reference[:N_REFERENCE] = Y[:N_REFERENCE]
    held_out = np.zeros(N_ITEMS, dtype=bool)
    held_out[N_REFERENCE : N_REFERENCE + N_HELD_OUT] = True
    fits = {
        model: fit_label_models_per_label(L, LABELS, reference=reference, model=model)
        for model in ("snorkel", "majority", "auto")
    }
    rows = []
    for k, label in enumerate(LABELS):
        covered = ~np.isnan(fits["majority"].probabilities[:, k]) & held_out
        right = {
            model: int(((fit.probabilities[covered, k] >= 0.5) == (Y[covered, k] == 1)).sum())
            for model, fit in fits.items()
        }
        choice = fits["auto"].choices[k]
        rows.append(
            {
                "seed": seed,
                "label": label,
                "lfs": choice.lfs,
                "one_sided": choice.one_sided,
                "held_out_n": int(covered.sum()),
                "label_model": right["snorkel"],
                "majority": right["majority"],
                "auto": right["auto"],
                "auto_used": choice.model,
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    rows = [row for seed in range(args.seeds) for row in run_seed(seed)]
    seconds = time.perf_counter() - start
    compared = [r for r in rows if not r["one_sided"]]
    lm_loses = [r for r in compared if r["label_model"] < r["majority"]]
    auto_loses = [r for r in compared if r["auto"] < r["majority"]]
    table = [
        {
            "labels": kind,
            "cases": len(part),
            "LabelModel >= majority": sum(r["label_model"] >= r["majority"] for r in part),
            "auto >= majority": sum(r["auto"] >= r["majority"] for r in part),
            "LabelModel right": sum(r["label_model"] for r in part),
            "majority right": sum(r["majority"] for r in part),
            "auto right": sum(r["auto"] for r in part),
            "held-out items": sum(r["held_out_n"] for r in part),
        }
        for kind, part in (
            ("two-sided", compared),
            ("one-sided (majority by design)", [r for r in rows if r["one_sided"]]),
        )
        if part
    ]
    write_result(
        "multilabel_weak",
        {
            "title": "Label model per label against majority vote (multi-label, generated votes)",
            "what": (
                f"{args.seeds} seeds x {len(LABELS)} labels of generated votes "
                f"({N_ITEMS:,} items; {N_REFERENCE} gold items judge the fallback, "
                f"{N_HELD_OUT} other gold items score it): right answers on the held-out gold "
                "items a label's LFs cover"
            ),
            "params": {"seeds": args.seeds, "items": N_ITEMS, "labels": len(LABELS)},
            "table": table,
            "cases": rows,
            "summary": {
                "label_model_loses": len(lm_loses),
                "auto_loses": len(auto_loses),
                "two_sided_cases": len(compared),
            },
            "seconds": round(seconds, 1),
            "load_avg_at_start": round(load, 1),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
