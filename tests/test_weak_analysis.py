"""LF analysis against numbers computed by hand on a small matrix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weak_supervision import WeakSupervisionError, analyze_lfs, coverage_totals, lf_summary
from weak_supervision.analysis import weak_label_gold_accuracy, wilson_interval

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
    assert totals["pool"] == 6
    assert totals["lf"] == pytest.approx(5 / 6)
    assert totals["human"] == pytest.approx(4 / 6)
    assert totals["weak"] == pytest.approx(3 / 6) and totals["weak_any"] == totals["weak"]
    # People or weak label (LF votes alone give no label): rows 0-4, not row 5.
    assert totals["combined"] == pytest.approx(5 / 6)
    assert totals["counts"] == {"human": 4, "lf": 5, "weak": 3, "weak_any": 3, "combined": 5}
    ham, spam = totals["per_class"]["ham"], totals["per_class"]["spam"]
    assert ham["lf"] == pytest.approx(4 / 6)  # rows 1, 2, 3, 5
    assert spam["lf"] == pytest.approx(3 / 6)  # rows 0, 1, 5
    assert ham["human"] == pytest.approx(2 / 6) and spam["human"] == pytest.approx(2 / 6)
    # Human label first, weak label where there is none: ham rows 1, 2, 3; spam rows 0, 4.
    assert ham["combined"] == pytest.approx(3 / 6) and spam["combined"] == pytest.approx(2 / 6)
    # Overall combined is the sum of the classes: one definition, whichever way it is read.
    assert totals["combined"] == pytest.approx(ham["combined"] + spam["combined"])


def test_totals_count_only_confident_weak_labels_as_weak_and_combined():
    weak = np.array([1, -1, 0, 0, -1, 1])
    confidence = np.array([0.9, 0.0, 0.5, 0.7, 0.0, 0.69])
    totals = coverage_totals(
        L, LABELS, human=HUMAN, weak=weak, weak_confidence=confidence, weak_threshold=0.7
    )
    # Confident: rows 0 (0.9) and 3 (0.7, the threshold counts); row 5 (0.69) is not.
    assert totals["counts"]["weak"] == 2 and totals["counts"]["weak_any"] == 4
    # People label rows 0, 1, 3, 4; rows 2 and 5 have only unconfident weak labels.
    assert totals["counts"]["combined"] == 4
    assert totals["per_class"]["spam"]["weak"] == pytest.approx(1 / 6)
    assert totals["weak_threshold"] == 0.7
    with pytest.raises(WeakSupervisionError, match="L has 6 rows but 2 weak confidences"):
        coverage_totals(L, LABELS, weak=weak, weak_confidence=[0.5, 0.5])


def test_weak_label_gold_accuracy_counts_covered_gold_rows_only():
    weak = np.array([0, 1, -1, -1, 0, 1])
    gold = np.array([0, 0, 1, -1, 0, -1])
    found = weak_label_gold_accuracy(weak, gold)
    # Gold rows 0, 1, 2, 4; covered 0, 1, 4; right 0 and 4; row 2 has no weak label.
    assert (found["gold_covered_correct"], found["gold_covered_n"]) == (2, 3)
    assert found["gold_covered_accuracy"] == pytest.approx(2 / 3)
    assert found["gold_uncovered"] == 1


def test_summary_frame_and_shape_errors():
    frame = lf_summary(L, ["a", "b", "c"], LABELS)
    assert list(frame.index) == ["a", "b", "c"]
    assert frame.loc["a", "coverage"] == pytest.approx(4 / 6)
    with pytest.raises(WeakSupervisionError, match="L has 3 columns but 2 LF names"):
        analyze_lfs(L, ["a", "b"], LABELS)
    with pytest.raises(WeakSupervisionError, match="L has 6 rows but 2 human labels"):
        analyze_lfs(L, ["a", "b", "c"], LABELS, human=[0, 1])


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_coverage_totals_match_a_row_by_row_count(data):
    """Every coverage figure against a plain count over the rows, on random inputs."""
    n_classes = data.draw(st.integers(2, 4))
    n_rows = data.draw(st.integers(0, 30))
    n_lfs = data.draw(st.integers(0, 3))
    labels = [f"c{k}" for k in range(n_classes)]
    vote = st.integers(-1, n_classes - 1)
    L = np.array(
        data.draw(
            st.lists(
                st.lists(vote, min_size=n_lfs, max_size=n_lfs), min_size=n_rows, max_size=n_rows
            )
        ),
        dtype=np.int64,
    ).reshape(n_rows, n_lfs)
    human = data.draw(st.lists(vote, min_size=n_rows, max_size=n_rows))
    weak = data.draw(st.lists(vote, min_size=n_rows, max_size=n_rows))
    confidence = data.draw(st.lists(st.floats(0, 1), min_size=n_rows, max_size=n_rows))
    threshold = data.draw(st.floats(0, 1))
    totals = coverage_totals(
        L, labels, human=human, weak=weak, weak_confidence=confidence, weak_threshold=threshold
    )
    confident = [w >= 0 and c >= threshold for w, c in zip(weak, confidence, strict=True)]
    final = [
        h if h >= 0 else (w if ok else -1) for h, w, ok in zip(human, weak, confident, strict=True)
    ]
    expected = {
        "human": sum(h >= 0 for h in human),
        "lf": sum(any(v >= 0 for v in row) for row in L.tolist()),
        "weak": sum(confident),
        "weak_any": sum(w >= 0 for w in weak),
        "combined": sum(f >= 0 for f in final),
    }
    assert totals["counts"] == expected
    assert totals["pool"] == n_rows
    for key, n in expected.items():
        assert totals[key] == pytest.approx(n / n_rows if n_rows else 0.0)
    for k, label in enumerate(labels):
        shares = totals["per_class"][label]
        assert shares["combined"] == pytest.approx(
            sum(f == k for f in final) / n_rows if n_rows else 0.0
        )
        assert shares["lf"] == pytest.approx(
            sum(k in row for row in L.tolist()) / n_rows if n_rows else 0.0
        )
    # The classes partition the combined rows: their shares add up to the overall one.
    assert sum(v["combined"] for v in totals["per_class"].values()) == pytest.approx(
        totals["combined"]
    )
    assert totals["weak"] <= totals["weak_any"] and totals["combined"] >= totals["human"]
    # Leaving out the rows nothing covers, and saying how many rows there are, changes nothing.
    keep = [
        i
        for i in range(n_rows)
        if human[i] >= 0 or weak[i] >= 0 or any(v >= 0 for v in L[i].tolist())
    ]
    sparse = coverage_totals(
        L[keep],
        labels,
        human=[human[i] for i in keep],
        weak=[weak[i] for i in keep],
        weak_confidence=[confidence[i] for i in keep],
        weak_threshold=threshold,
        rows=n_rows,
    )
    assert sparse == totals
