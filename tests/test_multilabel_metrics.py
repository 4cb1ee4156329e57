"""Multi-label figures (labeling.quality.multilabel): each against its definition.

Set-prediction scores against scikit-learn on random indicator matrices; the MASI distance and
Krippendorff's alpha over sets on a case computed by hand, against the nominal alpha where sets
are single labels, and against the ``krippendorff`` package given the MASI distance; per-label
kappa against ``cohen_kappa``; gold figures for sets; cleanlab's multi-label issue finder on
planted errors. No store: these are pure functions.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labeling.errors import BadInput, UnknownLabel
from labeling.quality import multilabel_agreement
from labeling.quality.agreement import cohen_kappa, krippendorff_alpha
from labeling.quality.multilabel import (
    LabelIssues,
    gold_set_accuracy,
    gold_set_figures,
    hamming_loss,
    indicator,
    jaccard_per_item,
    label_sets,
    macro_f1,
    mean_jaccard,
    micro_f1,
    multilabel_label_issues,
    per_label_scores,
    set_metrics,
    subset_accuracy,
)
from labeling.quality.multilabel_agreement import (
    all_pairs_distance,
    krippendorff_alpha_sets,
    masi_distance,
    masi_distances,
    per_label_kappa,
)

F = frozenset
LABELS = ("joy", "anger", "fear", "surprise", "trust", "other")


@st.composite
def indicator_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two 0/1 matrices of one shape; sparse or dense, so all-zero labels and rows occur."""
    n = draw(st.integers(1, 25))
    # Two labels at least: scikit-learn reads a single column as binary labels, not as sets.
    k = draw(st.integers(2, len(LABELS)))
    cells = arrays(np.uint8, (n, k), elements=st.integers(0, 1))
    return draw(cells), draw(cells)


label_set = st.frozensets(st.sampled_from(LABELS[:4]), max_size=4)


# --- indicator matrices ---------------------------------------------------------------------


@settings(deadline=None)  # a shared machine: behaviour, not time
@given(st.lists(label_set, max_size=20))
def test_sets_survive_the_round_trip_through_an_indicator_matrix(sets):
    Y = indicator(sets, LABELS)
    assert Y.shape == (len(sets), len(LABELS)) and Y.dtype == np.uint8
    assert label_sets(Y, LABELS) == sets


def test_columns_follow_the_label_order_and_the_empty_set_is_a_zero_row():
    Y = indicator([F({"fear", "joy"}), F()], ("joy", "anger", "fear"))
    assert Y.tolist() == [[1, 0, 1], [0, 0, 0]]


def test_a_string_for_a_set_is_refused_rather_than_read_letter_by_letter():
    with pytest.raises(BadInput, match="item 'c-1': expected a set of labels, found the string"):
        indicator(["joy"], LABELS, ids=["c-1"])


def test_an_unknown_label_is_refused_naming_the_item_and_the_label():
    with pytest.raises(UnknownLabel, match=r"item 'c-7'.*found 'love'"):
        indicator([F({"joy"}), F({"love"})], LABELS, ids=["c-6", "c-7"])
    with pytest.raises(UnknownLabel, match=r"row 1: expected labels among joy"):
        indicator([F({"joy"}), F({"love"})], LABELS)


# --- set predictions: the same figures as scikit-learn ----------------------------------------


