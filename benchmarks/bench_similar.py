"""Similar items at scale: build the index, then query by item and by text.

On a generated pool (tfidf featurizer, SQLite), measured in one process:
1. import the pool;
2. the first ``Workspace.similar`` call: fit the featurizer on the pool, featurize every item
   into the feature cache and build the index (cold);
3. the index built again from the warm feature cache (its folder deleted);
4. queries by item (random items) and by text (new generated texts): p50 / p95 / max, each
   with the default limit of 20;
5. recall of the projection: for a few items, the share of the exact top 20 (brute force
   over every full row) that the index returns;
6. an import of 1% new items, then the first query (featurize and append them), and a
   removal of 1,000 items, then a query;
7. a fresh process's first query (loading the fitted featurizer and the index).
Usage: python benchmarks/bench_similar.py [--rows 1000000] [--queries 100]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import peak_rss_mb, write_corpus, write_result  # noqa: E402
from labeling import Workspace  # noqa: E402
from labeling.config import write_config  # noqa: E402
from labeling.rounds import similar as similar_module  # noqa: E402
from labeling.rounds.similar_index import SimilarIndex, candidate_count  # noqa: E402

LIMIT = 20
NOTES = [
    "Steps: the median time of a by-item query's two index steps, the projection scan (one "
    "float32 matrix-vector product over every item's 64-d row, then the best 1,000) and the "
    "exact re-rank of those 1,000 on their full rows; the rest of a query is the store (the "
    "item's id, removed items, the newest id, the results' texts) and, by text, featurizing "
    "the typed text. Recall@20: the share of the exact top 20 (brute force over every full "
    "row) that the index returned, over 10 items.",
    "Peak RSS counts the index's memory-mapped files the process touched (file pages the "
    "kernel can drop), most of all while building; the cold first query also holds the "
    "tfidf fit on 200,000 texts. Disk: the index keeps its own copy of the rows, about the "
    "size of the feature cache.",
    "Only the tfidf representation is measured here (embedding 1M items takes about 40 "
    "minutes on 2 cores). With the hybrid or the embeddings, the projection scan is the same "
    "64-d product; the re-rank reads 1,000 more dense rows of 384 floats (1.5 MB).",
]
RECALL_QUERIES = 10


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def _recall(ws: Workspace, index: SimilarIndex, ids: list[str]) -> float:
    """Share of the exact top LIMIT (brute force over every row) that the index returns."""
    hits = total = 0
    removed = similar_module.removed_ids(ws)
    for external_id in ids:
        internal = similar_module.item_id_of(ws, external_id)
        at = index.position(internal)
        query, _ = index.rows_at(np.array([at], dtype=np.intp))
        sims = np.concatenate(
            [
                index.exact_cosine(query, np.arange(start, min(start + 100_000, len(index.ids))))
                for start in range(0, len(index.ids), 100_000)
            ]
        )
        sims[at] = -np.inf
        sims[np.isin(index.ids, removed)] = -np.inf
        exact = set(index.ids[np.argsort(-sims, kind="stable")[:LIMIT]].tolist())
        found = ws.similar(external_id, limit=LIMIT)["items"]
        got = {similar_module.item_id_of(ws, item["id"]) for item in found}
        # Ties at the cut-off: an item as similar as the exact 20th counts as a hit.
        cutoff = np.sort(sims)[-LIMIT]
        hits += sum(1 for i in got if i in exact or sims[index.position(i)] >= cutoff - 1e-6)
        total += LIMIT
    return round(hits / total, 4)


def _breakdown(index: SimilarIndex, ids: list[str], ws: Workspace) -> dict[str, float]:
    """Median ms of a by-item query's two index steps: the projection scan (matrix-vector
    product and the best candidates) and the exact re-rank of those candidates."""
    scan, rerank = [], []
    for external_id in ids:
        at = index.position(similar_module.item_id_of(ws, external_id))
        query, _ = index.rows_at(np.array([at], dtype=np.intp))
        started = time.perf_counter()
        projected = index.project(query)[0]
        scores = np.concatenate([s.proj @ projected for s in index.segments])
        candidates = np.argpartition(-scores, candidate_count(LIMIT))[: candidate_count(LIMIT)]
        scan.append(time.perf_counter() - started)
        started = time.perf_counter()
        index.exact_cosine(query, candidates.astype(np.intp))
        rerank.append(time.perf_counter() - started)
    return {
        "projection_scan_ms": round(float(np.median(scan)) * 1000, 1),
        "exact_rerank_ms": round(float(np.median(rerank)) * 1000, 1),
    }


def _fresh_process_query(root: Path, external_id: str) -> float:
    code = (
        "import sys, time; t = time.perf_counter(); from labeling import Workspace; "
        f"ws = Workspace.open({str(root)!r}); ws.similar({external_id!r}); "
        "print(time.perf_counter() - t)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _renamed(path: Path) -> Path:
    """The corpus with ids ``n...`` instead of ``r...``, so that it adds new items."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    body = ["n" + line[1:] if line.startswith("r") else line for line in lines[1:]]
    path.write_text(lines[0] + "".join(body), encoding="utf-8")
    return path


