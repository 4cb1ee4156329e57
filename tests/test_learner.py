"""The classifier factory, training checks and chunked probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from labeling.rounds.learner import (
    NotEnoughLabels,
    UnknownClassifier,
    make_classifier,
    predict_proba,
    train,
    weak_sample_weights,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=120)
    X = np.eye(3)[y] * 2 + rng.normal(scale=0.7, size=(120, 3))
    return sp.csr_matrix(np.abs(X)), y


@pytest.mark.parametrize("name", ["logreg", "sgd"])
def test_each_classifier_learns_and_gives_probabilities(name, data):
    X, y = data
    model = train(X, y, classifier=name, seed=1)
    proba = predict_proba(model, X)
    assert proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (proba.argmax(axis=1) == y).mean() > 0.8


def test_unknown_classifier_lists_the_known_ones():
    with pytest.raises(UnknownClassifier, match="logreg, sgd"):
        make_classifier("forest")


def test_one_class_is_refused_with_the_count(data):
    X, _ = data
    with pytest.raises(NotEnoughLabels, match="at least 2 classes; found only 'spam' in 5 rows"):
        train(X[:5], ["spam"] * 5)


def test_a_class_with_a_single_example_is_fine(data):
    X, y = data
    labels = np.where(np.arange(120) == 0, 7, np.minimum(y, 1))
    model = train(X, labels)
    assert 7 in model.classes_


def test_weights_count(data):
    X, y = data
    weights = np.where(y == 2, 0.01, 1.0)
    light = train(X, y, weights)
    plain = train(X, y)
    assert predict_proba(light, X)[y == 2, 2].mean() < predict_proba(plain, X)[y == 2, 2].mean()


def test_bad_weights_and_label_counts_are_errors(data):
    X, y = data
    with pytest.raises(Exception, match="expected 120 sample weights"):
        train(X, y, np.ones(3))
    with pytest.raises(Exception, match="non-negative"):
        train(X, y, -np.ones(120))
    with pytest.raises(Exception, match="one label per row"):
        train(X, y[:10])


def test_chunked_probabilities_equal_one_pass(data):
    X, y = data
    model = train(X, y)
    np.testing.assert_allclose(predict_proba(model, X, chunk_rows=7), model.predict_proba(X))
    rows = np.array([5, 0, 3, 3, 11])
    np.testing.assert_allclose(
        predict_proba(model, X, chunk_rows=2, rows=rows), model.predict_proba(X[rows])
    )


@given(
    confidence=st.lists(st.floats(0.0, 1.0), max_size=60),
    n_human=st.integers(0, 40),
    weight=st.floats(0.01, 0.99),
    balance=st.sampled_from([0.0, 0.5, 1.0, 2.0, 10.0]),
)
def test_weak_labels_together_weigh_at_most_balance_times_the_human_labels(
    confidence, n_human, weight, balance
):
    conf = np.array(confidence, dtype=np.float64)
    weights = weak_sample_weights(conf, weak_weight=weight, n_human=n_human, weak_balance=balance)
    plain = weight * conf
    assert weights.shape == conf.shape
    assert np.all(weights <= plain + 1e-12) and np.all(weights >= 0)
    if n_human == 0 or balance == 0 or plain.sum() <= balance * n_human:
        np.testing.assert_allclose(weights, plain)  # no cap: weight x confidence
    else:
        assert weights.sum() == pytest.approx(balance * n_human)
        # scaled, not clipped: the more confident weak label still weighs more
        np.testing.assert_allclose(weights * plain.sum(), plain * weights.sum(), atol=1e-9)