@settings(max_examples=150, deadline=None)
@given(indicator_pairs(), st.sampled_from([0.0, 1.0]))
def test_set_scores_equal_scikit_learns(pair, zero_division):
    from sklearn.metrics import accuracy_score, f1_score, jaccard_score
    from sklearn.metrics import hamming_loss as sk_hamming
    from sklearn.metrics import precision_recall_fscore_support as prfs

    Y_true, Y_pred = pair
    k = Y_true.shape[1]
    labels = LABELS[:k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of every 0/0 it resolves
        sk = {
            "micro": f1_score(Y_true, Y_pred, average="micro", zero_division=zero_division),
            "macro": f1_score(Y_true, Y_pred, average="macro", zero_division=zero_division),
            "per": prfs(Y_true, Y_pred, average=None, zero_division=zero_division),
            "jaccard": jaccard_score(Y_true, Y_pred, average="samples", zero_division=1),
        }
    assert micro_f1(Y_true, Y_pred, zero_division=zero_division) == pytest.approx(sk["micro"])
    assert macro_f1(Y_true, Y_pred, zero_division=zero_division) == pytest.approx(sk["macro"])
    assert hamming_loss(Y_true, Y_pred) == pytest.approx(sk_hamming(Y_true, Y_pred))
    assert subset_accuracy(Y_true, Y_pred) == pytest.approx(accuracy_score(Y_true, Y_pred))
    assert mean_jaccard(Y_true, Y_pred) == pytest.approx(sk["jaccard"])
    per = per_label_scores(Y_true, Y_pred, labels, zero_division=zero_division)
    precision, recall, f1, support = sk["per"]
    for j, label in enumerate(labels):
        assert per[label]["precision"] == pytest.approx(precision[j])
        assert per[label]["recall"] == pytest.approx(recall[j])
        assert per[label]["f1"] == pytest.approx(f1[j])
        assert per[label]["support"] == support[j]
    assert macro_f1(Y_true, Y_pred, zero_division=zero_division) == pytest.approx(
        np.mean([row["f1"] for row in per.values()])
    )


def test_a_label_nobody_has_or_predicts_counts_as_f1_zero_in_the_macro_mean():
    # joy: right on both items (F1 1); anger: never true, never predicted (F1 0 by default).
    Y_true = np.array([[1, 0], [1, 0]])
    Y_pred = np.array([[1, 0], [1, 0]])
    assert macro_f1(Y_true, Y_pred) == 0.5
    assert macro_f1(Y_true, Y_pred, zero_division=1.0) == 1.0
    assert micro_f1(Y_true, Y_pred) == 1.0


def test_all_figures_at_once_on_a_case_with_empty_sets():
    labels = ("joy", "anger", "fear")
    truth = indicator([F({"joy"}), F(), F({"anger", "fear"}), F()], labels)
    predicted = indicator([F({"joy"}), F(), F({"anger"}), F({"fear"})], labels)
    figures = set_metrics(truth, predicted, labels)
    # Cells: TP joy 1, anger 1; FN fear 1; FP fear 1. Micro F1 = 2*2 / (2*2 + 1 + 1).
    assert figures["micro_f1"] == round(4 / 6, 6)
    # Per label F1: joy 1, anger 1, fear 0 (one FN, one FP).
    assert figures["macro_f1"] == round(2 / 3, 6)
    assert figures["hamming_loss"] == round(2 / 12, 6)
    # Exact: items 0 and 1 (empty = empty).
    assert figures["subset_accuracy"] == 0.5
    # Jaccard per item: 1, 1 (both empty), 1/2, 0.
    assert figures["jaccard"] == round(2.5 / 4, 6)
    assert jaccard_per_item(truth, predicted).tolist() == [1.0, 1.0, 0.5, 0.0]
    assert figures["per_label"]["fear"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 1,
    }
    assert figures["n"] == 4


@pytest.mark.parametrize(
    ("truth", "predicted", "message"),
    [
        (np.zeros((2, 3)), np.zeros((3, 3)), r"one shape, found \(2, 3\) and \(3, 3\)"),
        (np.zeros((2, 3)), np.full((2, 3), 2), r"Y_pred: expected only 0 and 1, found \[2\]"),
        (np.zeros(3), np.zeros(3), "expected a 2-d indicator matrix, found 1 dimensions"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "at least one item and one label"),
    ],
)
def test_bad_matrices_are_refused_saying_what_was_expected(truth, predicted, message):
    with pytest.raises(BadInput, match=message):
        hamming_loss(truth, predicted)


def test_per_label_scores_check_the_label_count():
    with pytest.raises(BadInput, match="expected 2 label columns, found 3"):
        per_label_scores(np.zeros((2, 3)), np.zeros((2, 3)), ("joy", "anger"))


# --- MASI distance --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        (F("ab"), F("ab"), Fraction(0)),  # equal: J 1, M 1
        (F(), F(), Fraction(0)),  # two empty answers agree
        (F("a"), F("ab"), Fraction(2, 3)),  # subset: J 1/2, M 2/3
        (F("ab"), F("abcd"), Fraction(2, 3)),  # subset: J 2/4, M 2/3
        (F("ab"), F("bc"), Fraction(8, 9)),  # overlap: J 1/3, M 1/3
        (F("a"), F("b"), Fraction(1)),  # disjoint: M 0
        (F(), F("a"), Fraction(1)),  # the empty set: J 0
    ],
)
def test_masi_distance_matches_passonneau_s_definition(a, b, distance):
    assert masi_distance(a, b) == pytest.approx(float(distance))
    matrix = masi_distances(indicator([a], "abcd"), indicator([b], "abcd"))
    assert matrix[0, 0] == pytest.approx(float(distance))


