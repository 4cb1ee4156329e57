"""Strategies on multi-label probabilities at scale: the cost of each, against single-label.

For each pool size, in its own child process: synthetic support texts through the `hashing`
featurizer, label sets made from the corpus's label plus random extra labels, the house
classifier one-vs-rest (marked multi-label by scikit-learn) trained on 2,000 labelled rows,
its per-label probabilities for the whole pool; then every strategy that reads probabilities
asks for a batch of 10, once on those (multi-label) and once on the house classifier's class
probabilities over the same features (single-label). Strategy time only: featurizing,
training and predicting are the rounds' (see the round-core benchmark).
Usage: python benchmarks/bench_multilabel_strategies.py [--rows 100000 1000000]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import peak_rss_mb, write_corpus, write_result  # noqa: E402

LABELLED = 2_000
BATCH = 10
EXTRA_LABEL_SHARE = 0.15  # each other label joins an item's set with this probability
NOTE_COST = (
    "Reading multi-label probabilities costs no more than single-label ones: the scores are "
    "a few vectorised passes over the (items, labels) matrix (under 0.2 s at 1M items), and "
    "the batch strategies' clustering and distances are the same work for both. qbc trains "
    "one model per label and member (5 x 5 here) but each on 2,000 rows, and "
    "density_weighted is dominated by the information density estimate (1M rows against "
    "2,000 reference rows), whatever the task."
)
SKIP = ("random", "cold_start")  # they read no probabilities: nothing multi-label to time


def _child(csv_path: str) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.multiclass import OneVsRestClassifier
    from threadpoolctl import threadpool_limits

    from labeling.rounds.featurizers import featurize_in_chunks, make_featurizer
    from labeling.rounds.learner import make_classifier, predict_proba, train
    from strategies import STRATEGIES, as_multilabel, get_strategy

    # Loaded before any timing (modAL pulls in torch: ~3 s), so no strategy pays for it.
    importlib.import_module("modAL.batch")
    importlib.import_module("modAL.density")
    frame = pd.read_csv(csv_path, dtype=str)
    names = sorted(frame["label"].unique())
    primary = frame["label"].map({name: i for i, name in enumerate(names)}).to_numpy()
    rng = np.random.default_rng(0)
    Y = (rng.random((len(frame), len(names))) < EXTRA_LABEL_SHARE).astype(np.uint8)
    Y[np.arange(len(frame)), primary] = 1
    X = featurize_in_chunks(make_featurizer("hashing").fit([]), frame["text"].tolist())
    labelled = rng.choice(len(frame), size=LABELLED, replace=False)
    pool = np.setdiff1d(np.arange(len(frame)), labelled)
    X_pool, X_labelled = X[pool], X[labelled]
    single = train(X_labelled, primary[labelled])
    multi = OneVsRestClassifier(make_classifier())  # the house classifier, one per label
    with threadpool_limits(limits=1, user_api="blas"):  # as learner.train fits
        multi.fit(X_labelled, Y[labelled])
    inputs = {
        "multi-label": (multi, as_multilabel(predict_proba(multi, X_pool)), Y[labelled]),
        "single-label": (single, predict_proba(single, X_pool), primary[labelled]),
    }
    timings: dict[str, dict[str, float | None]] = {}
    for name in sorted(set(STRATEGIES) - set(SKIP)):
        timings[name] = {}
        for kind, (model, proba, labels) in inputs.items():
            ranker = model if name == "qbc" else proba
            started = time.perf_counter()
            try:
                chosen, _ = get_strategy(name)(
                    ranker,
                    X_pool,
                    BATCH,
                    rng=0,
                    labelled_features=X_labelled,
                    labelled_labels=labels,
                )
            except ValueError:  # a multi-label-only strategy on single-label input
                timings[name][kind] = None
                continue
            timings[name][kind] = round(time.perf_counter() - started, 3)
            assert len(set(chosen.tolist())) == BATCH
    print(json.dumps({"timings": timings, "peak_rss_mb": peak_rss_mb(), "labels": len(names)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    table = []
    with tempfile.TemporaryDirectory() as scratch:
        for rows in args.rows:
            csv_path = write_corpus(Path(scratch) / f"corpus_{rows}.csv", rows, labelled=True)
            load = os.getloadavg()[0]
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(csv_path)],
                capture_output=True,
                text=True,
                check=True,
            )
            run = json.loads(out.stdout.strip().splitlines()[-1])
            for name, seconds in run["timings"].items():
                single = seconds["single-label"]
                table.append(
                    {
                        "pool rows": rows - LABELLED,
                        "strategy": name,
                        "multi-label s": seconds["multi-label"],
                        "single-label s": "refused" if single is None else single,
                        "peak_rss_mb": run["peak_rss_mb"],
                        "load_avg_at_start": round(load, 1),
                    }
                )
    write_result(
        "multilabel_strategies",
        {
            "title": "Strategies on multi-label probabilities",
            "what": (
                "Synthetic support texts (5-30 words) from benchmarks/common.py through the "
                "`hashing` featurizer; each item's set is its corpus label plus each other of "
                f"the 5 labels with probability {EXTRA_LABEL_SHARE}. The house classifier "
                "(`logreg`, newton-cg) one-vs-rest, trained on "
                f"{LABELLED:,} labelled rows, gives per-label probabilities for the pool "
                "(multi-label); the same classifier on the corpus labels gives class "
                "probabilities (single-label); each strategy asks for a "
                f"batch of {BATCH} from the same pool, given the probabilities (qbc: the "
                "model). Strategy time only, in seconds; `refused`: a multi-label-only "
                "strategy, which refuses single-label input."
            ),
            "table": table,
            "notes": [
                NOTE_COST,
                "load_avg_at_start is the 1-minute load average when the size started: this "
                "2-core machine was shared with other jobs, and a load above 2 means the "
                "times include waiting for a core.",
            ],
            "reproduce": "python benchmarks/bench_multilabel_strategies.py --rows 102000 1002000",
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
