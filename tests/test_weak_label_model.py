"""Label models: LabelModel with 3+ voting LFs, majority otherwise, and Snorkel-style scoring."""

from __future__ import annotations

import numpy as np
import pytest

from weak_supervision import (
    LabelModelError,
    estimate_class_balance,
    fit_label_model,
    gold_accuracy,
)
from weak_supervision.label_model import break_ties, majority_probabilities

L_TWO = np.array([[0, -1], [1, 1], [0, 1], [-1, -1], [1, -1]])


def synthetic_votes(n_rows: int = 600, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Three conditionally independent LFs of different accuracy and coverage."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_rows)
    columns = []
    for accuracy, coverage in ((0.9, 0.7), (0.8, 0.6), (0.7, 0.8)):
        correct = rng.random(n_rows) < accuracy
        vote = np.where(correct, truth, 1 - truth)
        columns.append(np.where(rng.random(n_rows) < coverage, vote, -1))
    return np.stack(columns, axis=1), truth


def test_fewer_than_three_lfs_fall_back_to_majority_with_a_message():
    for model in ("auto", "snorkel"):
        weak = fit_label_model(L_TWO, 2, model=model)
        assert weak.model == "majority"
        assert weak.message is not None and "at least 3" in weak.message
    assert weak.labels.tolist() == [0, 1, -1, -1, 1]  # row 2 ties, row 3 has no votes
    assert weak.confidence.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]
    np.testing.assert_allclose(weak.probabilities[3], [0.5, 0.5])


def test_three_silent_columns_do_not_count_as_three_lfs():
    L = np.column_stack([L_TWO, np.full(len(L_TWO), -1)])
    assert fit_label_model(L, 2).model == "majority"


def test_label_model_runs_with_three_lfs_and_beats_chance():
    L, truth = synthetic_votes()
    weak = fit_label_model(L, 2, seed=0)
    assert weak.model == "snorkel" and weak.message is None
    covered = weak.labels != -1
    assert covered.mean() > 0.9
    assert (weak.labels[covered] == truth[covered]).mean() > 0.85
    assert ((weak.confidence >= 0.5) | ~covered).all()
    again = fit_label_model(L, 2, seed=0)
    np.testing.assert_array_equal(again.labels, weak.labels)  # seeded: reproducible


def test_majority_on_request_even_with_many_lfs():
    L, _ = synthetic_votes()
    weak = fit_label_model(L, 2, model="majority")
    assert weak.model == "majority" and weak.message is None
    np.testing.assert_allclose(weak.probabilities, majority_probabilities(L, 2))


def test_fitted_model_labels_new_rows():
    L, _ = synthetic_votes()
    weak = fit_label_model(L, 2)
    other = weak.fitted.predict(np.array([[-1, -1, -1], [1, 1, 1]]))
    assert other.labels.tolist() == [-1, 1]


def test_gold_accuracy_counts_every_gold_row_and_breaks_ties_with_a_seed():
    weak = fit_label_model(L_TWO, 2, model="majority")
    gold = np.array([0, 1, 1, 0, -1])  # the last row is not gold
    first = gold_accuracy(weak, gold, seed=7)
    assert first["n"] == 4
    # Rows 0 and 1 are right; rows 2 (tie) and 3 (no votes) are coin flips.
    assert 2 <= first["correct"] <= 4
    assert gold_accuracy(weak, gold, seed=7) == first
    flips = {gold_accuracy(weak, gold, seed=s)["correct"] for s in range(20)}
    assert flips == {2, 3, 4}


def test_break_ties_only_chooses_among_tied_classes():
    probabilities = np.array([[0.4, 0.4, 0.2]] * 50)
    assert set(break_ties(probabilities, seed=0).tolist()) == {0, 1}


def test_class_balance_needs_enough_labels_and_is_smoothed():
    assert estimate_class_balance([0, 1, -1], 2) is None
    balance = estimate_class_balance([0] * 28 + [1] * 0 + [-1] * 5 + [0, 0], 2)
    np.testing.assert_allclose(balance, [31 / 32, 1 / 32])


def test_bad_inputs_say_what_was_expected():
    with pytest.raises(LabelModelError, match="in 0..1, found -1..2"):
        fit_label_model(np.array([[2, -1, 0]]), 2)
    with pytest.raises(LabelModelError, match="2-d matrix"):
        fit_label_model(np.array([0, 1]), 2)
    with pytest.raises(LabelModelError, match="unknown label model 'flyingsnake'"):
        fit_label_model(L_TWO, 2, model="flyingsnake")
    with pytest.raises(LabelModelError, match="2 positive shares summing to 1"):
        fit_label_model(L_TWO, 2, class_balance=[0.7, 0.7])
