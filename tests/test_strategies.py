"""Query strategies: one contract for every registered strategy, then each one's own promise."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from strategies import (
    MULTILABEL_ONLY,
    STRATEGIES,
    EmptyPoolError,
    PoolTooSmallError,
    StrategyError,
    UnknownStrategyError,
    as_multilabel,
    get_strategy,
)

N_POOL = 80
KINDS = ("single-label", "multi-label")


@pytest.fixture(scope="module")
def single_label_problem():
    """A two-class pool with a fitted model and a handful of labelled rows."""
    rng = np.random.default_rng(3)
    centres = np.array([[2.0, 0.0, 0.0, 1.0], [0.0, 2.0, 1.0, 0.0]])
    labels = rng.integers(0, 2, size=N_POOL + 20)
    X = centres[labels] + rng.normal(scale=0.9, size=(len(labels), 4))
    X = np.abs(X)  # non-negative, like TF-IDF
    model = LogisticRegression().fit(X[N_POOL:], labels[N_POOL:])
    return {
        "pool": X[:N_POOL],
        "model": model,
        "labelled_features": X[N_POOL:],
        "labelled_labels": labels[N_POOL:],
        "mark": np.asarray,
    }


@pytest.fixture(scope="module")
def multi_label_problem():
    """Three labels, each present where its own feature is high: a one-vs-rest model (marked
    multi-label by scikit-learn itself) and labelled sets as an indicator matrix, some empty."""
    rng = np.random.default_rng(3)
    X = np.abs(rng.normal(1.0, 0.9, size=(N_POOL + 20, 4)))
    Y = (X[:, :3] + rng.normal(scale=0.4, size=(len(X), 3)) > 1.3).astype(np.uint8)
    assert (Y[N_POOL:].sum(axis=1) == 0).any() and (Y[N_POOL:].sum(axis=1) >= 2).any()
    model = OneVsRestClassifier(LogisticRegression()).fit(X[N_POOL:], Y[N_POOL:])
    assert model.multilabel_ is True
    return {
        "pool": X[:N_POOL],
        "model": model,
        "labelled_features": X[N_POOL:],
        "labelled_labels": Y[N_POOL:],
        "mark": as_multilabel,
    }


@pytest.fixture
def kind():
    """Which problem a test runs on, unless it is parametrized over both."""
    return "single-label"


@pytest.fixture
def problem(kind, single_label_problem, multi_label_problem):
    return single_label_problem if kind == "single-label" else multi_label_problem


_MODEL = object()


def _ask(name, problem, n, *, rng=0, pool=None, model=_MODEL):
    pool = problem["pool"] if pool is None else pool
    return get_strategy(name)(
        problem["model"] if model is _MODEL else model,
        pool,
        n,
        rng=rng,
        labelled_features=problem["labelled_features"],
        labelled_labels=problem["labelled_labels"],
    )


# Every strategy on both problems, but the multi-label-only ones on multi-label only (they
# refuse single-label input: see test_strategies_multilabel.py).
CASES = [
    (kind, name)
    for kind in KINDS
    for name in sorted(STRATEGIES)
    if kind == "multi-label" or name not in MULTILABEL_ONLY
]


@pytest.mark.parametrize(("kind", "name"), CASES)
class TestStrategyContract:
    def test_n_distinct_indices_from_the_pool(self, name, problem):
        indices, scores = _ask(name, problem, 7)
        assert indices.dtype.kind == "i"
        assert len(indices) == 7 == len(set(indices.tolist()))
        assert indices.min() >= 0 and indices.max() < N_POOL

    def test_one_score_per_pool_row_with_the_batch_on_top(self, name, problem):
        indices, scores = _ask(name, problem, 5)
        assert scores.shape == (N_POOL,) and scores.dtype == np.float64
        assert np.isfinite(scores).all()
        # Ranking the pool by score serves the batch first, in the strategy's order.
        ranked = np.argsort(-scores, kind="stable")[:5]
        assert scores[indices].tolist() == sorted(scores[indices].tolist(), reverse=True)
        assert set(ranked.tolist()) == set(indices.tolist())

    def test_deterministic_under_a_seed(self, name, problem):
        first = _ask(name, problem, 6, rng=42)
        again = _ask(name, problem, 6, rng=42)
        assert first[0].tolist() == again[0].tolist()
        np.testing.assert_array_equal(first[1], again[1])

    def test_sparse_pool_and_probability_input(self, name, problem):
        pool = sp.csr_matrix(problem["pool"])
        proba = problem["mark"](problem["model"].predict_proba(problem["pool"]))
        indices, scores = _ask(name, problem, 4, pool=pool, model=proba)
        assert len(set(indices.tolist())) == 4 and len(scores) == N_POOL

    def test_whole_pool(self, name, problem):
        pool = problem["pool"][:6]
        indices, _ = _ask(name, problem, 6, pool=pool)
        assert sorted(indices.tolist()) == list(range(6))

    def test_empty_pool_is_a_clear_error(self, name, problem):
        with pytest.raises(EmptyPoolError, match="pool is empty"):
            _ask(name, problem, 1, pool=np.zeros((0, 4)))

    def test_more_than_the_pool_is_a_clear_error(self, name, problem):
        message = "asked for 81 items but the pool holds only 80"
        with pytest.raises(PoolTooSmallError, match=message):
            _ask(name, problem, N_POOL + 1)

    def test_zero_items_is_refused(self, name, problem):
        with pytest.raises(StrategyError, match="n >= 1"):
            _ask(name, problem, 0)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownStrategyError) as caught:
        get_strategy("smartest")
    message = str(caught.value)
    assert "smartest" in message and "least_confidence" in message and "random" in message


def test_model_based_strategies_need_a_model(problem):
    with pytest.raises(StrategyError, match="needs a fitted model"):
        get_strategy("margin")(None, problem["pool"], 3, rng=0)


def test_probabilities_must_match_the_pool(problem):
    with pytest.raises(StrategyError, match=r"expected probabilities of shape \(80"):
        get_strategy("entropy")(np.full((5, 2), 0.5), problem["pool"], 3, rng=0)


PROBA = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.5, 0.5], [0.99, 0.01], [0.35, 0.65]])


def test_least_confidence_picks_the_lowest_top_probability():
    indices, scores = get_strategy("least_confidence")(PROBA, np.eye(6), 3, rng=0)
    assert indices.tolist() == [3, 1, 5]
    np.testing.assert_allclose(scores, 1 - PROBA.max(axis=1))


def test_margin_and_entropy_rank_three_classes_differently():
    proba = np.array([[0.5, 0.5, 0.0], [0.4, 0.3, 0.3], [0.8, 0.1, 0.1]])
    margin_first = get_strategy("margin")(proba, np.eye(3), 1, rng=0)[0]
    entropy_first = get_strategy("entropy")(proba, np.eye(3), 1, rng=0)[0]
    assert margin_first.tolist() == [0]  # top two tied
    assert entropy_first.tolist() == [1]  # mass spread over all three


def test_cold_start_needs_no_model_and_covers_the_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0], [0.0, -10.0]])
    pool = np.repeat(centres, 25, axis=0) + rng.normal(scale=0.5, size=(100, 2))
    indices, _ = get_strategy("cold_start")(None, pool, 4, rng=1)
    assert sorted((indices // 25).tolist()) == [0, 1, 2, 3]


def test_cold_start_puts_lf_disagreement_first():
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(40, 3))
    votes = np.full((40, 3), -1)
    votes[:, 0] = 0
    votes[[7, 21], 1] = 1  # two rows where LFs disagree
    indices, _ = get_strategy("cold_start")(None, pool, 2, rng=0, lf_votes=votes)
    assert sorted(indices.tolist()) == [7, 21]


def test_cold_start_rejects_votes_of_the_wrong_shape():
    with pytest.raises(StrategyError, match="LF votes of shape"):
        get_strategy("cold_start")(None, np.eye(5), 2, rng=0, lf_votes=np.zeros((4, 2)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["ranked_batch", "diverse_uncertainty"])
def test_batch_strategies_avoid_near_copies(name, kind):
    # Ten copies of the most uncertain row: uncertainty alone takes them all, batch modes not.
    rng = np.random.default_rng(0)
    pool = np.vstack([np.tile([[1.0, 1.0, 0.0]], (10, 1)), rng.uniform(0, 3, size=(60, 3))])
    proba = np.column_stack([np.linspace(0.6, 0.99, 70), 1 - np.linspace(0.6, 0.99, 70)])
    proba[:10] = 0.5
    if kind == "multi-label":  # three labels, the copies unsure of two of them
        proba = as_multilabel(np.column_stack([proba, np.linspace(0.05, 0.01, 70)]))
    plain, _ = get_strategy("least_confidence")(proba, pool, 5, rng=0)
    assert set(plain.tolist()) <= set(range(10))
    diverse, _ = get_strategy(name)(proba, pool, 5, rng=0)
    assert len(set(diverse.tolist()) & set(range(10))) <= 2


def test_density_weighting_uses_modals_information_density(problem):
    from modAL.density import information_density
    from modAL.uncertainty import classifier_entropy

    _, scores = get_strategy("density_weighted")(problem["model"], problem["pool"], 3, rng=0)
    expected = classifier_entropy(problem["model"], problem["pool"]) * information_density(
        problem["pool"]
    )
    np.testing.assert_allclose(scores, expected)


def test_density_estimate_on_a_large_pool_tracks_the_exact_one(monkeypatch):
    from modAL.density import information_density as exact

    from strategies import density

    rng = np.random.default_rng(0)
    pool = np.vstack([rng.normal(0, 0.3, size=(150, 2)), rng.normal(4, 2.0, size=(50, 2))])
    monkeypatch.setattr(density, "DENSITY_REFERENCE_ROWS", 120)
    estimate = density.information_density(pool, np.random.default_rng(1))
    assert np.corrcoef(estimate, exact(pool))[0, 1] > 0.98


def test_qbc_needs_labelled_data(problem):
    with pytest.raises(StrategyError, match="labelled_features and labelled_labels"):
        get_strategy("qbc")(problem["model"], problem["pool"], 3, rng=0)


def test_qbc_scores_are_vote_entropy_where_members_disagree(problem):
    indices, scores = _ask("qbc", problem, 5)
    # Vote entropy of 5 voters over 2 classes is 0, 0.500 (4:1) or 0.673 (3:2); the tie-break
    # adds less than 0.001.
    levels = np.round(scores, 2)
    assert set(levels.tolist()) <= {0.0, 0.5, 0.67}
    assert (levels[indices] >= levels.max() - 1e-9).any()


def test_cold_start_finds_topics_in_sparse_high_dimensional_text_like_data():
    # Four "topics", each with its own 300 of 1,200 columns, 8 terms per row, rows unit length:
    # the shape of TF-IDF, where raw k-means tends to return one blob plus outliers.
    rng = np.random.default_rng(5)
    rows, cols = [], []
    for row in range(200):
        topic = row // 50
        rows += [row] * 8
        cols += (topic * 300 + rng.choice(300, size=8, replace=False)).tolist()
    pool = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(200, 1200))
    pool = sp.csr_matrix(pool.multiply(1 / np.sqrt(8)))
    indices, _ = get_strategy("cold_start")(None, pool, 4, rng=2)
    assert sorted((indices // 50).tolist()) == [0, 1, 2, 3]
