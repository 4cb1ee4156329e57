"""Cold start on a multi-label pool: LFs naming different labels agree (a set holds both);
they disagree only when one votes a label present and another votes it absent."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import get_strategy
from strategies.base import StrategyError
from strategies.diversity import SetVotes, lf_disagreement
from weak_supervision.lf import absent_code

N_LABELS = 3


def test_present_votes_on_different_labels_are_not_a_conflict():
    votes = np.array([[0, 1, 2], [0, 0, -1], [0, absent_code(0, N_LABELS), -1], [-1, -1, -1]])
    score = lf_disagreement(SetVotes(votes, N_LABELS), 4)
    assert score[0] == 0.0  # a, b and c present: one set {a, b, c}, no conflict
    assert score[1] == 0.0
    assert score[2] == pytest.approx(np.log(2))  # a present against a absent
    assert score[3] == 0.0
    # the single-label reading of the same codes calls row 0 the most disputed
    assert np.argmax(lf_disagreement(votes, 4)) == 0


def test_conflicts_on_two_labels_add_up():
    n = N_LABELS
    votes = np.array(
        [
            [0, absent_code(0, n), 1, absent_code(1, n)],
            [0, absent_code(0, n), 1, 1],
            [0, 0, 0, absent_code(0, n)],
        ]
    )
    score = lf_disagreement(SetVotes(votes, n), 3)
    assert score[0] == pytest.approx(2 * np.log(2))
    assert score[1] == pytest.approx(np.log(2))
    assert score[2] == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))


def test_cold_start_puts_set_conflicts_first():
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(40, 3))
    votes = np.full((40, 3), -1)
    votes[:, 0] = 0
    votes[:, 1] = 1  # every row: a and b present, which is agreement
    votes[[5, 30], 2] = absent_code(1, N_LABELS)  # two rows where b is also voted absent
    indices, _ = get_strategy("cold_start")(None, pool, 2, rng=0, lf_votes=SetVotes(votes, 3))
    assert sorted(indices.tolist()) == [5, 30]


def test_set_votes_of_the_wrong_shape_are_refused():
    with pytest.raises(StrategyError, match="LF votes of shape"):
        lf_disagreement(SetVotes(np.zeros((4, 2)), N_LABELS), 5)
