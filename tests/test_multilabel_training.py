"""Training a multi-label model: per-label fits in threads with the same result for any thread
count, out-of-fold probabilities kept for the review, and weak sets that train only the labels
some LF voted on."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling import Workspace
from labeling.rounds.featurizers import BASE_FEATURIZER
from labeling.rounds.multilabel import CalibratedLabel, fit_sets, platt_scaling, sigmoid
from labeling.rounds.pool import feature_blocks, load_pool
from labeling.rounds.representations import compose
from labeling.rounds.training import train_sets

LABELS = ("billing", "refund", "bug")
WORDS = {"billing": "invoice", "refund": "money back", "bug": "crash"}


def toy_sets(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features whose first three columns say each label (with noise), and the sets."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, 3)) < 0.4).astype(np.uint8)
    X = rng.normal(size=(n, 6)) + np.hstack([2.0 * Y, np.zeros((n, 3))])
    return X, Y


def coefficients(member: object) -> np.ndarray:
    assert isinstance(member, CalibratedLabel)
    return np.concatenate(
        [member.estimator.coef_.ravel(), member.estimator.intercept_, [member.slope or 0.0]]
    )


def test_the_fit_is_the_same_with_one_thread_or_several():
    X, Y = toy_sets(300, 0)
    one = fit_sets(X, Y, LABELS, workers=1)
    three = fit_sets(X, Y, LABELS, workers=3)
    np.testing.assert_array_equal(one.model.predict_proba(X), three.model.predict_proba(X))
    np.testing.assert_array_equal(one.out_of_fold, three.out_of_fold)


def test_out_of_fold_probabilities_are_calibrated_and_out_of_sample():
    X, Y = toy_sets(400, 1)
    fitted = fit_sets(X, Y, LABELS)
    assert fitted.out_of_fold.shape == Y.shape
    assert not np.isnan(fitted.out_of_fold).any()
    assert fitted.model.uncalibrated_ == [] and fitted.model.constant_ == []
    # Calibrated: the mean probability of each label is close to its frequency.
    assert fitted.out_of_fold.mean(axis=0) == pytest.approx(Y.mean(axis=0), abs=0.05)
    # Out of sample: a row's probability does not come from a fit that saw its own label,
    # so random labels give probabilities near the label's frequency, not near the labels.
    noise = (np.random.default_rng(2).random(Y.shape) < 0.5).astype(np.uint8)
    wide = np.hstack([X, np.eye(400)])  # a column per row: a fit can memorise its rows
    memorised = fit_sets(wide, noise, LABELS)
    in_sample = np.column_stack(
        [m.estimator.decision_function(wide) > 0 for m in memorised.model.members]
    )
    out_of_sample = memorised.out_of_fold >= 0.5
    assert (in_sample == noise).mean() > (out_of_sample == noise).mean() + 0.2


def test_a_constant_label_is_its_smoothed_frequency_without_a_fit():
    X, Y = toy_sets(100, 3)
    Y[:, 2] = 0
    fitted = fit_sets(X, Y, LABELS)
    assert fitted.model.constant_ == ["bug"]
    assert fitted.model.members[2] == pytest.approx(1 / 102)
    assert fitted.out_of_fold[:, 2] == pytest.approx(np.full(100, 1 / 102))


def test_platt_scaling_recovers_a_known_sigmoid():
    rng = np.random.default_rng(4)
    scores = rng.normal(scale=3.0, size=20_000)
    y = (rng.random(20_000) < sigmoid(0.7 * scores - 0.5)).astype(np.int64)
    slope, offset = platt_scaling(scores, y, None)
    assert slope == pytest.approx(0.7, abs=0.05) and offset == pytest.approx(-0.5, abs=0.07)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    row=st.integers(0, 59),
    label=st.integers(0, 2),
    value=st.integers(0, 1),
)
def test_a_label_a_row_does_not_know_never_changes_that_labels_classifier(seed, row, label, value):
    X, Y = toy_sets(60, seed)
    known = np.ones(Y.shape, dtype=bool)
    known[row, label] = False
    flipped = Y.copy()
    flipped[row, label] = value
    weights = np.random.default_rng(seed).uniform(0.2, 1.0, size=60)
    with_row = fit_sets(X, flipped, LABELS, weights, known=known)
    # The same fit as without the row at all, whatever the row's value for the label.
    others = np.delete(np.arange(60), row)
    without_row = fit_sets(X[others], Y[others], LABELS, weights[others])
    if isinstance(with_row.model.members[label], float):
        assert with_row.model.members[label] == without_row.model.members[label]
    else:
        np.testing.assert_array_equal(
            coefficients(with_row.model.members[label]),
            coefficients(without_row.model.members[label]),
        )
    assert np.isnan(with_row.out_of_fold[row, label])


def make_items(n: int, seed: int, prefix: str) -> list[tuple[str, str, list[str]]]:
    rng = random.Random(seed)
    items = []
    for k in range(n):
        chosen = [label for label in LABELS if rng.random() < 0.4]
        filler = ["hello", "today", "please", "order", "account", "team"]
        words = [WORDS[label] for label in chosen] + rng.sample(filler, 3)
        rng.shuffle(words)
        items.append((f"{prefix}{k}", f"{' '.join(words)} {prefix}{k}", chosen))
    return items


def test_a_rounds_weak_sets_train_only_the_labels_their_lfs_voted_on(tmp_path: Path):
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label")
    with ws:
        pool = make_items(160, 1, "p")
        rows = [
            {"id": i, "text": t, "labels": s if k < 40 else None}
            for k, (i, t, s) in enumerate(pool)
        ]
        (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        ws.import_file(tmp_path / "pool.jsonl", id_field="id", label_field="labels")
        # The LFs speak for "bug" only (present on "crash", absent on "hello").
        ws.add_rule({"kind": "regex", "name": "re_crash", "label": "bug", "pattern": "crash"})
        ws.add_rule(
            {"kind": "keyword", "name": "kw_hello", "label": "bug", "keywords": ["hello"]}
            | {"absent": True}
        )
        ws.apply_lfs()
        ws.fit_weak_labels()
        data = load_pool(ws)
        assert data.weak_voted and all(v == {"bug"} for v in data.weak_voted.values())
        blocks = feature_blocks(ws, data, lambda _stage: None)
        X = compose(BASE_FEATURIZER, blocks.rows)
        trained = train_sets(ws, data, X, "logreg")
        assert trained.n_human == 40 and trained.n_weak > 0
        assert trained.known is not None
        assert trained.known[:40].all()  # a person's set says every label
        assert trained.known[40:, 2].all() and not trained.known[40:, :2].any()
        # "billing" and "refund" learn from people's sets alone, as if no weak set existed.
        alone = fit_sets(X[trained.human_rows], trained.human_indicator, LABELS)
        for k in (0, 1):
            np.testing.assert_array_equal(
                coefficients(trained.model.members[k]), coefficients(alone.model.members[k])
            )
        assert not np.array_equal(
            coefficients(trained.model.members[2]), coefficients(alone.model.members[2])
        )
        round_ = ws.retrain()
        assert round_.status == "succeeded", round_.error
        assert (round_.n_human, round_.n_weak) == (40, trained.n_weak)
