"""Applying LFs: the ``local`` engine against Snorkel's ``PandasLFApplier``, and Dask scaling.

Corpus: ``--rows`` (default 1M) generated short support texts (``benchmarks/common.py``,
seed 7). Ten keyword/regex rules; three code LFs measured separately. Snorkel's applier runs
the same rules as a Snorkel user writes them (one ``LabelingFunction`` per rule, Python's ``re``
on ``x.text``) on the first ``--snorkel-rows`` rows (default 100k, to keep the run short);
rows/s are compared and the votes on that slice must be identical. The Dask engine
runs on a ``LocalCluster`` of 1 and then 2 single-threaded worker processes, reading the
corpus from 8 Parquet files where they lie, and, separately, receiving the frame from this
process.

    python benchmarks/bench_lf_apply.py [--rows 1000000] [--snorkel-rows 100000]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import peak_rss_mb, write_corpus, write_result  # noqa: E402
from weak_supervision import (  # noqa: E402
    ABSTAIN,
    KeywordRule,
    RegexRule,
    apply_lfs,
    labeling_function,
)

#: Files (so Dask partitions) the Parquet copy of the corpus is split into.
PARQUET_FILES = 8
#: Timed runs of local and PandasLFApplier on the rules; the best of each is kept.
RULE_REPEATS = 3
#: Alternating timed runs of the code LFs with and without lf_timeout; the best of each is kept.
CODE_REPEATS = 3
#: Timed runs per Dask configuration; the best is kept (the first also warms the workers).
DASK_REPEATS = 4
LABELS = ("billing", "technical", "shipping", "account", "feedback")

RULES = [
    KeywordRule("kw_refund", "billing", ("refund", "charged twice", "invoice")),
    KeywordRule("kw_card", "billing", ("card", "payment"), case_sensitive=True),
    KeywordRule("kw_crash", "technical", ("crash", "error", "not working")),
    KeywordRule("kw_slow", "technical", ("slow", "sync"), whole_word=False),
    KeywordRule("kw_parcel", "shipping", ("parcel", "courier", "tracking", "delivery")),
    KeywordRule("kw_password", "account", ("password reset", "login", "profile")),
    KeywordRule("kw_praise", "feedback", ("great", "love", "thanks")),
    RegexRule("re_late_delivery", "shipping", r"\blate\b.*\b(?:delivery|parcel)\b"),
    RegexRule("re_cancel", "account", r"cancel\s+(?:my\s+)?(?:subscription|plan)"),
    RegexRule("re_question_error", "technical", r"^(?:why|when).*error.*\?$"),
]


@labeling_function()
def many_words(row):
    return "feedback" if len(row.text.split()) > 25 else ABSTAIN


@labeling_function(resources={"words": frozenset({"damaged", "box"})})
def damaged_box(row, words):
    return "shipping" if words <= set(row.text.lower().split()) else ABSTAIN


@labeling_function()
def chat_upgrade(row):
    return "account" if row["channel"] == "chat" and "upgrade" in row.text.lower() else ABSTAIN


CODE_LFS = [many_words, damaged_box, chat_upgrade]


def _timed(run: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = run()
    return value, time.perf_counter() - started


def _python_pattern(rule: Any) -> str:
    """The rule as a Snorkel user would write it with Python's ``re`` and ``\\b``.

    Same matches as the rule's RE2 pattern on this ASCII corpus (checked: the votes must be
    identical); Python's ``re`` is the fastest per-row matcher, so the baseline is not handicapped.
    """
    spec = rule.rule.spec
    flags = "" if spec["case_sensitive"] else "(?i)"
    if spec["kind"] == "regex":
        return flags + spec["pattern"]

    def word(char: str) -> bool:
        return char.isalnum() or char == "_"

    parts = []
    for keyword in spec["keywords"]:
        before = r"\b" if spec["whole_word"] and word(keyword[0]) else ""
        after = r"\b" if spec["whole_word"] and word(keyword[-1]) else ""
        parts.append(before + re.escape(keyword) + after)
    return flags + "(?:" + "|".join(parts) + ")"


def _snorkel_lf(rule: Any) -> Any:
    from snorkel.labeling import LabelingFunction

    regex = re.compile(_python_pattern(rule))
    code = rule.label_code

    def vote(x: Any) -> int:
        return code if regex.search(x.text) else ABSTAIN

    return LabelingFunction(name=rule.name, f=vote)


def _snorkel_baseline(rules: list[Any], frame: pd.DataFrame) -> tuple[np.ndarray, float]:
    """What a Snorkel user writes: one LF per rule on ``x.text``, ``PandasLFApplier``."""
    from snorkel.labeling import PandasLFApplier

    applier = PandasLFApplier([_snorkel_lf(rule) for rule in rules])
    L, seconds = _timed(lambda: applier.apply(frame, progress_bar=False))
    return np.asarray(L, dtype=np.int64), seconds


def _snorkel_code_baseline(lfs: list[Any], frame: pd.DataFrame) -> tuple[np.ndarray, float]:
    """Our code LFs called by ``PandasLFApplier`` directly on its pandas Series rows."""
    from snorkel.labeling import LabelingFunction, PandasLFApplier

    applier = PandasLFApplier([LabelingFunction(name=lf.name, f=lf.vote) for lf in lfs])
    L, seconds = _timed(lambda: applier.apply(frame, progress_bar=False))
    return np.asarray(L, dtype=np.int64), seconds


def _rate(rows: int, seconds: float) -> int:
    return round(rows / seconds)


RULES_PARQUET = "10 rules, Parquet read by workers"
RULES_FRAME = "10 rules, frame sent from client"
ALL_PARQUET = "10 rules + 3 code LFs, Parquet read by workers"


def _dask_runs(
    rules: list[Any], code: list[Any], frame: pd.DataFrame, parquet: Path
) -> list[dict[str, Any]]:
    """Best of ``DASK_REPEATS`` per cluster size and configuration, runs interleaved.

    Both clusters stay up and the runs alternate between them, so load from other processes
    on the machine falls on the 1-worker and the 2-worker runs alike.
    """
    import dask.dataframe as dd
    from distributed import LocalCluster

    configurations = {RULES_PARQUET: rules, RULES_FRAME: rules, ALL_PARQUET: rules + code}
    references = {name: apply_lfs(lfs, frame).L for name, lfs in configurations.items()}
    best = {(w, name): float("inf") for w in (1, 2) for name in configurations}
    clusters = {
        workers: LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
        for workers in (1, 2)
    }
    try:
        for _ in range(DASK_REPEATS):
            for (workers, name), so_far in best.items():
                data = frame if name == RULES_FRAME else dd.read_parquet(parquet)
                address = clusters[workers].scheduler_address
                result, seconds = _timed(
                    lambda data=data, address=address, lfs=configurations[name]: apply_lfs(
                        lfs, data, engine="dask", scheduler=address
                    )
                )
                if not np.array_equal(result.L, references[name]):
                    raise SystemExit(f"dask votes differ from local ({workers} workers, {name})")
                best[(workers, name)] = min(so_far, seconds)
    finally:
        for cluster in clusters.values():
            cluster.close()
    return [{"workers": w, "config": name, "seconds": t} for (w, name), t in best.items()]


def run(n_rows: int, snorkel_rows: int, folder: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    corpus = write_corpus(folder / "corpus.csv", n_rows)
    frame = pd.read_csv(corpus, dtype=str, keep_default_na=False)[["text", "channel"]]
    parquet = folder / "corpus_parquet"
    parquet.mkdir()
    # One file per partition, as a data set split across files: Dask reads a single file as
    # one partition, which one worker would have to process alone.
    for k, start in enumerate(range(0, n_rows, -(-n_rows // PARQUET_FILES))):
        part = frame.iloc[start : start + -(-n_rows // PARQUET_FILES)]
        part.to_parquet(parquet / f"part-{k:02d}.parquet", index=False)
    rules = [rule.bind(LABELS) for rule in RULES]
    code = [lf.bind(LABELS) for lf in CODE_LFS]
    head = frame.iloc[:snorkel_rows]

    local_seconds = snorkel_seconds = float("inf")
    for _ in range(RULE_REPEATS):  # alternated, so machine load falls on both alike
        local, seconds = _timed(lambda: apply_lfs(rules, frame))
        local_seconds = min(local_seconds, seconds)
        snorkel_L, seconds = _snorkel_baseline(rules, head)
        snorkel_seconds = min(snorkel_seconds, seconds)
    local_head = local.L[: len(head)]
    identical = bool(np.array_equal(snorkel_L, local_head))
    if not identical:
        raise SystemExit("local and PandasLFApplier votes differ")
    engine_snorkel = apply_lfs(rules, head, engine="snorkel")
    # The default lf_timeout (30 s) runs code LFs in a forked child, watched by the parent.
    # Alternated and the best of CODE_REPEATS taken: single runs of either varied by 2x here.
    code_runs = [
        (apply_lfs(code, head), apply_lfs(code, head, lf_timeout=30.0)) for _ in range(CODE_REPEATS)
    ]
    code_local = min((local for local, _ in code_runs), key=lambda result: result.seconds)
    code_limited = min((limited for _, limited in code_runs), key=lambda result: result.seconds)
    code_snorkel = apply_lfs(code, head, engine="snorkel")
    code_baseline_L, code_baseline_seconds = _snorkel_code_baseline(code, head)
    code_rate = _rate(len(head), code_baseline_seconds)
    if not (
        np.array_equal(code_local.L, code_snorkel.L)
        and np.array_equal(code_local.L, code_baseline_L)
        and np.array_equal(code_local.L, code_limited.L)
    ):
        raise SystemExit("code LF votes differ between local and snorkel")
    local_rate = _rate(len(frame), local_seconds)
    snorkel_rate = _rate(len(head), snorkel_seconds)
    table = [
        _row("10 rules", "local (vectorised RE2)", len(frame), local_seconds, snorkel_rate),
        _row("10 rules", "Snorkel PandasLFApplier", len(head), snorkel_seconds, snorkel_rate),
        _row(
            "10 rules",
            "snorkel engine (our wrapper)",
            len(head),
            engine_snorkel.seconds,
            snorkel_rate,
        ),
        _row("3 code LFs", "local (loop)", len(head), code_local.seconds, code_rate),
        _row(
            "3 code LFs",
            "local (loop), lf_timeout 30 s (forked child)",
            len(head),
            code_limited.seconds,
            code_rate,
        ),
        _row("3 code LFs", "Snorkel PandasLFApplier", len(head), code_baseline_seconds, code_rate),
        _row(
            "3 code LFs", "snorkel engine (our wrapper)", len(head), code_snorkel.seconds, code_rate
        ),
    ]
    dask_rows = _dask_runs(rules, code, frame, parquet)
    one = {r["config"]: r["seconds"] for r in dask_rows if r["workers"] == 1}
    for r in sorted(dask_rows, key=lambda r: (r["config"], r["workers"])):
        lfs_name, source = r["config"].split(", ")
        table.append(
            {
                "LFs": lfs_name,
                "engine": f"dask, {r['workers']} worker(s), {source}",
                "rows": len(frame),
                "seconds": round(r["seconds"], 2),
                "rows/s": _rate(len(frame), r["seconds"]),
                "vs Snorkel, same LFs": (
                    f"{_rate(len(frame), r['seconds']) / snorkel_rate:.1f}x"
                    if lfs_name == "10 rules"
                    else "-"
                ),
            }
        )
    speedups = {
        r["config"]: round(one[r["config"]] / r["seconds"], 2)
        for r in dask_rows
        if r["workers"] == 2
    }
    ratio = local_rate / snorkel_rate
    return {
        "title": "Applying LFs: local vs Snorkel's PandasLFApplier, and Dask workers",
        "what": (
            f"Ten keyword/regex rules over {len(frame):,} generated short texts (5-30 words, "
            "benchmarks/common.py, seed 7), measured in one run. The local engine runs each "
            "rule's RE2 pattern over the whole text column (pyarrow). Snorkel's "
            "PandasLFApplier runs the same rules as a Snorkel user writes them (Python's re "
            f"on x.text, one LF per rule) row by row on the first {len(head):,} rows."
        ),
        "table": table,
        "notes": [
            f"local is {ratio:.1f}x PandasLFApplier in rows/s (best of {RULE_REPEATS} "
            f"alternating runs each; code LFs local with and without lf_timeout: best of "
            f"{CODE_REPEATS} alternating runs, the rest one run); votes on the "
            f"{len(head):,} rows both engines labelled are identical ({identical}).",
            "Code LFs are Python functions called per row in every engine; the local loop "
            "saves Snorkel's per-row pandas Series. Their votes are identical in all three. "
            "The 'vs Snorkel' column compares with PandasLFApplier on the same LF set; the "
            "snorkel engine wraps each Series in our Row type, hence its own speed.",
            "With lf_timeout (the workspace default is 30 s) the local engine runs code LFs in "
            "a forked child that the parent watches every 50 ms, so a hanging LF can be "
            f"stopped: {code_limited.seconds:.2f} s against {code_local.seconds:.2f} s without "
            "the limit on the same rows. The child announces each call with one integer store "
            "in shared memory, and the garbage collector is frozen across the fork, so the "
            "child's collections never walk (and copy) the parent's objects. Rules never "
            "take the child: RE2 cannot hang.",
            "Dask speed-up from 1 to 2 workers: "
            + ", ".join(f"{s}: {v}x" for s, v in speedups.items())
            + f". Times are the best of {DASK_REPEATS} runs and include building the graph and "
            "gathering the votes, not starting the cluster (about 1-2 s). The rules cost "
            "about 0.3 s per 100k rows, so fixed costs (graph, Parquet reads, gathering) "
            "weigh on them; with code LFs each partition does more work and a second worker "
            "has more to share. Sending a pandas frame from the client serialises it "
            "through the scheduler, which costs more than the rules themselves.",
            f"Peak RSS {peak_rss_mb()} MB. One-minute load average {load_before:.1f} before "
            f"and {os.getloadavg()[0]:.1f} after the run on {os.cpu_count()} cores: other "
            "processes shared the machine, which hurts the 2-worker Dask figure most.",
        ],
        "reproduce": f"python benchmarks/bench_lf_apply.py --rows {n_rows} "
        f"--snorkel-rows {snorkel_rows}",
        "details": {
            "local_vs_pandas_lf_applier": round(ratio, 1),
            "identical_votes": identical,
            "dask_speedup_1_to_2_workers": speedups,
        },
    }


def _row(lfs: str, engine: str, rows: int, seconds: float, snorkel_rate: int) -> dict[str, Any]:
    rate = _rate(rows, seconds)
    return {
        "LFs": lfs,
        "engine": engine,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows/s": rate,
        "vs Snorkel, same LFs": f"{rate / snorkel_rate:.1f}x",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--snorkel-rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        result = run(args.rows, min(args.snorkel_rows, args.rows), Path(folder))
    write_result("lf_apply", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