def run(rows: int, queries: int, folder: Path) -> dict:
    corpus = write_corpus(folder / "pool.csv", rows, seed=11)
    extra = _renamed(write_corpus(folder / "more.csv", max(rows // 100, 100), seed=12))
    ws = Workspace.create(folder / "ws", labels=["billing", "technical"])
    ws.config = replace(ws.config, featurizer="tfidf")
    write_config(ws.root, ws.config)
    import_s, _ = _timed(lambda: ws.import_file(corpus, id_field="id", allow_duplicate_texts=True))
    rng = random.Random(0)
    ids = [f"r{k:07d}" for k in rng.sample(range(rows), queries)]
    cold_s, _ = _timed(lambda: ws.similar(ids[0]))
    shutil.rmtree(ws.models_dir / "similar")
    warm_build_s, _ = _timed(lambda: ws.similar(ids[0]))
    by_item = [_timed(lambda i=i: ws.similar(i))[0] for i in ids]
    # New texts from the same generator (another seed): none of them is in the pool.
    query_csv = write_corpus(folder / "queries.csv", queries, seed=13)
    with query_csv.open(encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    by_text = [_timed(lambda t=t: ws.similar(text=t))[0] for t in texts]
    threshold = [
        _timed(lambda i=i: ws.similar(i, limit=1000, min_similarity=0.8))[0] for i in ids[:10]
    ]
    source = similar_module.similarity_source(ws)
    index = similar_module.current_index(ws, source)
    breakdown = _breakdown(index, ids[:20], ws)
    recall = _recall(ws, index, ids[:RECALL_QUERIES])
    index_mb = sum(p.stat().st_size for p in (ws.models_dir / "similar").rglob("*") if p.is_file())
    cache_mb = sum(
        p.stat().st_size for p in (ws.models_dir / "features" / "cache").rglob("*") if p.is_file()
    )
    import_more_s, _ = _timed(
        lambda: ws.import_file(extra, id_field="id", allow_duplicate_texts=True)
    )
    append_s, _ = _timed(lambda: ws.similar(ids[1]))
    ws.remove_items([f"r{k:07d}" for k in range(1000)])
    after_remove_s, _ = _timed(lambda: ws.similar(ids[2]))
    ws.close()
    fresh_s = _fresh_process_query(folder / "ws", ids[3])
    return {
        "rows": rows,
        "featurizer": "tfidf",
        "projection_dims": int(index.components_t.shape[1]),
        "candidates": candidate_count(LIMIT),
        "import_seconds": round(import_s, 1),
        "first_query_cold_seconds": round(cold_s, 1),
        "index_build_warm_cache_seconds": round(warm_build_s, 1),
        "by_item": _percentiles(by_item),
        "by_text": _percentiles(by_text),
        "threshold_0_8_limit_1000": _percentiles(threshold),
        "recall_at_20": recall,
        "append_1pct_first_query_seconds": round(append_s, 2),
        "import_1pct_seconds": round(import_more_s, 1),
        "query_after_removing_1000_ms": round(after_remove_s * 1000, 1),
        "fresh_process_first_query_seconds": round(fresh_s, 2),
        "index_mb": round(index_mb / 1e6, 1),
        "feature_cache_mb": round(cache_mb / 1e6, 1),
        "peak_rss_mb": peak_rss_mb(),
        "load_average": os.getloadavg()[0],
        "steps": breakdown,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        result = run(args.rows, args.queries, Path(scratch))
    result["load_average_before"] = load_before
    write_result(
        "similar",
        {
            "title": "Similar items",
            "what": (
                f"Workspace.similar on a generated pool of {args.rows:,} items (tfidf "
                "featurizer, SQLite): the index built on first use, then queries by item and "
                f"by text ({args.queries} each, limit 20), in one process"
            ),
            "reproduce": f"python benchmarks/bench_similar.py --rows {args.rows}",
            "notes": NOTES,
            "runs": [result],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