@settings(deadline=None)  # a shared machine: behaviour, not time
@given(label_set, label_set)
def test_masi_distance_is_symmetric_in_0_1_and_0_only_between_equal_sets(a, b):
    d = masi_distance(a, b)
    assert d == masi_distance(b, a)
    assert 0.0 <= d <= 1.0
    assert (d == 0.0) == (a == b)


@settings(deadline=None)  # a shared machine: behaviour, not time
@given(st.lists(label_set, min_size=1, max_size=8), st.lists(label_set, min_size=1, max_size=8))
def test_the_matrix_form_gives_each_pair_s_masi_distance(first, second):
    matrix = masi_distances(indicator(first, LABELS), indicator(second, LABELS))
    expected = [[masi_distance(a, b) for b in second] for a in first]
    np.testing.assert_allclose(matrix, expected)


wide_set = st.frozensets(st.sampled_from(LABELS), max_size=len(LABELS))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(wide_set, st.integers(1, 5)), min_size=1, max_size=12),
    st.sampled_from([0, 1, 2, 3, len(LABELS)]),
)
def test_the_sum_over_all_pairs_equals_comparing_every_pair(answers, cap):
    # The sub-set counting against the plain double loop; small caps send sets of more labels
    # down the direct comparison, so both paths and their mix are checked.
    counted = dict(answers)
    sets, counts = list(counted), list(counted.values())
    expected = sum(
        counts[i] * counts[j] * masi_distance(sets[i], sets[j])
        for i in range(len(sets))
        for j in range(len(sets))
    )
    kept = multilabel_agreement.SUBSET_COUNTING_MAX
    multilabel_agreement.SUBSET_COUNTING_MAX = cap
    try:
        assert all_pairs_distance(sets, counts) == pytest.approx(expected, abs=1e-9)
    finally:
        multilabel_agreement.SUBSET_COUNTING_MAX = kept


# --- Krippendorff's alpha over sets ---------------------------------------------------------


def test_alpha_with_masi_on_a_case_computed_by_hand():
    units = [
        [F("a"), F("ab")],  # u1: m=2
        [F("a"), F("a"), F("b")],  # u2: m=3
        [F(), F("c")],  # u3: m=2, an empty answer against {c}
        [F("a")],  # u4: one answer, not pairable: left out
    ]
    # Distances used: d({a},{a,b}) = 1 - 1/2 * 2/3 = 2/3; d({a,b},{b}) = 2/3; every other pair
    # of different sets here is disjoint or involves the empty set: 1; equal sets: 0.
    #
    # n = 7 pairable answers (u1 2, u2 3, u3 2).
    # D_o = 1/n * sum_u 1/(m_u - 1) * sum over ordered pairs in u:
    #   u1: 1/1 * (2/3 + 2/3)                             = 4/3
    #   u2: 1/2 * ({a},{a}) x2 -> 0, ({a},{b}) x4 -> 4     = 2
    #   u3: 1/1 * (1 + 1)                                 = 2
    #   D_o = (4/3 + 2 + 2) / 7 = 16/21
    # D_e = 1/(n (n-1)) * sum over ordered pairs of all 7 answers; counts {a} 3, {a,b} 1,
    # {b} 1, {} 1, {c} 1. Unordered pairs of different sets, count x count x d:
    #   {a}-{a,b} 3*1*2/3 = 2;  {a}-{b} 3;  {a}-{} 3;  {a}-{c} 3;
    #   {a,b}-{b} 2/3;  {a,b}-{} 1;  {a,b}-{c} 1;  {b}-{} 1;  {b}-{c} 1;  {}-{c} 1
    #   sum = 50/3, ordered 100/3; D_e = (100/3) / 42 = 50/63
    # alpha = 1 - (16/21) / (50/63) = 1 - 48/50 = 0.04
    assert krippendorff_alpha_sets(units) == pytest.approx(0.04)


