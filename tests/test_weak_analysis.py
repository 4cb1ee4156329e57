"""LF analysis against numbers computed by hand on a small matrix."""

from __future__ import annotations

import numpy as np
import pytest

from weak_supervision import WeakSupervisionError, analyze_lfs, coverage_totals, lf_summary
from weak_supervision.analysis import wilson_interval

LABELS = ("ham", "spam")
# Six items, three LFs.
#         a    b    c
L = np.array(
    [
        [1, 1, -1],  # a and b agree
        [1, 0, -1],  # a and b conflict
        [-1, 0, 0],  # b and c agree
        [0, -1, -1],  # a alone
        [-1, -1, -1],  # nobody
        [1, -1, 0],  # a and c conflict
    ]
)
HUMAN = np.array([1, 0, -1, 0, 1, -1])
GOLD = np.array([-1, -1, 0, -1, -1, 1])


@pytest.fixture
def records():
    by_name = analyze_lfs(L, ["a", "b", "c"], LABELS, human=HUMAN, gold=GOLD, faults={"b": 2})
    return {r["lf"]: r for r in by_name}


def test_polarity_coverage_overlaps_conflicts(records):
    a, b, c = records["a"], records["b"], records["c"]
    assert a["polarity"] == ["ham", "spam"] and b["polarity"] == ["ham", "spam"]
    assert c["polarity"] == ["ham"]
    assert (a["votes"], b["votes"], c["votes"]) == (4, 3, 2)
    assert a["coverage"] == pytest.approx(4 / 6)
    assert a["overlaps"] == pytest.approx(3 / 6)  # rows 0, 1, 5
    assert a["conflicts"] == pytest.approx(2 / 6)  # rows 1, 5
    assert b["overlaps"] == pytest.approx(3 / 6)  # rows 0, 1, 2
    assert b["conflicts"] == pytest.approx(1 / 6)  # row 1
    assert c["overlaps"] == pytest.approx(2 / 6) and c["conflicts"] == pytest.approx(1 / 6)


def test_accuracy_comes_with_counts_and_an_interval(records):
    a, b, c = records["a"], records["b"], records["c"]
    # a voted on human rows 0 (1=1), 1 (1!=0), 3 (0=0): 2 of 3.
    assert (a["human_correct"], a["human_n"]) == (2, 3)
    assert a["human_accuracy"] == pytest.approx(2 / 3)
    # b on human rows 0 (right) and 1 (right): 2 of 2, which is not certainty.
    assert (b["human_correct"], b["human_n"]) == (2, 2)
    assert b["human_ci_high"] == 1.0 and b["human_ci_low"] < 0.35
    # c on gold rows 2 (0=0) and 5 (0!=1).
    assert (c["gold_correct"], c["gold_n"], c["gold_accuracy"]) == (1, 2, 0.5)
    assert (c["human_n"], c["human_accuracy"], c["human_ci_low"]) == (0, None, None)
    assert (a["faults"], b["faults"], c["faults"]) == (0, 2, 0)


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(3, 3)
    assert low == pytest.approx(0.4385, abs=1e-4) and high == 1.0
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_totals_by_lfs_humans_weak_and_combined_per_class():
    weak = np.array([1, -1, 0, 0, -1, -1])
    totals = coverage_totals(L, LABELS, human=HUMAN, weak=weak)
    assert totals["items"] == 6
    assert totals["lfs"] == pytest.approx(5 / 6)
    assert totals["humans"] == pytest.approx(4 / 6)
    assert totals["weak"] == pytest.approx(3 / 6)
    assert totals["combined"] == 1.0  # row 4 has a human label only
    ham, spam = totals["per_class"]["ham"], totals["per_class"]["spam"]
    assert ham["lfs"] == pytest.approx(4 / 6)  # rows 1, 2, 3, 5
    assert spam["lfs"] == pytest.approx(3 / 6)  # rows 0, 1, 5
    assert ham["humans"] == pytest.approx(2 / 6) and spam["humans"] == pytest.approx(2 / 6)
    # Human label first, weak label where there is none: ham rows 1, 2, 3; spam rows 0, 4.
    assert ham["combined"] == pytest.approx(3 / 6) and spam["combined"] == pytest.approx(2 / 6)


def test_summary_frame_and_shape_errors():
    frame = lf_summary(L, ["a", "b", "c"], LABELS)
    assert list(frame.index) == ["a", "b", "c"]
    assert frame.loc["a", "coverage"] == pytest.approx(4 / 6)
    with pytest.raises(WeakSupervisionError, match="L has 3 columns but 2 LF names"):
        analyze_lfs(L, ["a", "b"], LABELS)
    with pytest.raises(WeakSupervisionError, match="L has 6 rows but 2 human labels"):
        analyze_lfs(L, ["a", "b", "c"], LABELS, human=[0, 1])
