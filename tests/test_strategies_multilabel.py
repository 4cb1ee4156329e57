"""Multi-label strategies: the marker, the per-label and set scores on hand-made matrices, and
the strategies that refuse what they cannot read. The contract over every strategy runs on a
multi-label problem in test_strategies.py."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from strategies import (
    MULTILABEL_ONLY,
    STRATEGIES,
    StrategyError,
    as_multilabel,
    get_strategy,
    is_multilabel,
)
from strategies.base import ProbabilityView, probabilities
from strategies.multilabel import set_uncertainty

# Per-label P(present) for three labels; rows need not sum to 1.
PROBA = np.array(
    [
        [0.5, 0.99, 0.01],  # one label a coin toss, the others sure
        [0.7, 0.3, 0.7],  # every label somewhat unsure
        [0.95, 0.9, 0.05],  # sure of all three
        [0.02, 0.01, 0.03],  # sure it holds none: the empty set
        [0.9, 0.8, 0.85],  # sure it holds all three
    ]
)
POOL = np.eye(5)
# Labelled sets: mean cardinality (1 + 2 + 0 + 1) / 4 = 1.
LABELLED = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0], [0, 0, 1]], dtype=np.uint8)


def _ask(name, proba=PROBA, n=2, **kwargs):
    return get_strategy(name)(as_multilabel(proba), POOL[: len(proba)], n, rng=0, **kwargs)


# ------------------------------------------------------------------------------ the marker


def test_a_wrapped_matrix_and_a_one_vs_rest_model_are_multi_label_and_nothing_else_is():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(np.uint8)
    multi = OneVsRestClassifier(LogisticRegression()).fit(X, Y)
    single = LogisticRegression().fit(X, Y[:, 0])
    assert is_multilabel(multi) and is_multilabel(as_multilabel(PROBA))
    assert not is_multilabel(single) and not is_multilabel(PROBA)
    assert is_multilabel(probabilities(multi, X, strategy="margin"))
    assert not is_multilabel(probabilities(single, X, strategy="margin"))
    assert ProbabilityView(as_multilabel(PROBA)).multilabel_
    assert not ProbabilityView(PROBA).multilabel_


def test_row_sums_never_decide():
    # Rows summing to 1 stay multi-label when marked; rows that do not stay single-label.
    assert is_multilabel(probabilities(as_multilabel([[0.5, 0.5]]), np.eye(1), strategy="x"))
    plain = probabilities(np.array([[0.9, 0.8, 0.7]]), np.eye(1), strategy="x")
    assert not is_multilabel(plain)


def test_the_mark_stays_on_rows_taken_from_the_matrix():
    assert is_multilabel(as_multilabel(PROBA)[[0, 3]])


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.array([0.2, 0.4]), r"shape \(items, labels >= 1\), found shape \(2,\)"),
        (np.array([[0.2, 1.5]]), r"in \[0, 1\], found values from 0.2 to 1.5"),
        (np.array([[0.2, np.nan]]), r"in \[0, 1\]"),
    ],
)
def test_as_multilabel_refuses_what_is_not_per_label_probabilities(matrix, message):
    with pytest.raises(StrategyError, match=message):
        as_multilabel(matrix)


def test_marked_probabilities_must_match_the_pool():
    with pytest.raises(StrategyError, match=r"expected probabilities of shape \(4, labels\)"):
        get_strategy("margin")(as_multilabel(PROBA), np.eye(4), 2, rng=0)


# ------------------------------------------------------------------------------ new strategies


def test_max_label_uncertainty_is_the_least_certain_labels_one_minus_margin():
    indices, scores = _ask("max_label_uncertainty")
    np.testing.assert_allclose(scores, [1.0, 0.6, 0.2, 0.06, 0.4])
    assert indices.tolist() == [0, 1]


def test_mean_label_uncertainty_is_one_minus_the_mean_margin():
    indices, scores = _ask("mean_label_uncertainty")
    np.testing.assert_allclose(scores, [1.04 / 3, 1.8 / 3, 0.4 / 3, 0.12 / 3, 0.9 / 3])
    # The coin toss on one label comes after an item unsure on all three (max: before).
    assert indices.tolist() == [1, 0]


def test_cardinality_inconsistency_is_the_distance_of_the_expected_count_from_the_mean():
    indices, scores = _ask("cardinality_inconsistency", labelled_labels=LABELLED)
    np.testing.assert_allclose(scores, [0.5, 0.7, 0.9, 0.94, 1.55])
    assert indices.tolist() == [4, 3]  # all three labels, then none, against one on average


def test_cardinality_inconsistency_reads_a_boolean_indicator_matrix_too():
    _, scores = _ask("cardinality_inconsistency", labelled_labels=LABELLED.astype(bool))
    np.testing.assert_allclose(scores[4], 1.55)


@pytest.mark.parametrize("labelled", [None, np.zeros((0, 3), dtype=np.uint8)])
def test_cardinality_inconsistency_without_labelled_sets_is_a_clear_error(labelled):
    with pytest.raises(StrategyError, match="needs labelled_labels"):
        _ask("cardinality_inconsistency", labelled_labels=labelled)


@pytest.mark.parametrize(
    ("labelled", "message"),
    [
        (
            np.array([0, 2, 1]),
            r"indicator matrix of shape \(labelled rows, 3\).*found shape \(3,\)",
        ),
        (np.ones((4, 2)), r"found shape \(4, 2\)"),
        (np.full((2, 3), 2), r"of 0 and 1 .* found values \[2\]"),
    ],
)
def test_labelled_sets_must_be_an_indicator_matrix_of_the_labels(labelled, message):
    with pytest.raises(StrategyError, match=message):
        _ask("cardinality_inconsistency", labelled_labels=labelled)


@pytest.mark.parametrize("name", sorted(MULTILABEL_ONLY))
def test_multi_label_strategies_refuse_single_label_input_and_name_the_others(name):
    proba = np.array([[0.7, 0.3], [0.4, 0.6]])
    with pytest.raises(StrategyError) as caught:
        get_strategy(name)(proba, np.eye(2), 1, rng=0, labelled_labels=np.array([0, 1]))
    message = str(caught.value)
    assert f"{name!r} is for multi-label problems" in message and "as_multilabel" in message
    assert "least_confidence" in message and name not in message.split("use one of")[1]


def test_the_new_strategies_are_registered():
    new = {"max_label_uncertainty", "mean_label_uncertainty", "cardinality_inconsistency"}
    assert new == MULTILABEL_ONLY and new <= set(STRATEGIES)


# ------------------------------------------------------------------------------ set readings


def test_least_confidence_is_one_minus_the_probability_of_the_likeliest_set():
    _, scores = _ask("least_confidence")
    np.testing.assert_allclose(scores[0], 1 - 0.5 * 0.99 * 0.99)
    np.testing.assert_allclose(scores[1], 1 - 0.7**3)
    np.testing.assert_allclose(scores[3], 1 - 0.98 * 0.99 * 0.97)


def test_margin_is_between_the_two_likeliest_sets():
    _, scores = _ask("margin")
    # Row 1: best {0, 2} = 0.343; second flips any one label: 0.343 * 3/7 = 0.147.
    np.testing.assert_allclose(scores[1], 1 - (0.343 - 0.147))
    # Row 0: flipping the coin-toss label gives a second set as likely as the best.
    np.testing.assert_allclose(scores[0], 1.0)


def test_entropy_is_the_sum_of_per_label_binary_entropies():
    _, scores = _ask("entropy")

    def h(p):
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))

    np.testing.assert_allclose(scores[1], 3 * h(0.7))
    np.testing.assert_allclose(scores[0], math.log(2) + 2 * h(0.01))
    assert set_uncertainty(np.array([[0.0, 1.0]]), "entropy").tolist() == [0.0]


def test_with_one_label_the_set_readings_are_the_two_class_measures():
    p = np.array([[0.8], [0.55], [0.1]])
    two_class = np.hstack([p, 1 - p])
    for measure in ("least_confidence", "margin", "entropy"):
        _, multi = get_strategy(measure)(as_multilabel(p), np.eye(3), 1, rng=0)
        _, single = get_strategy(measure)(two_class, np.eye(3), 1, rng=0)
        np.testing.assert_allclose(multi, single)


def test_least_confidence_and_margin_stay_below_one_with_many_labels():
    p = np.full((2, 60), 0.9)
    p[1, 0] = 0.6
    for measure in ("least_confidence", "margin"):
        scores = set_uncertainty(p, measure)
        assert ((scores > 0) & (scores <= 1)).all() and scores[1] > scores[0]


def test_density_weighting_multiplies_the_set_entropy():
    # The rows of the identity are equally typical: the density is one constant factor.
    _, scores = _ask("density_weighted")
    _, entropy = _ask("entropy")
    np.testing.assert_allclose(scores / entropy, np.full(5, scores[0] / entropy[0]))


# ------------------------------------------------------------------------------ committee


@pytest.fixture(scope="module")
def sets_problem():
    rng = np.random.default_rng(1)
    X = np.abs(rng.normal(1.0, 0.9, size=(60, 3)))
    Y = (X + rng.normal(scale=0.5, size=X.shape) > 1.2).astype(np.uint8)
    Y[:, 2] = 0  # a label nobody has used yet
    with pytest.warns(UserWarning, match="Label not 2 is present in all training examples"):
        model = OneVsRestClassifier(LogisticRegression()).fit(X[40:], Y[40:])
    return X[:40], model, X[40:], Y[40:]


def test_qbc_on_sets_is_the_mean_per_label_vote_entropy(sets_problem):
    pool, model, X, Y = sets_problem
    indices, scores = get_strategy("qbc")(
        model, pool, 5, rng=0, labelled_features=X, labelled_labels=Y
    )
    # Per label, 5 voters give vote entropy 0, 0.500 (4:1) or 0.673 (3:2); a score is the mean
    # over 3 labels of those, plus a tie-break below 0.001.
    levels = [
        0.0,
        -(0.8 * math.log(0.8) + 0.2 * math.log(0.2)),
        -(0.6 * math.log(0.6) + 0.4 * math.log(0.4)),
    ]
    means = np.array([(a + b + c) / 3 for a in levels for b in levels for c in levels])
    gaps = scores[:, None] - means[None, :]
    assert ((gaps >= 0) & (gaps < 1e-3)).any(axis=1).all()
    assert scores[indices].min() >= np.sort(scores)[-5] - 1e-12
    assert scores.max() > 0.1  # the members do disagree somewhere


def test_qbc_on_a_marked_matrix_trains_one_vs_rest_members(sets_problem):
    pool, model, X, Y = sets_problem
    proba = as_multilabel(model.predict_proba(pool))
    first = get_strategy("qbc")(proba, pool, 4, rng=3, labelled_features=X, labelled_labels=Y)
    again = get_strategy("qbc")(proba, pool, 4, rng=3, labelled_features=X, labelled_labels=Y)
    np.testing.assert_array_equal(first[1], again[1])


def test_qbc_on_sets_needs_an_indicator_matrix(sets_problem):
    pool, model, X, Y = sets_problem
    with pytest.raises(StrategyError, match="indicator matrix"):
        get_strategy("qbc")(model, pool, 3, rng=0, labelled_features=X, labelled_labels=Y[:, 0])


# ------------------------------------------------------------------------------ property


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6).map(tuple),
        min_size=1,
        max_size=4,
    ).filter(lambda rows: len({len(r) for r in rows}) == 1)
)
def test_set_readings_match_every_set_enumerated(rows):
    # Under label independence, enumerate the 2^L sets, their probabilities, and read
    # least confidence, margin and entropy off that distribution directly.
    proba = np.array(rows)
    for row, lc, mg, en in zip(
        proba,
        set_uncertainty(proba, "least_confidence"),
        set_uncertainty(proba, "margin"),
        set_uncertainty(proba, "entropy"),
        strict=True,
    ):
        sets = itertools.product((0, 1), repeat=len(row))
        mass = sorted(
            (
                math.prod(p if s else 1 - p for p, s in zip(row, chosen, strict=True))
                for chosen in sets
            ),
            reverse=True,
        )
        assert lc == pytest.approx(1 - mass[0], abs=1e-9)
        assert mg == pytest.approx(1 - (mass[0] - mass[1]), abs=1e-9)
        assert en == pytest.approx(-sum(m * math.log(m) for m in mass if m > 0), abs=1e-9)
