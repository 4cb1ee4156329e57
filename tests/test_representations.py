"""Representations: the hybrid rows read side by side, the cross-validated choice of ``auto``
(deterministic, recorded, shown), and feature-cache correctness for dense and hybrid blocks."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labeling import Workspace
from labeling.config import write_config
from labeling.rounds import pool as pool_module
from labeling.rounds.feature_cache import FeatureCache
from labeling.rounds.featurizers import (
    HYBRID_SCALES,
    content_key,
    digest,
    make_featurizer,
    side_by_side,
)
from labeling.rounds.representations import (
    CANDIDATES,
    MIN_CV_LABELS,
    PRIOR,
    SideBySide,
    n_folds,
    select,
)
from labeling.rounds.simulate import simulate
from tests.conftest import YOUTUBE

FILES = sorted(YOUTUBE.glob("Youtube0*.csv"))
WORDS = "spam offer free gift song music love video great channel check visit".split()


def _corpus(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Two classes told apart by their words, with noise words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        core = WORDS[:6] if label else WORDS[6:]
        words = list(rng.choice(core, 4)) + list(rng.choice(WORDS, 2))
        texts.append(" ".join(words))
        labels.append(str(label))
    return texts, np.array(labels, dtype=object)


# ------------------------------------------------------------------ the hybrid view


class _Dense:
    """A fast stand-in for the embeddings: a stateless dense featurizer (hashed characters)."""

    name = "dense-test"
    sparse = False
    stateless = True

    def __init__(self, width: int = 16, salt: str = "") -> None:
        self.width, self.salt = width, salt

    @property
    def version(self) -> str:
        return f"dense-test-{digest(self.width, self.salt)[:12]}"

    def fit(self, texts):
        return self

    def transform(self, texts):
        out = np.zeros((len(texts), self.width), dtype=np.float32)
        for row, text in enumerate(texts):
            for char in text + self.salt:
                out[row, ord(char) % self.width] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def test_side_by_side_rows_equal_the_stacked_matrix(tmp_path):
    texts, _ = _corpus(40)
    keys = [content_key(t) for t in texts]
    tfidf = make_featurizer("tfidf").fit(texts)
    dense = _Dense()
    cache = FeatureCache(tmp_path)
    a = cache.rows(tfidf, keys, lambda rows: [texts[i] for i in rows], chunk_rows=7)
    b = cache.rows(dense, keys, lambda rows: [texts[i] for i in rows], chunk_rows=9)
    view = SideBySide([a, b])
    whole = side_by_side([tfidf.transform(texts), dense.transform(texts)], HYBRID_SCALES)
    assert view.shape == whole.shape and len(view) == 40
    for rows in (slice(3, 17), np.array([39, 0, 5, 5]), 12, np.arange(40) % 3 == 0):
        got, want = view[rows], whole[rows] if not isinstance(rows, int) else whole[[rows]]
        np.testing.assert_allclose(got.toarray(), want.toarray(), atol=1e-6)
    picked = np.array([4, 30, 2])
    np.testing.assert_allclose(
        view.subset(picked)[1:].toarray(), whole[picked[1:]].toarray(), atol=1e-6
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["import", "remove", "refit", "change-dense"]),
            st.integers(min_value=1, max_value=12),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_cached_dense_and_hybrid_rows_equal_recomputation(tmp_path_factory, steps):
    """Random imports, removals, refits of the tfidf (a new version) and dense featurizer
    changes: the rows read through the cache, side by side, always equal the rows computed
    from scratch for the current items."""
    folder = tmp_path_factory.mktemp("cache")
    texts, _ = _corpus(200, seed=len(steps))
    items = list(texts[:10])
    tfidf = make_featurizer("tfidf", min_df=1).fit(items)
    dense = _Dense()
    cursor = 10

    def texts_of(rows, current):
        return [current[i] for i in rows]

    for op, size in steps:
        if op == "import":
            items += texts[cursor : cursor + size]
            cursor += size
        elif op == "remove" and len(items) > size:
            del items[:size]
        elif op == "refit":
            tfidf = make_featurizer("tfidf", min_df=1).fit(items)
        elif op == "change-dense":
            dense = _Dense(salt=str(size))
        keys = [content_key(t) for t in items]
        cache = FeatureCache(folder)
        read = SideBySide(
            [
                cache.rows(f, keys, lambda rows, now=items: texts_of(rows, now), chunk_rows=5)
                for f in (tfidf, dense)
            ]
        )
        fresh = side_by_side([tfidf.transform(items), dense.transform(items)], HYBRID_SCALES)
        np.testing.assert_allclose(read[:].toarray(), fresh.toarray(), atol=1e-6)
        assert cache.missing(dense, keys) == 0


def test_real_embeddings_through_the_cache_equal_a_fresh_pass(tmp_path):
    texts, _ = _corpus(30)
    keys = [content_key(t) for t in texts]
    embeddings = make_featurizer("sentence-embeddings")
    cache = FeatureCache(tmp_path)
    assert cache.missing(embeddings, keys) == len(set(texts))
    first = cache.rows(embeddings, keys[:20], lambda rows: [texts[i] for i in rows])[:]
    rows = cache.rows(embeddings, keys, lambda rows: [texts[i] for i in rows])
    assert cache.last_computed == len(set(texts) - set(texts[:20]))
    np.testing.assert_allclose(rows[:20], first, atol=1e-6)
    np.testing.assert_allclose(rows[:], embeddings.transform(texts), atol=1e-5)


# ------------------------------------------------------------------ the choice


def test_too_few_labels_take_the_prior_and_say_why():
    texts, y = _corpus(MIN_CV_LABELS - 1)
    X = make_featurizer("tfidf").fit(texts).transform(texts)
    chosen = select(lambda name: X, y)
    assert chosen.featurizer == PRIOR.featurizer == "hybrid"
    assert "too few to compare" in chosen.reason
    assert all(c["cv_macro_f1"] is None for c in chosen.candidates)
    assert n_folds(np.array(["a"] * 30 + ["b"])) == 0  # one class with two labels or more


def test_the_choice_is_deterministic_and_switches_only_by_a_margin():
    texts, y = _corpus(60)
    informative = make_featurizer("tfidf").fit(texts).transform(texts)
    noise = sp.csr_matrix(np.random.default_rng(1).normal(size=(60, 20)).astype(np.float32))
    blocks = {"tfidf": informative, "hybrid": noise, "sentence-embeddings": noise}
    first = select(lambda name: blocks[name], y, seed=3)
    again = select(lambda name: blocks[name], y, seed=3)
    assert first == again
    assert first.featurizer == "tfidf" and first.folds == 5 and first.n_labels == 60
    assert "more than 0.02 above hybrid's" in first.reason
    scores = {c["featurizer"]: c["cv_macro_f1"] for c in first.candidates}
    assert scores["tfidf"] > scores["hybrid"] + 0.02
    # Equal blocks: no candidate beats the prior by the margin, so the prior stays.
    same = select(lambda name: informative, y, seed=3)
    assert same.featurizer == "hybrid" and "scored best" in same.reason


def test_simulate_auto_reports_the_best_candidate_target_and_the_view_per_point():
    texts, y = _corpus(160)
    report = simulate(
        texts,
        list(y),
        strategies=["random", "diverse_uncertainty"],
        budget=30,
        batch=10,
        seeds=1,
        featurizer="auto",
    )
    assert report["full_supervision"]["featurizer"] in {c.featurizer for c in CANDIDATES}
    assert report["settings"]["featurizer"] == "auto"
    assert report["strategies"]["random"]["curve"][-1]["labels"] == 30


# ------------------------------------------------------------------ in a round


def _youtube(tmp_path, db_url, featurizer: str = "auto") -> Workspace:
    ws = Workspace.create(tmp_path / "yt", labels=["0", "1"], db_url=db_url)
    ws.config = replace(ws.config, gold_rate=0.0, featurizer=featurizer)
    write_config(ws.root, ws.config)
    common = {"text_field": "CONTENT", "id_field": "COMMENT_ID", "allow_duplicate_texts": True}
    ws.import_file(FILES[0], label_field="CLASS", **common)
    ws.import_file(FILES[1], **common)
    ws.import_file(FILES[4], label_field="CLASS", split="gold", **common)
    return ws


def test_an_auto_round_records_its_choice_everywhere(tmp_path, db_url):
    ws = _youtube(tmp_path, db_url)
    done = ws.retrain()
    assert done.status == "succeeded", done.error
    metrics = json.loads(done.metrics)
    chosen = metrics["representation"]
    assert chosen["setting"] == "auto" and chosen["folds"] >= 2
    assert chosen["featurizer"] in {c.featurizer for c in CANDIDATES}
    assert {c["featurizer"] for c in chosen["candidates"]} == {c.featurizer for c in CANDIDATES}
    assert metrics["featurizer"].startswith(f"{chosen['featurizer']}-")
    assert metrics["classifier"] == chosen["classifier"] == "logreg"
    # One record, shown by the rounds list (Model page) and status --json.
    assert ws.round_summaries()[-1]["representation"] == chosen
    status = ws.status(metrics=True)
    assert status["model"]["representation"] == chosen
    assert status["model"]["rounds"][-1]["representation"] == chosen
    # A second round reuses both cached blocks: nothing is featurized again.
    cache = ws.models_dir / "features" / "cache"
    versions = sorted(p.name.split("-")[0] for p in cache.iterdir())
    assert versions == ["sentence", "tfidf"]
    again = json.loads(ws.retrain().metrics)["representation"]
    assert again == chosen
    ws.close()


def test_without_embeddings_yet_an_auto_round_uses_ngrams_and_says_so(
    tmp_path, db_url, monkeypatch
):
    monkeypatch.setattr(pool_module, "INLINE_EMBED_ROWS", 10)
    ws = _youtube(tmp_path, db_url)
    metrics = json.loads(ws.retrain().metrics)
    chosen = metrics["representation"]
    assert chosen["featurizer"] == "tfidf"
    assert "not computed yet" in chosen["reason"] and "features build" in chosen["reason"]
    assert [c["featurizer"] for c in chosen["candidates"]] == ["tfidf"]
    ws.close()


@pytest.mark.parametrize("featurizer", ["hybrid", "tfidf"])
def test_a_fixed_featurizer_is_recorded_as_fixed(tmp_path, db_url, featurizer):
    ws = _youtube(tmp_path, db_url, featurizer=featurizer)
    metrics = json.loads(ws.retrain().metrics)
    assert metrics["representation"]["setting"] == featurizer
    assert metrics["representation"]["featurizer"] == featurizer
    assert "setting is" in metrics["representation"]["reason"]
    ws.close()