def test_alpha_is_undefined_without_pairable_units_or_without_variation():
    assert krippendorff_alpha_sets([]) is None
    assert krippendorff_alpha_sets([[F("a")], [F("b")]]) is None
    assert krippendorff_alpha_sets([[F("a"), F("a")], [F("a"), F("a"), F("a")]]) is None
    assert krippendorff_alpha_sets([[F(), F()], [F(), F()]]) is None


singletons = st.lists(
    st.lists(st.sampled_from(LABELS[:3]), min_size=1, max_size=4), min_size=1, max_size=12
)


@settings(deadline=None)  # a shared machine: behaviour, not time
@given(singletons)
def test_alpha_on_one_label_answers_equals_the_nominal_alpha(units):
    # One-label sets are either identical (distance 0) or disjoint (distance 1): nominal.
    sets = [[F({label}) for label in unit] for unit in units]
    mine = krippendorff_alpha_sets(sets)
    nominal = krippendorff_alpha(units, LABELS[:3])
    if nominal is None:
        assert mine is None
    else:
        assert mine == pytest.approx(nominal, abs=1e-9)


@settings(deadline=None)  # a shared machine: behaviour, not time
@given(st.lists(st.lists(label_set, min_size=1, max_size=4), min_size=1, max_size=10))
def test_alpha_equals_the_krippendorff_package_given_the_masi_distance(units):
    import krippendorff

    distinct = sorted({s for unit in units for s in unit}, key=sorted)
    position = {s: i for i, s in enumerate(distinct)}
    counts = np.zeros((len(units), len(distinct)))
    for row, unit in enumerate(units):
        for s in unit:
            counts[row, position[s]] += 1
    table = masi_distances(indicator(distinct, LABELS), indicator(distinct, LABELS))

    def masi(v1, v2, i1, i2, n_v, dtype):
        return table[i1, i2]

    mine = krippendorff_alpha_sets(units)
    if mine is None:
        return
    with np.errstate(all="ignore"):
        theirs = krippendorff.alpha(value_counts=counts, level_of_measurement=masi)
    assert mine == pytest.approx(float(theirs), abs=1e-9)


@settings(deadline=None)  # a shared machine: behaviour, not time
@given(st.lists(st.tuples(label_set, st.integers(2, 4)), min_size=2, max_size=10))
def test_alpha_is_1_when_everyone_agrees_on_items_that_differ(answers):
    units = [[s] * raters for s, raters in answers]
    value = krippendorff_alpha_sets(units)
    if len({s for s, _ in answers}) < 2:
        assert value is None
    else:
        assert value == pytest.approx(1.0)


# --- per-label kappa ------------------------------------------------------------------------


def test_per_label_kappa_pairs_annotators_as_the_single_label_agreement_does():
    answers = {
        1: {"ann": F({"joy"}), "bob": F({"joy", "fear"}), "cy": F({"joy"})},
        2: {"ann": F(), "bob": F()},
        3: {"ann": F({"fear"}), "bob": F({"fear"})},
        4: {"ann": F({"joy"}), "bob": F()},
        5: {"bob": F({"joy"})},  # one answer: pairs with nobody
    }
    found = per_label_kappa(answers, ("joy", "fear", "anger"))
    joy = found["joy"]
    # ann/bob share items 1-4: joy 1,0,0,1 against 1,0,0,0; ann/cy and bob/cy share item 1.
    assert [(p["a"], p["b"], p["n"]) for p in joy["pairs"]] == [
        ("ann", "bob", 4),
        ("ann", "cy", 1),
        ("bob", "cy", 1),
    ]
    assert joy["pairs"][0]["kappa"] == pytest.approx(cohen_kappa(list("1001"), list("1000")))
    assert joy["pairs"][0]["observed"] == 0.75
    assert joy["pairs"][1]["kappa"] == 1.0  # one item, both say joy
    assert joy["kappa"] == pytest.approx((4 * joy["pairs"][0]["kappa"] + 1 + 1) / 6)
    # fear: ann/bob 0,0,1,0 against 1,0,1,0; ann/cy and bob/cy on item 1: (0,0) and (1,0).
    fear = found["fear"]
    assert fear["pairs"][0]["kappa"] == pytest.approx(cohen_kappa(list("0010"), list("1010")))
    assert fear["pairs"][2]["observed"] == 0.0
    # Answers in pairs holding fear: ann 1, bob 2 (ann/bob), bob 1 (bob/cy).
    assert fear["present"] == 4
    # anger: nobody ever says it; both raters always agree (kappa 1 by cohen_kappa's rule).
    assert found["anger"]["present"] == 0
    assert found["anger"]["kappa"] == 1.0


