"""How much do human labels still count when many weak labels train a round?

A walk of issue 18 saw rounds with 57, 81 and 106 human labels give identical gold results
while about 930 weak labels (weight 0.5 each) trained beside them. This benchmark measures
human-label influence directly: the weak labels are fixed (a label model fitted once on the
pool), the number of human labels grows (random pool items with their true labels, several
seeds), and each weighting scheme trains the rounds' own featurizer and classifier on both.
The score is macro-F1 on a held-out test split.

Schemes (``labeling.rounds.learner.weak_sample_weights`` is the one the product uses):

* ``human only``: no weak labels (what the human labels alone reach);
* ``flat 0.5``: every confident weak label weighs ``weak_weight`` (rounds before this change);
* ``0.5 x conf``: ``weak_weight`` times the label model's confidence (``simulate`` before);
* ``balanced K``: ``weak_weight`` x confidence, then scaled down so that all weak labels
  together weigh at most K times the human labels (no scaling with no human labels).

Data: YouTube spam (files 01-04 pool, 250 test comments of file 05, the example LFs of
``docs/examples/youtube_lfs.py``) and TREC questions (stratified 80/20 split, seed 0, a few
question-word rules written for this benchmark, turned into weak labels by majority vote;
``trec_noisy`` adds one broad rule, "what" -> ENTY, whose weak labels are often wrong).

    python benchmarks/bench_weak_weight.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_weak_quality import LABELS as YT_LABELS  # noqa: E402
from benchmarks.bench_weak_quality import YOUTUBE, example_lfs, standard_split  # noqa: E402
from benchmarks.common import ROOT, write_result  # noqa: E402
from labeling.config import WorkspaceConfig  # noqa: E402
from labeling.rounds.featurizers import BASE_FEATURIZER, make_featurizer  # noqa: E402
from labeling.rounds.learner import (  # noqa: E402
    DEFAULT_CLASSIFIER,
    train,
    weak_sample_weights,  # noqa: E402
)
from weak_supervision import apply_lfs, fit_label_model, rule_from_spec  # noqa: E402

TREC = ROOT.parent / "shared" / "datasets" / "trec" / "trec_questions.csv"
TREC_LABELS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
#: Question-word rules for TREC (regexes on the lower-cased question).
TREC_RULES = [
    ("who", "HUM", r"^(who|whom|whose)\b"),
    ("where", "LOC", r"^where\b|\bwhat (country|city|state|continent|river)\b"),
    ("how_many", "NUM", r"^(when|how (many|much|long|far|old|tall|big|fast))\b|\bwhat year\b"),
    ("stand_for", "ABBR", r"\b(stand for|abbreviation|acronym)\b"),
    ("why_how", "DESC", r"^(why|how (do|does|did|can|is|are))\b|^what (is|are) (an? )?\w+ \?$"),
    ("kind_of", "ENTY", r"\bwhat (kind|type|breed|color|colour|sport|animal)\b"),
]
#: A broad, noisy rule of the kind people write first: most "what" questions are entities...
NOISY_RULE = ("what", "ENTY", r"^what\b")
HUMAN_COUNTS = (0, 25, 50, 100, 200, 400, 800)
DEFAULTS = WorkspaceConfig(name="bench", labels=("a", "b"))


def _schemes() -> dict[str, Callable[[np.ndarray, int], np.ndarray] | None]:
    w = DEFAULTS.weak_weight

    def balanced(k: float) -> Callable[[np.ndarray, int], np.ndarray]:
        return lambda conf, n_human: weak_sample_weights(
            conf, weak_weight=w, n_human=n_human, weak_balance=k
        )

    return {
        "human only": None,
        "flat 0.5": lambda conf, n_human: np.full(len(conf), w),
        "0.5 x conf": lambda conf, n_human: w * conf,
        "balanced 1": balanced(1.0),
        "balanced 2": balanced(2.0),
        "balanced 4": balanced(4.0),
    }


def _youtube() -> tuple[list[str], np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
    pool, _valid, test = standard_split(YOUTUBE)
    L = apply_lfs(example_lfs(), pool[["text"]]).L
    return _with_weak(pool["text"].tolist(), pool["label"].to_numpy(), test, L, len(YT_LABELS))


def _trec(
    *, noisy: bool = False
) -> tuple[list[str], np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
    frame = pd.read_csv(TREC, dtype=str, keep_default_na=False)
    frame["y"] = frame["label"].map({name: k for k, name in enumerate(TREC_LABELS)})
    pool, test = train_test_split(frame, test_size=0.2, stratify=frame["y"], random_state=0)
    rules = [
        rule_from_spec({"kind": "regex", "name": n, "label": lab, "pattern": p}).bind(TREC_LABELS)
        for n, lab, p in [*TREC_RULES, *([NOISY_RULE] if noisy else [])]
    ]
    L = apply_lfs(rules, pool[["text"]].reset_index(drop=True)).L
    test = test.rename(columns={"y": "label_y"})
    test = pd.DataFrame({"text": test["text"], "label": test["label_y"]})
    # Majority vote: the LabelModel, with one vote per question and no class balance, stays
    # below the 0.7 threshold everywhere, and the point is weak labels that do train.
    return _with_weak(
        pool["text"].tolist(), pool["y"].to_numpy(), test, L, len(TREC_LABELS), model="majority"
    )


def _with_weak(
    texts: list[str],
    y: np.ndarray,
    test: pd.DataFrame,
    L: np.ndarray,
    n_classes: int,
    *,
    model: str = "auto",
) -> tuple[list[str], np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
    weak = fit_label_model(L, n_classes, model=model, seed=0)
    return texts, y, test["text"].tolist(), test["label"].to_numpy(), weak.labels, weak.confidence


def run_dataset(name: str, loaded: tuple[Any, ...], seeds: int) -> dict[str, Any]:
    texts, y, test_texts, test_y, weak_y, weak_conf = loaded
    n_classes = int(max(y.max(), test_y.max()) + 1)
    featurizer = make_featurizer(BASE_FEATURIZER).fit(texts)
    X = featurizer.transform(texts)
    X_test = featurizer.transform(test_texts)
    confident = (weak_y >= 0) & (weak_conf >= DEFAULTS.weak_threshold)
    weak_accuracy = float(np.mean(weak_y[confident] == y[confident]))
    table: dict[str, dict[int, list[float]]] = {s: {} for s in _schemes()}
    for n_human in HUMAN_COUNTS:
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            human = rng.choice(len(texts), size=n_human, replace=False)
            is_human = np.zeros(len(texts), dtype=bool)
            is_human[human] = True
            weak_rows = np.flatnonzero(confident & ~is_human)
            for scheme, weigh in _schemes().items():
                if weigh is None and n_human == 0:
                    continue
                rows = human if weigh is None else np.concatenate([human, weak_rows])
                labels = (
                    y[human] if weigh is None else np.concatenate([y[human], weak_y[weak_rows]])
                )
                weights = np.ones(len(human))
                if weigh is not None:
                    weights = np.concatenate([weights, weigh(weak_conf[weak_rows], n_human)])
                if len(set(labels.tolist())) < 2:
                    continue
                model = train(X[rows], labels, weights, classifier=DEFAULT_CLASSIFIER, seed=0)
                predicted = model.predict(X_test)
                f1 = f1_score(test_y, predicted, average="macro", labels=range(n_classes))
                table[scheme].setdefault(n_human, []).append(float(f1))
    return {
        "pool": len(texts),
        "test": len(test_texts),
        "confident_weak_labels": int(confident.sum()),
        "confident_weak_accuracy": round(weak_accuracy, 4),
        "macro_f1": {
            scheme: {str(n): round(float(np.mean(v)), 4) for n, v in by_n.items()}
            for scheme, by_n in table.items()
        },
        "macro_f1_std": {
            scheme: {str(n): round(float(np.std(v)), 4) for n, v in by_n.items()}
            for scheme, by_n in table.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    results = {
        "youtube": run_dataset("youtube", _youtube(), args.seeds),
        "trec": run_dataset("trec", _trec(), args.seeds),
        "trec_noisy": run_dataset("trec_noisy", _trec(noisy=True), args.seeds),
    }
    table = []
    for name, result in results.items():
        for scheme, by_n in result["macro_f1"].items():
            row: dict[str, Any] = {"data": name, "scheme": scheme}
            for n in HUMAN_COUNTS:
                value = by_n.get(str(n))
                row[f"{n} human"] = "-" if value is None else f"{value:.3f}"
            table.append(row)
    weak = ", ".join(
        f"{name}: {r['confident_weak_labels']:,} confident weak labels, "
        f"{100 * r['confident_weak_accuracy']:.1f}% right"
        for name, r in results.items()
    )
    write_result(
        "weak_weight",
        {
            "title": "Weak-label weighting: do human labels still count?",
            "what": (
                "Test macro-F1 of the rounds' model (default featurizer and classifier) trained "
                "on n random human labels plus fixed weak labels, under each weighting scheme "
                f"(mean of {args.seeds} seeds; `human only` has no weak labels). The product's "
                f"default is `balanced {DEFAULTS.weak_balance:g}` (weak_weight "
                f"{DEFAULTS.weak_weight} x confidence, all weak labels together at most "
                f"{DEFAULTS.weak_balance:g} x the human labels). Weak labels: {weak}."
            ),
            "table": table,
            "notes": [
                "Reading: with good weak labels (youtube, trec) every scheme beats human labels "
                "alone and caps cost little; a cap of 1 costs 1-5 points at 25-50 labels. With "
                "noisy weak labels (trec_noisy) uncapped weights drown the human labels: 200 "
                "human labels score below what they reach alone, and a cap recovers part of the "
                "gap. No weighting makes bad weak labels harmless: check LF accuracy on the LFs "
                "page, and raise `weak_threshold` or lower `weak_balance` when it is poor.",
            ],
            "reproduce": f"python benchmarks/bench_weak_weight.py --seeds {args.seeds}",
            "seeds": args.seeds,
            "human_counts": list(HUMAN_COUNTS),
            "featurizer": BASE_FEATURIZER,
            "classifier": DEFAULT_CLASSIFIER,
            "weak_weight": DEFAULTS.weak_weight,
            "weak_threshold": DEFAULTS.weak_threshold,
            "weak_balance_default": DEFAULTS.weak_balance,
            "datasets": results,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
