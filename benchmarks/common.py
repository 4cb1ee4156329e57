"""Shared parts of the benchmarks: a seeded corpus generator, machine facts, result files."""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import resource
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

_WORDS = (
    "order refund invoice charged twice card payment app crash login password reset account "
    "delivery parcel tracking courier late damaged box update error sync screen slow email "
    "subscription plan cancel upgrade support thanks great love terrible waiting days week "
    "please help hello hi team again still cannot when after before my the a to and is it "
    "not working since yesterday today new old phone laptop browser settings profile"
).split()
_LABELS = ("billing", "technical", "shipping", "account", "feedback")


# Function words first: in ``zipf_vocabulary`` they take the top ranks, as in real text.
_FUNCTION_WORDS = "the my to and a is it not when after before since still again".split()
_SYLLABLES = "ka lo mi ne ru ta vo si de pa gu fe ri no ba tu le xe zo hi".split()


def zipf_vocabulary(size: int = 50_000, *, exponent: float = 1.0) -> tuple[list[str], list[float]]:
    """Words with Zipf frequencies (rank ``r`` drawn in proportion to ``1 / r ** exponent``):
    the function words, then the support words of the default generator, then a long tail of
    made-up words of 3-4 syllables. Returns the words by rank and their cumulative weights.

    Real text looks like this, and search cost depends on it: a few words occur in most
    texts, many in a few hundred, most in almost none. The uniform default vocabulary makes
    every word occur in about one text in five.
    """
    head = _FUNCTION_WORDS + [w for w in _WORDS if w not in _FUNCTION_WORDS]
    words = list(head)
    seen = set(words)
    rng = random.Random(11)
    while len(words) < size:
        word = "".join(rng.choices(_SYLLABLES, k=rng.randint(3, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    total = 0.0
    cumulative = []
    for rank in range(1, size + 1):
        total += 1.0 / rank**exponent
        cumulative.append(total)
    return words, cumulative


def write_corpus(
    path: Path,
    n_rows: int,
    *,
    seed: int = 7,
    labelled: bool = False,
    n_words: int | None = None,
    zipf: bool = False,
    labelled_share: float = 1.0,
) -> Path:
    """A CSV of ``n_rows`` short support-like texts (5-30 words, or ``n_words`` each), seeded.

    ``zipf``: words drawn from :func:`zipf_vocabulary` instead of the 75 support words, each
    equally likely. ``labelled_share``: with ``labelled``, the share of rows given a label
    (the others' label cell is empty).
    """
    rng = random.Random(seed)
    vocabulary, weights = zipf_vocabulary() if zipf else (_WORDS, None)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "text", "channel"] + (["label"] if labelled else []))
        for k in range(n_rows):
            count = n_words or rng.randint(5, 30)
            words = rng.choices(vocabulary, cum_weights=weights, k=count)
            text = " ".join(words).capitalize() + rng.choice((".", "?", "!", ""))
            row = [f"r{k:07d}", text, rng.choice(("email", "chat", "web_form"))]
            if labelled:
                keep = labelled_share >= 1.0 or rng.random() < labelled_share
                row.append(rng.choice(_LABELS) if keep else "")
            writer.writerow(row)
    return path


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    mem_kb = 0
    try:
        with open("/proc/meminfo") as handle:
            mem_kb = int(handle.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for package in ("sqlalchemy", "sqlmodel", "pandas", "pyarrow", "scikit-learn", "snorkel"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    import sqlite3

    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "libraries": versions,
        "git_commit": commit,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {"benchmark": name, "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2), file=sys.stderr)
    return path
