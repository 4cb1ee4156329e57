"""The simulation engine on real YouTube comments: well-formed curves and honest summaries."""

from __future__ import annotations

import csv
from importlib import util

import numpy as np
import pytest

from labeling.errors import BadInput
from labeling.rounds.learning_curves import label_efficiency, labels_to_target, write_chart
from labeling.rounds.simulate import simulate
from strategies import UnknownStrategyError
from tests.conftest import YOUTUBE


def _read(name: str, limit: int) -> tuple[list[str], list[str]]:
    """CONTENT and CLASS of the first ``limit`` rows (the BOM in cells stripped)."""
    with (YOUTUBE / name).open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))[:limit]
    return [r["CONTENT"].replace("\ufeff", "") for r in rows], [r["CLASS"] for r in rows]


@pytest.fixture(scope="module")
def youtube_slice():
    if not (YOUTUBE / "Youtube05-Shakira.csv").exists():
        pytest.fail("expected the YouTube files in ../shared/datasets/youtube")
    psy, katy = _read("Youtube01-Psy.csv", 150), _read("Youtube02-KatyPerry.csv", 150)
    test = _read("Youtube05-Shakira.csv", 120)
    return psy[0] + katy[0], psy[1] + katy[1], test[0], test[1]


@pytest.fixture(scope="module")
def report(youtube_slice):
    texts, labels, test_texts, test_labels = youtube_slice
    return simulate(
        texts,
        labels,
        test_texts=test_texts,
        test_labels=test_labels,
        label_names=["0", "1"],
        strategies=["random", "least_confidence", "diverse_uncertainty"],
        budget=40,
        batch=10,
        seeds=2,
    )


def test_report_has_the_contract_shape(report):
    full = report["full_supervision"]
    assert set(full) == {"accuracy", "macro_f1", "featurizer"}
    assert 0.7 < full["macro_f1"] <= 1 and 0.7 < full["accuracy"] <= 1
    assert list(report["strategies"]) == ["random", "least_confidence", "diverse_uncertainty"]
    for summary in report["strategies"].values():
        assert [p["labels"] for p in summary["curve"]] == [10, 20, 30, 40]
        for point in summary["curve"]:
            assert {"labels", "accuracy", "macro_f1"} <= set(point)
            assert 0 <= point["accuracy"] <= 1 and 0 <= point["macro_f1"] <= 1
        assert summary["labels_to_95pct"] is None or isinstance(summary["labels_to_95pct"], int)
        assert len(summary["labels_to_95pct_per_seed"]) == 2


def test_labels_to_95pct_is_the_first_point_at_the_target(report):
    target = 0.95 * report["full_supervision"]["macro_f1"]
    assert report["target_macro_f1"] == pytest.approx(target, abs=1e-4)
    for summary in report["strategies"].values():
        reached = [p["labels"] for p in summary["curve"] if p["macro_f1"] >= target]
        assert summary["labels_to_95pct"] == (reached[0] if reached else None)


def test_models_learn_from_the_labels(report):
    # Predicting one class scores macro-F1 <= 0.5; 40 labels must do clearly better, and the
    # uncertainty strategies must beat random early (spam is easy to find with a model).
    for summary in report["strategies"].values():
        assert summary["curve"][-1]["macro_f1"] > 0.6
    early = {name: s["curve"][1]["macro_f1"] for name, s in report["strategies"].items()}
    assert early["diverse_uncertainty"] > early["random"]


def test_label_efficiency_is_relative_to_random(report):
    ratios = report["label_efficiency"]
    assert ratios == label_efficiency(report["strategies"])
    if report["strategies"]["random"]["labels_to_95pct"]:
        assert ratios["random"] == 1.0


def test_labels_to_target_reads_the_curve():
    curve = [{"labels": 10, "macro_f1": 0.5}, {"labels": 20, "macro_f1": 0.91}]
    assert labels_to_target(curve, 0.9) == 20
    assert labels_to_target(curve, 0.95) is None


def test_held_out_split_and_weak_labels(youtube_slice):
    texts, labels, _, _ = youtube_slice
    # Weak labels: the truth on a third of the rows (confident), noise elsewhere (not used).
    truth = np.array([int(v) for v in labels])
    weak = np.where(np.arange(len(truth)) % 3 == 0, truth, -1)
    confidence = np.where(weak >= 0, 0.9, 0.0)
    result = simulate(
        texts,
        labels,
        test_size=0.3,
        strategies=["margin"],
        budget=20,
        batch=10,
        seeds=1,
        featurizer="hashing",
        weak_labels=weak,
        weak_confidence=confidence,
    )
    assert result["settings"]["test"] == 90 and result["settings"]["pool"] == 210
    assert 0 < result["settings"]["weak_labels_used"] < 210
    # Weak labels give a model from the first round on, so the first point is above chance.
    assert result["strategies"]["margin"]["curve"][0]["macro_f1"] > 0.6


def test_bad_settings_are_refused(youtube_slice):
    texts, labels, test_texts, test_labels = youtube_slice
    common = {"test_texts": test_texts, "test_labels": test_labels}
    with pytest.raises(UnknownStrategyError, match="known:"):
        simulate(texts, labels, strategies=["psychic"], **common)
    with pytest.raises(BadInput, match="budget must be at least 1"):
        simulate(texts, labels, budget=0, **common)
    with pytest.raises(BadInput, match="got 300 texts but 2 labels"):
        simulate(texts, labels[:2], **common)
    with pytest.raises(BadInput, match="not in the label list"):
        simulate(texts, labels, label_names=["0", "2"], **common)
    with pytest.raises(BadInput, match="one weak label and confidence per pool row"):
        simulate(texts, labels, weak_labels=[0, 1], **common)


def test_chart_as_html(report, tmp_path):
    path = write_chart(report, tmp_path / "curves.html")
    page = path.read_text()
    assert "vega" in page.lower() and "least_confidence" in page


def test_chart_format_is_checked(report, tmp_path):
    with pytest.raises(BadInput, match=r"\.html or \.png"):
        write_chart(report, tmp_path / "curves.pdf")
    if util.find_spec("vl_convert") is None:
        with pytest.raises(BadInput, match="vl-convert-python"):
            write_chart(report, tmp_path / "curves.png")
    else:
        assert write_chart(report, tmp_path / "curves.png").stat().st_size > 0