@settings(deadline=None)  # a shared machine: behaviour, not time
@given(
    st.dictionaries(
        st.integers(1, 40),
        st.dictionaries(st.integers(1, 4), label_set, min_size=1, max_size=4),
        max_size=15,
    )
)
def test_per_label_kappa_counts_each_pair_over_the_items_both_answered(answers):
    # Annotators keyed by store id, as answers_by_item keys them.
    found = per_label_kappa(answers, LABELS[:4])
    for label in LABELS[:4]:
        for pair in found[label]["pairs"]:
            both = [i for i, by in answers.items() if pair["a"] in by and pair["b"] in by]
            assert pair["a"] < pair["b"] and pair["n"] == len(both) > 0
            x = ["1" if label in answers[i][pair["a"]] else "0" for i in both]
            y = ["1" if label in answers[i][pair["b"]] else "0" for i in both]
            assert pair["kappa"] == cohen_kappa(x, y)
    same = {i: dict.fromkeys(by, next(iter(by.values()))) for i, by in answers.items()}
    for row in per_label_kappa(same, LABELS[:4]).values():
        assert all(p["kappa"] == 1.0 and p["observed"] == 1.0 for p in row["pairs"])


def test_per_label_kappa_without_shared_items_has_no_pairs():
    found = per_label_kappa({1: {"ann": F({"joy"})}, 2: {"bob": F()}}, ("joy",))
    assert found == {"joy": {"kappa": None, "pairs": [], "present": 0}}


# --- gold checks on sets --------------------------------------------------------------------


def test_gold_figures_count_exact_matches_and_mean_jaccard():
    rows = [
        ("ann", date(2026, 1, 5), F({"joy"}), F({"joy"})),  # exact, J 1
        ("ann", date(2026, 1, 5), F(), F()),  # exact: the empty answer to an empty set, J 1
        ("ann", date(2026, 1, 6), F({"joy"}), F({"joy", "fear"})),  # J 1/2
        ("bob", date(2026, 1, 6), F({"anger"}), F()),  # J 0
    ]
    found = gold_set_accuracy(rows)
    assert {k: found[k] for k in ("n", "correct", "accuracy", "jaccard")} == {
        "n": 4,
        "correct": 2,
        "accuracy": 0.5,
        "jaccard": round(2.5 / 4, 6),
    }
    ann = found["annotators"]["ann"]
    assert (ann["n"], ann["correct"], ann["jaccard"]) == (3, 2, 0.833333)
    assert ann["by_day"] == [
        {"day": "2026-01-05", "n": 2, "correct": 2, "accuracy": 1.0, "jaccard": 1.0},
        {"day": "2026-01-06", "n": 1, "correct": 0, "accuracy": 0.0, "jaccard": 0.5},
    ]
    assert found["annotators"]["bob"]["accuracy"] == 0.0
    assert list(found["annotators"]) == ["ann", "bob"]


def test_gold_answers_are_counted_per_calendar_day_whatever_their_time():
    rows = [
        ("ann", datetime(2026, 1, 5, 9, 30), F({"joy"}), F({"joy"})),
        ("ann", datetime(2026, 1, 5, 17, 2), F(), F({"joy"})),
    ]
    by_day = gold_set_accuracy(rows)["annotators"]["ann"]["by_day"]
    assert [(d["day"], d["n"], d["correct"]) for d in by_day] == [("2026-01-05", 2, 1)]


def test_gold_figures_without_answers_are_none():
    assert gold_set_figures([]) == {"n": 0, "correct": 0, "accuracy": None, "jaccard": None}
    assert gold_set_accuracy([])["annotators"] == {}


# --- likely label errors --------------------------------------------------------------------


