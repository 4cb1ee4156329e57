"""The embedding pass: resumable after a kill, the same vectors on Dask, queue order first,
removals and re-imports, the background worker, and the feature cache under concurrent writers.

The model loads once per test process (~5 s); each subprocess and Dask worker loads it once
too, so the pools here are small.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from labeling import Workspace
from labeling.config import write_config
from labeling.errors import BadInput
from labeling.rounds.embedding_pass import (
    BackgroundEmbedder,
    EmbeddingPassFailed,
    embedding_cache,
    needs_embeddings,
    plan_pass,
    run_pass,
)
from labeling.rounds.embeddings import embed
from labeling.rounds.feature_cache import FeatureCache, write_chunk
from labeling.rounds.featurizers import SentenceEmbeddingFeaturizer
from labeling.store import db
from labeling.store.models import Item, Round, Score

REPO = Path(__file__).resolve().parents[1]
WORDS = "refund parcel login crash invoice courier password screen thanks late card email".split()


def texts_for(n: int, *, start: int = 0) -> list[str]:
    """Distinct short texts, seeded by position."""
    rng = np.random.default_rng(start)
    return [f"{' '.join(rng.choice(WORDS, size=6))} number {k}" for k in range(start, start + n)]


def write_items(path: Path, texts: list[str], *, prefix: str = "t", label: str | None = None):
    rows = [
        {"id": f"{prefix}{k}", "text": text, **({"label": label} if label else {})}
        for k, text in enumerate(texts)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def add_items(ws: Workspace, path: Path, **options):
    return ws.import_file(path, id_field="id", **options)


def set_featurizer(ws: Workspace, name: str) -> Workspace:
    ws.config = dataclasses.replace(ws.config, featurizer=name)
    write_config(ws.root, ws.config)
    return ws


def embedding_workspace(root: Path, *, db_url: str | None = None) -> Workspace:
    ws = Workspace.create(root, labels=["a", "b"], db_url=db_url)
    return set_featurizer(ws, "sentence-embeddings")


def cached_rows(ws: Workspace) -> dict[str, list[np.ndarray]]:
    """Every stored row of the embedding block, by key (a list: a key stored twice shows)."""
    folder = embedding_cache(ws).version_folder(SentenceEmbeddingFeaturizer())
    found: dict[str, list[np.ndarray]] = {}
    for keys_file in sorted(folder.glob("chunk-*.keys.npy")):
        matrix = np.load(str(keys_file).replace(".keys.npy", ".npy"))
        for key, row in zip(np.load(keys_file), matrix, strict=True):
            found.setdefault(str(key), []).append(row)
    return found


def live_items(ws: Workspace) -> dict[str, str]:
    """Content key -> text of every item not removed."""
    with db.read_session(ws.engine) as session:
        rows = session.exec(select(Item.content_hash, Item.text, Item.split)).all()
    return {key: text for key, text, split in rows if split != "removed"}


def assert_every_item_once_and_exact(ws: Workspace) -> None:
    stored = cached_rows(ws)
    items = live_items(ws)
    assert set(items) <= set(stored)
    assert all(len(rows) == 1 for rows in stored.values())
    keys = sorted(items)
    expected = embed([items[k] for k in keys])
    np.testing.assert_allclose(np.stack([stored[k][0] for k in keys]), expected, atol=1e-5)


# ---------------------------------------------------------------- resume after a kill


def test_a_killed_build_resumes_and_every_item_ends_embedded_once(tmp_path):
    ws = embedding_workspace(tmp_path / "ws")
    add_items(ws, write_items(tmp_path / "items.jsonl", texts_for(240)))
    folder = embedding_cache(ws).version_folder(SentenceEmbeddingFeaturizer())
    build = subprocess.Popen(
        [sys.executable, "-m", "labeling.cli", "features", "build", "-w", str(ws.root)]
        + ["--chunk-rows", "10"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while len(list(folder.glob("chunk-*.keys.npy"))) < 3:
            assert build.poll() is None, build.stderr.read().decode() if build.stderr else ""
            assert time.monotonic() < deadline, "the build wrote no chunks"
            time.sleep(0.05)
        build.send_signal(signal.SIGKILL)
    finally:
        build.wait()
    assert build.returncode == -signal.SIGKILL
    before = ws.feature_status().blocks[0]
    assert 30 <= before.cached < 240 and before.cached % 10 == 0
    report = ws.build_features(chunk_rows=100)
    assert report is not None
    assert (report.already_cached, report.embedded, report.missing) == (
        before.cached,
        240 - before.cached,
        0,
    )
    assert_every_item_once_and_exact(ws)
    ws.close()


# ---------------------------------------------------------------- Dask


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("pool")
    texts = texts_for(60, start=1000)
    return write_items(root / "items.jsonl", texts), texts


def test_the_dask_pass_on_two_local_workers_gives_the_local_vectors(tmp_path, small_pool):
    path, texts = small_pool
    ws = embedding_workspace(tmp_path / "ws")
    add_items(ws, path)
    seen: list[tuple[str, int, int]] = []
    report = ws.build_features(
        engine="dask", workers=2, chunk_rows=16, progress=lambda *a: seen.append(a)
    )
    assert report is not None
    assert (report.engine, report.workers, report.embedded, report.missing) == ("dask", 2, 60, 0)
    assert seen[-1] == ("embedding", 60, 60) and len(seen) == 4
    assert_every_item_once_and_exact(ws)
    ws.close()


def test_dask_options_are_checked_and_a_silent_scheduler_is_named(workspace):
    ws = embedding_workspace(workspace.root.parent / "ws2")
    with pytest.raises(BadInput, match="--engine"):
        ws.build_features(engine="spark")
    with pytest.raises(BadInput, match="--scheduler and --workers are for --engine dask"):
        ws.build_features(scheduler="tcp://127.0.0.1:1")
    with pytest.raises(BadInput, match="--workers"):
        ws.build_features(engine="dask", scheduler="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(BadInput, match="scheduler at tcp://127.0.0.1:1 did not answer"):
        ws.build_features(engine="dask", scheduler="tcp://127.0.0.1:1")
    ws.close()


# ---------------------------------------------------------------- what is embedded, in what order


def promote_scores(ws: Workspace, scores: dict[str, float]) -> None:
    """A promoted round whose queue scores are ``scores`` (external id -> score)."""
    with db.write_session(ws.engine) as session:
        round_ = Round(status="succeeded", promoted=True)
        session.add(round_)
        session.flush()
        ids = dict(session.exec(select(Item.external_id, Item.id)).all())
        for external, score in scores.items():
            session.add(Score(round_id=round_.id, item_id=ids[external], score=score))


def test_the_queue_s_next_items_are_embedded_first(tmp_path, backend, db_url):
    ws = embedding_workspace(tmp_path / "ws", db_url=db_url)
    add_items(ws, write_items(tmp_path / "pool.jsonl", texts_for(8), prefix="p"))
    add_items(
        ws,
        write_items(tmp_path / "gold.jsonl", texts_for(2, start=50), prefix="g", label="a"),
        label_field="label",
        split="gold",
    )
    add_items(
        ws,
        write_items(tmp_path / "done.jsonl", texts_for(2, start=80), prefix="d", label="b"),
        label_field="label",
    )
    promote_scores(ws, {"p3": 0.9, "p5": 0.7, "p1": 0.8, "d0": 0.95})
    # Imported after the round: open but unscored.
    add_items(ws, write_items(tmp_path / "late.jsonl", texts_for(2, start=90), prefix="n"))
    with db.read_session(ws.engine) as session:
        by_id = {
            i: (e, r, n)
            for i, e, r, n in session.exec(
                select(Item.id, Item.external_id, Item.rank, Item.n_labels)
            )
        }
    plan = plan_pass(ws, SentenceEmbeddingFeaturizer())
    order = [by_id[int(i)][0] for i in plan.item_ids]
    assert order[:3] == ["p3", "p1", "p5"]
    unscored = order[3:-4]
    assert sorted(unscored) == ["n0", "n1", "p0", "p2", "p4", "p6", "p7"]
    ranks = [by_id[i][1] for i in plan.item_ids[3:-4]]
    assert ranks == sorted(ranks)  # the queue's seeded order
    assert order[-4:] == ["g0", "g1", "d0", "d1"]  # gold, then labelled items by id
    # A pass with a row limit embeds exactly the head of that order.
    report = run_pass(ws, limit=4, chunk_rows=3)
    assert (report.embedded, report.missing) == (4, 10)
    assert set(cached_rows(ws)) == set(plan.keys[:4])
    ws.close()


def test_removed_items_are_left_out_and_re_imports_reuse_their_rows(tmp_path, backend, db_url):
    ws = embedding_workspace(tmp_path / "ws", db_url=db_url)
    texts = texts_for(12, start=200)
    add_items(ws, write_items(tmp_path / "a.jsonl", texts))
    ws.remove_items(["t0", "t1", "t2"])
    report = ws.build_features()
    assert report is not None and (report.items, report.embedded) == (9, 9)
    assert len(cached_rows(ws)) == 9
    ws.restore_items(["t0"])
    # The same texts under new ids share their rows: nothing new to embed for them.
    add_items(
        ws,
        write_items(tmp_path / "b.jsonl", texts[3:6], prefix="again"),
        allow_duplicate_texts=True,
    )
    status = ws.feature_status().blocks[0]
    assert (status.items, status.cached, status.missing) == (10, 9, 1)
    report = ws.build_features()
    assert report is not None and report.embedded == 1
    assert_every_item_once_and_exact(ws)
    assert ws.build_features().embedded == 0  # type: ignore[union-attr]
    ws.close()


def test_build_does_nothing_when_the_featurizer_needs_no_embeddings(workspace, tmp_path):
    add_items(workspace, write_items(tmp_path / "a.jsonl", texts_for(5)))
    assert needs_embeddings("auto") and needs_embeddings("hybrid")
    assert not needs_embeddings("tfidf") and not needs_embeddings("hashing")
    set_featurizer(workspace, "tfidf")
    assert workspace.build_features() is None
    assert not cached_rows(workspace)
    assert BackgroundEmbedder().step(workspace) is None


def test_the_cli_says_so_and_status_counts_the_block(workspace, tmp_path):
    set_featurizer(workspace, "hashing")
    add_items(workspace, write_items(tmp_path / "a.jsonl", texts_for(5)))
    run = [sys.executable, "-m", "labeling.cli"]
    built = subprocess.run(
        run + ["features", "build", "-w", str(workspace.root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "uses no embeddings" in built.stdout
    status = subprocess.run(
        run + ["features", "status", "-w", str(workspace.root), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    block = json.loads(status.stdout)["blocks"][0]
    assert (block["items"], block["cached"], block["missing"]) == (5, 0, 5)
    bad = subprocess.run(
        run + ["features", "build", "-w", str(workspace.root), "--engine", "x"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown engine 'x' (--engine)")


# ---------------------------------------------------------------- the background worker


def test_the_worker_fills_the_block_after_an_import(tmp_path):
    ws = embedding_workspace(tmp_path / "ws")
    worker = subprocess.Popen(
        [sys.executable, "-m", "labeling.rounds.worker", "-w", str(ws.root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        add_items(ws, write_items(tmp_path / "a.jsonl", texts_for(30, start=300)))
        deadline = time.monotonic() + 180
        while ws.feature_status().blocks[0].missing:
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker embedded nothing"
            time.sleep(0.5)
    finally:
        worker.terminate()
        out, _err = worker.communicate(timeout=60)
    assert "worker: embedded 30 items" in out
    assert_every_item_once_and_exact(ws)
    ws.close()


def test_the_worker_stops_at_once_mid_chunk_and_the_cache_stays_whole(tmp_path):
    """SIGTERM while a chunk is being embedded stops the worker without finishing the chunk
    (serve's grace period is shorter than a chunk on a busy machine); what is cached is whole."""
    ws = embedding_workspace(tmp_path / "ws")
    add_items(ws, write_items(tmp_path / "a.jsonl", texts_for(4000, start=1000)))
    worker = subprocess.Popen(
        [sys.executable, "-m", "labeling.rounds.worker", "-w", str(ws.root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)  # the model loads and the first chunk of 2,048 texts starts
    worker.terminate()
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "worker: embedded" not in out  # it did not wait for the chunk
    assert ws.feature_status().blocks[0].missing == 4000
    assert cached_rows(ws) == {}
    ws.close()


# ---------------------------------------------------------------- property: cache vs recomputation

VOCABULARY = texts_for(24, start=500)


@pytest.fixture(scope="module")
def vocabulary_vectors() -> dict[str, np.ndarray]:
    return dict(zip(VOCABULARY, embed(VOCABULARY), strict=True))


class Killed(Exception):
    """Stands for a kill in the middle of a pass."""


steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.integers(0, 23), min_size=1, max_size=6)),
        st.tuples(st.just("remove"), st.integers(0, 30)),
        st.tuples(st.just("pass"), st.integers(1, 8)),
        st.tuples(st.just("kill"), st.integers(0, 2)),
    ),
    min_size=1,
    max_size=7,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
