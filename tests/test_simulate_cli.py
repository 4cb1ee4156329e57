"""``labelloop simulate`` on a real labelled file: the JSON contract and clear errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from labeling.cli.main import app
from tests.conftest import YOUTUBE

runner = CliRunner()
PSY = YOUTUBE / "Youtube01-Psy.csv"
SHAKIRA = YOUTUBE / "Youtube05-Shakira.csv"


def test_simulate_json_has_well_formed_curves(tmp_path):
    chart = tmp_path / "curves.html"
    done = runner.invoke(
        app,
        [
            "simulate", str(PSY), "--text-field", "CONTENT", "--label-field", "CLASS",
            "--test", str(SHAKIRA), "--strategy", "margin", "--budget", "40", "--batch", "10",
            "--seeds", "2", "--chart", str(chart), "--json",
        ],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    full = report["full_supervision"]
    assert 0.5 < full["accuracy"] <= 1 and 0.5 < full["macro_f1"] <= 1
    assert set(report["strategies"]) == {"random", "margin"}
    for result in report["strategies"].values():
        curve = result["curve"]
        assert [p["labels"] for p in curve] == [10, 20, 30, 40]
        assert all(0 <= p["accuracy"] <= 1 and 0 <= p["macro_f1"] <= 1 for p in curve)
        target = 0.95 * full["macro_f1"]
        first = next((p["labels"] for p in curve if p["macro_f1"] >= target - 1e-9), None)
        assert result["labels_to_95pct"] == first
    assert chart.is_file() and "vega" in chart.read_text().lower()


def test_simulate_names_a_missing_field():
    done = runner.invoke(
        app, ["simulate", str(PSY), "--text-field", "BODY", "--label-field", "CLASS"]
    )
    assert done.exit_code == 2
    assert "BODY" in done.stderr and "--text-field" in done.stderr


def test_simulate_refuses_an_unknown_strategy():
    done = runner.invoke(
        app,
        ["simulate", str(PSY), "--text-field", "CONTENT", "--label-field", "CLASS",
         "--strategy", "psychic", "--budget", "20", "--seeds", "1"],
    )  # fmt: skip
    assert done.exit_code in (1, 2)
    assert "psychic" in done.stderr


def test_simulate_with_lfs_adds_weak_labels(tmp_path):
    from tests.test_lfs import EXAMPLE, _named

    pool = _named(PSY, tmp_path / "psy.csv")
    test = _named(SHAKIRA, tmp_path / "shakira.csv")
    done = runner.invoke(
        app,
        [
            "simulate", str(pool), "--text-field", "CONTENT", "--label-field", "CLASS",
            "--test", str(test), "--lfs", str(EXAMPLE), "--strategy", "margin",
            "--budget", "20", "--batch", "10", "--seeds", "1", "--json",
        ],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    weak = report["weak_supervision"]
    assert weak["lfs"] == 11 and weak["model"] == "snorkel" and 0.3 < weak["coverage"] <= 1
    assert report["settings"]["weak_labels_used"] > 0
