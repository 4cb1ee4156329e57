"""The confused label pairs behind the Guidelines page's hint, on a large workspace.

``Workspace.confused_pairs`` runs on every draw of the Guidelines page, so its time is the
page's added cost. On a generated pool (SQLite) with a share of it answered by two people, a
share by one, and gold items answered by everyone, it reads: people's current answers on gold
items, the answers on pool items with two or more labels (the (split, n_labels) index keeps
items answered once out of the read), and the latest round's ``review.json`` (none here).

Answers are written straight into the store (one INSERT per 5,000 rows, ``Item.n_labels`` set
to match), not through the queue: the queue's own cost is measured in bench_claims.py.
Usage: python benchmarks/bench_confused_pairs.py [--rows 100000 1000000] [--overlapped 0.1]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, update  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from benchmarks.common import peak_rss_mb, write_corpus, write_result  # noqa: E402
from labeling import Workspace  # noqa: E402
from labeling.store.models import Annotation, Annotator, Item  # noqa: E402

LABELS = ["billing", "technical", "shipping", "account", "feedback"]
PEOPLE = 5
GOLD = 1_000
SINGLE_SHARE = 0.2  # of the pool, answered by one person
CONFUSION = 0.15  # chance that an answer is a label next to the true one
RUNS = 5
CHUNK = 5_000


def _answer(rng: random.Random, truth: str) -> str:
    if rng.random() >= CONFUSION:
        return truth
    at = LABELS.index(truth)  # confusions between neighbours: a few pairs stand out
    return LABELS[(at + rng.choice((1, -1))) % len(LABELS)]


def _seed(ws: Workspace, overlapped: float, rng: random.Random) -> dict[str, int]:
    """Answers on the pool (two people on ``overlapped`` of it, one on SINGLE_SHARE) and on
    every gold item (each person)."""
    for k in range(PEOPLE):
        ws.add_user(f"p{k}")
    names = [f"p{k}" for k in range(PEOPLE)]
    with ws.engine.begin() as conn:
        people = list(
            conn.execute(select(Annotator.id).where(col(Annotator.name).in_(names))).scalars()
        )
        items = conn.execute(select(Item.id, Item.split, Item.gold_label)).all()
    pool = [row[0] for row in items if row[1] == "pool"]
    gold = [(row[0], row[2]) for row in items if row[1] == "gold"]
    rng.shuffle(pool)
    n_two = int(len(pool) * overlapped)
    n_one = int(len(pool) * SINGLE_SHARE)
    rows: list[dict] = []
    counts: dict[int, int] = {}
    for item_id in pool[: n_two + n_one]:
        truth = rng.choice(LABELS)
        who = rng.sample(people, 2 if len(counts) < n_two else 1)
        for person in who:
            rows.append({"item_id": item_id, "annotator_id": person, "label": _answer(rng, truth)})
        counts[item_id] = len(who)
    for item_id, truth in gold:
        for person in people:
            rows.append({"item_id": item_id, "annotator_id": person, "label": _answer(rng, truth)})
    table = Annotation.__table__  # type: ignore[attr-defined]
    items_table = Item.__table__  # type: ignore[attr-defined]
    with ws.engine.begin() as conn:
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(table), rows[start : start + CHUNK])
        for n in (1, 2):
            ids = [i for i, c in counts.items() if c == n]
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                conn.execute(
                    update(items_table).where(items_table.c.id.in_(chunk)).values(n_labels=n)
                )
    return {"answers": len(rows), "overlapped_items": n_two, "single_items": n_one}


def run(rows: int, overlapped: float) -> dict:
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        ws = Workspace.create(folder / "ws", labels=LABELS)
        ws.import_file(write_corpus(folder / "pool.csv", rows), id_field="id")
        gold = folder / "gold.csv"
        gold.write_text(
            "id,text,label\n"
            + "".join(f"g{k},gold ticket {k},{rng.choice(LABELS)}\n" for k in range(GOLD))
        )
        ws.import_file(gold, id_field="id", label_field="label", split="gold")
        seeded = _seed(ws, overlapped, rng)
        seconds = []
        for _ in range(RUNS):
            started = time.perf_counter()
            found = ws.confused_pairs()
            seconds.append(time.perf_counter() - started)
        ws.close()
    first, rest = seconds[0], sorted(seconds[1:])
    return {
        "pool": rows,
        **seeded,
        "first_ms": round(first * 1000, 1),
        "median_ms": round(rest[len(rest) // 2] * 1000, 1),
        "max_ms": round(rest[-1] * 1000, 1),
        "pairs": len(found),
        "top": " / ".join(found[0].labels) if found else "",
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--overlapped", type=float, default=0.1)
    parser.add_argument("--load", default="", help="the load average while it ran (uptime)")
    args = parser.parse_args()
    table = [run(rows, args.overlapped) for rows in args.rows]
    write_result(
        "confused_pairs",
        {
            "title": "Confused label pairs (the Guidelines page's hint)",
            "what": (
                f"`Workspace.confused_pairs` on a SQLite workspace: {PEOPLE} people, "
                f"{args.overlapped:.0%} of the pool answered by two of them, "
                f"{SINGLE_SHARE:.0%} by one, {GOLD:,} gold items answered by everyone; "
                f"{CONFUSION:.0%} of answers a neighbouring label. The first call, then the "
                f"median and max of the next {RUNS - 1}, in one process."
            ),
            "table": table,
            "notes": [
                "Answers are inserted straight into the store (Item.n_labels set to match); "
                "the call reads gold answers, the answers on items with two or more labels "
                "(through the (split, n_labels, rank) index) and the latest round's "
                "review.json (none here).",
                f"Load average while it ran: {args.load or 'not noted'}.",
            ],
            "reproduce": "python benchmarks/bench_confused_pairs.py --rows 100000 1000000",
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