def test_the_cache_matches_recomputation_under_imports_removals_and_kills(
    steps, vocabulary_vectors, monkeypatch
):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        ws = embedding_workspace(root / "ws")
        added = 0
        try:
            for kind, arg in steps:
                if kind == "add":
                    texts = [VOCABULARY[i] for i in arg]
                    add_items(
                        ws,
                        write_items(root / f"{added}.jsonl", texts, prefix=f"s{added}-"),
                        allow_duplicate_texts=True,
                    )
                    added += 1
                elif kind == "remove":
                    with db.read_session(ws.engine) as session:
                        ids = session.exec(select(Item.external_id).order_by(Item.id)).all()
                    if ids:
                        ws.remove_items([ids[arg % len(ids)]])
                elif kind == "pass":
                    before = ws.feature_status().blocks[0]
                    report = run_pass(ws, limit=arg, chunk_rows=3)
                    assert report.embedded == min(arg, before.missing)
                    assert report.items == report.already_cached + report.embedded + report.missing
                else:  # a kill after ``arg`` chunks, then half a chunk left on disk
                    kill_after(ws, arg, monkeypatch)
                stored = cached_rows(ws)
                assert all(len(rows) == 1 for rows in stored.values())
                for key, rows in stored.items():
                    text = next(t for t in VOCABULARY if key == content_key_of(ws, t))
                    np.testing.assert_allclose(rows[0], vocabulary_vectors[text], atol=1e-5)
            report = run_pass(ws)
            assert report.missing == 0
            items = live_items(ws)
            assert set(items) <= set(cached_rows(ws))
            assert report.items == len(set(items))
        finally:
            ws.close()