def _noisy_case(seed: int = 0):
    """300 items, 4 labels, confident out-of-sample probabilities; 6 planted errors: three
    labels dropped (missing) and three added (extra)."""
    rng = np.random.default_rng(seed)
    labels = ("joy", "anger", "fear", "trust")
    truth = (rng.random((300, 4)) < 0.3).astype(np.uint8)
    proba = np.clip(truth * 0.85 + 0.07 + rng.normal(0, 0.03, truth.shape), 0.01, 0.99)
    given = truth.copy()
    dropped = {3: 0, 50: 2, 120: 1}
    added = {7: 3, 88: 1, 200: 0}
    for row, col in dropped.items():
        truth[row, col], given[row, col] = 1, 0
        proba[row, col] = 0.95
    for row, col in added.items():
        truth[row, col], given[row, col] = 0, 1
        proba[row, col] = 0.03
    return labels, given, proba, dropped, added


def test_planted_errors_are_found_with_the_labels_missing_or_extra():
    labels, given, proba, dropped, added = _noisy_case()
    found = multilabel_label_issues(label_sets(given, labels), proba, labels)
    assert isinstance(found, LabelIssues)
    by_row = {
        int(row): (missing, extra)
        for row, missing, extra in zip(found.rows, found.missing, found.extra, strict=True)
    }
    for row, col in dropped.items():
        assert by_row[row] == (F({labels[col]}), F())
    for row, col in added.items():
        assert by_row[row] == (F(), F({labels[col]}))
    assert set(found.rows.tolist()) == set(dropped) | set(added)
    assert np.all(np.diff(found.scores) >= 0)  # most suspicious (lowest quality) first
    assert np.all((found.scores >= 0) & (found.scores <= 1))


def test_the_ranking_is_cleanlab_s_own():
    from cleanlab.multilabel_classification.filter import find_label_issues

    labels, given, proba, _, _ = _noisy_case(seed=3)
    proba[:40] = np.clip(proba[:40] + np.random.default_rng(1).normal(0, 0.3, (40, 4)), 0, 1)
    found = multilabel_label_issues(label_sets(given, labels), proba, labels)
    lists = [np.flatnonzero(row).tolist() for row in given]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = find_label_issues(lists, proba, return_indices_ranked_by="self_confidence")
    assert len(found.rows) > 6
    assert found.rows.tolist() == np.asarray(theirs).tolist()


def test_a_label_given_to_every_item_or_to_none_is_left_out():
    labels, given, proba, dropped, added = _noisy_case()
    given = np.hstack([given, np.ones((300, 1), np.uint8), np.zeros((300, 1), np.uint8)])
    proba = np.hstack([proba, np.full((300, 1), 0.02), np.full((300, 1), 0.97)])
    names = (*labels, "always", "never")
    found = multilabel_label_issues(label_sets(given, names), proba, names)
    assert set(found.rows.tolist()) == set(dropped) | set(added)
    assert not any(
        {"always", "never"} & (m | e) for m, e in zip(found.missing, found.extra, strict=True)
    )
    nothing = multilabel_label_issues([F({"joy"})] * 5, np.full((5, 2), 0.5), ("joy", "fear"))
    assert nothing.rows.tolist() == [] and nothing.missing == [] and nothing.extra == []


def test_one_label_left_to_check_is_scored_by_its_self_confidence():
    from cleanlab.rank import get_self_confidence_for_each_label

    labels, given, proba, dropped, added = _noisy_case()
    given[:, 1:] = 0  # only joy varies
    found = multilabel_label_issues(label_sets(given, labels), proba, labels)
    in_joy = {row for row, col in {**dropped, **added}.items() if col == 0}
    assert in_joy <= set(found.rows.tolist())
    binary = np.column_stack([1 - proba[:, 0], proba[:, 0]])
    expected = get_self_confidence_for_each_label(given[:, 0].astype(int), binary)
    np.testing.assert_allclose(found.scores, expected[found.rows])


def test_probabilities_of_the_wrong_shape_or_range_are_refused():
    sets = [F({"joy"}), F()]
    with pytest.raises(
        BadInput, match=r"expected shape \(2, 2\) \(items, labels\), found \(2, 3\)"
    ):
        multilabel_label_issues(sets, np.zeros((2, 3)), ("joy", "fear"))
    with pytest.raises(BadInput, match=r"expected probabilities in \[0, 1\]"):
        multilabel_label_issues(sets, np.full((2, 2), 1.5), ("joy", "fear"))