def content_key_of(ws: Workspace, text: str) -> str | None:
    with db.read_session(ws.engine) as session:
        return session.exec(select(Item.content_hash).where(Item.text == text)).first()


def kill_after(ws: Workspace, chunks: int, monkeypatch) -> None:
    """A pass that dies after writing ``chunks`` chunks, leaving a matrix without its keys."""
    written = 0
    add = FeatureCache.add

    def dying_add(self, featurizer, keys, matrix):
        nonlocal written
        if written == chunks:
            folder = self.version_folder(featurizer)
            stems = [f.name.split(".")[0] for f in folder.glob("chunk-*")]
            number = max((int(stem[6:]) for stem in stems), default=0) + 1
            np.save(folder / f"chunk-{number:06d}.npy", np.asarray(matrix))  # keys not renamed
            raise Killed
        written += 1
        return add(self, featurizer, keys, matrix)

    with monkeypatch.context() as patched:
        patched.setattr(FeatureCache, "add", dying_add)
        with contextlib.suppress(Killed):
            run_pass(ws, chunk_rows=2)


# ---------------------------------------------------------------- concurrent writers


def write_rows(folder: str, writer: int, n_chunks: int) -> None:
    for c in range(n_chunks):
        keys = np.array([f"w{writer}-c{c}-r{r}" for r in range(3)])
        write_chunk(Path(folder), keys, np.full((3, 4), writer * 1000 + c, dtype=np.float32))


def check_every_chunk_kept(folder: Path, writers: int, n_chunks: int) -> None:
    assert len(list(folder.glob("chunk-*.keys.npy"))) == writers * n_chunks
    for keys_file in folder.glob("chunk-*.keys.npy"):
        keys = np.load(keys_file)
        matrix = np.load(str(keys_file).replace(".keys.npy", ".npy"))
        writer, chunk = (int(part[1:]) for part in str(keys[0]).split("-")[:2])
        assert (matrix == writer * 1000 + chunk).all()


def test_writers_in_threads_never_take_the_same_chunk_number(tmp_path):
    threads = [threading.Thread(target=write_rows, args=(str(tmp_path), w, 25)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check_every_chunk_kept(tmp_path, 6, 25)


def test_writers_in_processes_never_take_the_same_chunk_number(tmp_path):
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        done = [pool.submit(write_rows, str(tmp_path), w, 40) for w in range(2)]
        for future in done:
            future.result()
    check_every_chunk_kept(tmp_path, 2, 40)


def test_a_key_stored_twice_is_read_from_its_first_chunk(tmp_path):
    featurizer = SentenceEmbeddingFeaturizer()
    cache = FeatureCache(tmp_path)
    first = np.ones((2, 384), dtype=np.float32)
    cache.add(featurizer, ["k1", "k2"], first)
    cache.add(featurizer, ["k2", "k3"], first * 2)
    assert not cache.lacking(featurizer, ["k1", "k2", "k3"]).any()
    rows = cache.rows(featurizer, ["k3", "k2", "k1"], lambda _: pytest.fail("nothing to embed"))
    np.testing.assert_array_equal(rows[:][:, 0], [2.0, 1.0, 1.0])
    assert os.path.exists(tmp_path) and cache.last_computed == 0


def test_a_failing_background_pass_is_reported_once_until_the_items_change(tmp_path, monkeypatch):
    ws = embedding_workspace(tmp_path / "ws")
    add_items(ws, write_items(tmp_path / "a.jsonl", texts_for(3)))
    embedder = BackgroundEmbedder()

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("labeling.rounds.embedding_pass.run_pass", full_disk)
    with pytest.raises(EmbeddingPassFailed, match="No space left on device"):
        embedder.step(ws)
    assert embedder.step(ws) is None  # not retried on every poll
    add_items(ws, write_items(tmp_path / "b.jsonl", texts_for(2, start=40), prefix="b"))
    with pytest.raises(EmbeddingPassFailed):
        embedder.step(ws)
    ws.close()
