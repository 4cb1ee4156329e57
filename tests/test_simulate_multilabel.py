"""``labelloop simulate --task multi-label`` on a small generated file of label sets: the JSON
document, the figures (set_metrics' own), labels_to_95pct on each metric, and the refusals."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from labeling.cli.main import app
from labeling.quality.multilabel import indicator, set_metrics
from labeling.rounds.learning_curves import labels_to_target, summarise_runs
from labeling.rounds.multilabel import train_multilabel
from labeling.rounds.simulate_features import featurize_views
from labeling.rounds.simulate_sets import curve_figures, read_label_sets, simulate_sets

runner = CliRunner()
LABELS = ["billing", "bug", "praise", "refund"]
FIGURES = {"micro_f1", "macro_f1", "hamming_loss", "subset_accuracy", "accuracy"}


def _generated(n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """Texts whose words say their labels (6 words per label) among filler words; the empty
    set on about one row in six."""
    rng = random.Random(seed)
    words = {label: [f"{label}{i}" for i in range(6)] for label in LABELS}
    filler = "the a my is it please thanks today again still".split()
    texts, sets = [], []
    for _ in range(n):
        chosen = [label for label in LABELS if rng.random() < 0.35]
        tokens = [rng.choice(words[label]) for label in chosen for _ in range(3)]
        tokens += rng.choices(filler, k=5)
        rng.shuffle(tokens)
        texts.append(" ".join(tokens))
        sets.append(chosen)
    return texts, sets


def _write_csv(path: Path, texts: list[str], sets: list[list[str]], sep: str = "|") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "tags"])
        for text, names in zip(texts, sets, strict=True):
            writer.writerow([text, sep.join(names) if names else "[]"])
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("sets")
    pool = _write_csv(folder / "pool.csv", *_generated(120, 1))
    test = _write_csv(folder / "test.csv", *_generated(60, 2))
    return pool, test


def _simulate(files, *options: str) -> dict:
    pool, test = files
    done = runner.invoke(
        app,
        [
            "simulate", str(pool), "--test", str(test), "--text-field", "text",
            "--label-field", "tags", "--task", "multi-label", "--featurizer", "tfidf",
            "--budget", "30", "--batch", "10", "--seeds", "2", "--json", *options,
        ],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


@pytest.mark.parametrize(("metric", "key"), [("macro-f1", "macro_f1"), ("micro-f1", "micro_f1")])
def test_simulate_reports_set_figures_and_reads_the_target_on_the_chosen_metric(files, metric, key):
    report = _simulate(files, "--metric", metric, "--strategy", "mean_label_uncertainty")
    assert report["task"] == "multi-label" and report["metric"] == metric
    assert report["settings"]["labels"] == LABELS
    full = report["full_supervision"]
    assert set(full) >= FIGURES and 0.5 < full[key] <= 1
    target = report[f"target_{key}"]
    assert target == pytest.approx(0.95 * full[key], abs=1e-4)
    assert list(report["strategies"]) == ["random", "mean_label_uncertainty"]
    for result in report["strategies"].values():
        curve = result["curve"]
        assert [p["labels"] for p in curve] == [10, 20, 30]
        for point in curve:
            assert set(point) >= FIGURES
            assert point["accuracy"] == point["subset_accuracy"]
            assert all(0 <= point[name] <= 1 for name in FIGURES)
        first = next((p["labels"] for p in curve if p[key] >= target), None)
        assert result["labels_to_95pct"] == first


def test_every_set_strategy_runs_from_a_cold_start_and_the_chart_draws_the_metric(files, tmp_path):
    strategies = ["max_label_uncertainty", "cardinality_inconsistency", "qbc"]
    options = [part for name in strategies for part in ("--strategy", name)]
    chart = tmp_path / "curves.html"
    report = _simulate(
        files, "--seeds", "1", "--metric", "micro-f1", "--chart", str(chart), *options
    )
    assert list(report["strategies"]) == ["random", *strategies]
    assert all(len(r["curve"]) == 3 for r in report["strategies"].values())
    assert "micro_f1" in chart.read_text()


def test_full_supervision_figures_are_set_metrics_of_the_same_predictions():
    texts, sets = _generated(80, 3)
    test_texts, test_sets = _generated(40, 4)
    report = simulate_sets(
        texts,
        sets,
        labels=LABELS,
        test_texts=test_texts,
        test_sets=test_sets,
        strategies=["random"],
        budget=20,
        batch=10,
        seeds=1,
        featurizer="tfidf",
    )
    views = featurize_views("tfidf", texts, test_texts)
    model = train_multilabel(views.pool["tfidf"], indicator(sets, LABELS), tuple(LABELS), seed=0)
    expected = set_metrics(indicator(test_sets, LABELS), model.predict(views.test["tfidf"]), LABELS)
    full = report["full_supervision"]
    for name in ("micro_f1", "macro_f1", "hamming_loss", "subset_accuracy"):
        assert full[name] == expected[name]


def test_curve_figures_are_set_metrics_figures():
    rng = np.random.default_rng(0)
    Y_true = (rng.random((30, 4)) < 0.4).astype(np.uint8)
    Y_pred = (rng.random((30, 4)) < 0.4).astype(np.uint8)
    point = curve_figures(Y_true, Y_pred, LABELS)
    figures = set_metrics(Y_true, Y_pred, LABELS)
    assert point == {
        "micro_f1": figures["micro_f1"],
        "macro_f1": figures["macro_f1"],
        "hamming_loss": figures["hamming_loss"],
        "subset_accuracy": figures["subset_accuracy"],
        "accuracy": figures["subset_accuracy"],
    }


def test_labels_to_target_reads_the_metric_it_is_given():
    first = [{"labels": 10, "macro_f1": 0.2, "micro_f1": 0.6}, {"labels": 20, "macro_f1": 0.5}]
    second = [{"labels": 10, "macro_f1": 0.4, "micro_f1": 0.8}, {"labels": 20, "macro_f1": 0.5}]
    first[1]["micro_f1"], second[1]["micro_f1"] = 0.7, 0.9
    runs = [first, second]
    macro = summarise_runs(runs, 0.45)
    micro = summarise_runs(runs, 0.7, metric="micro_f1")
    assert macro["labels_to_95pct"] == 20 and macro["labels_to_95pct_per_seed"] == [20, 20]
    assert micro["labels_to_95pct"] == 10 and micro["labels_to_95pct_per_seed"] == [20, 10]
    assert micro["curve"][0]["micro_f1"] == 0.7 and micro["curve"][0]["micro_f1_std"] == 0.1
    assert labels_to_target(micro["curve"], 0.75, "micro_f1") == 20


def test_jsonl_lists_are_read_as_import_reads_them(tmp_path):
    path = tmp_path / "sets.jsonl"
    path.write_text(
        '{"text": "refund please", "tags": ["refund", "billing"]}\n'
        '{"text": "all good", "tags": []}\n'
        '{"text": "crash", "tags": "bug"}\n'
    )
    texts, sets = read_label_sets(path, text_field="text", label_field="tags")
    assert texts == ["refund please", "all good", "crash"]
    assert sets == [["refund", "billing"], [], ["bug"]]


def _refusal(tmp_path, cell: str, *options: str):
    texts, sets = _generated(20, 5)
    path = _write_csv(tmp_path / "data.csv", texts, sets)
    lines = path.read_text().splitlines()  # the third data row, which the reader calls line 3
    lines[3] = f'only text here,"{cell}"' if cell else "only text here,"
    path.write_text("\n".join(lines) + "\n")
    return runner.invoke(
        app,
        ["simulate", str(path), "--text-field", "text", "--label-field", "tags",
         "--task", "multi-label", "--budget", "10", "--seeds", "1", *options],
    )  # fmt: skip


def test_an_unknown_label_is_refused_with_the_file_row_and_field(tmp_path):
    done = _refusal(tmp_path, "billing|upsell", "--labels", ",".join(LABELS))
    assert done.exit_code == 2
    assert "data.csv" in done.stderr and "line 3" in done.stderr and "'tags'" in done.stderr
    assert "'upsell'" in done.stderr


def test_a_malformed_cell_is_refused_with_the_file_row_and_field(tmp_path):
    done = _refusal(tmp_path, "[bug, refund]")
    assert done.exit_code == 2
    assert "line 3" in done.stderr and "'tags'" in done.stderr and "JSON list" in done.stderr


def test_an_empty_label_cell_is_refused_since_every_row_needs_its_set(tmp_path):
    done = _refusal(tmp_path, "")
    assert done.exit_code == 2
    assert "line 3" in done.stderr and "empty" in done.stderr and "[]" in done.stderr


def test_a_test_file_label_the_pool_never_has_is_refused(files, tmp_path):
    pool, _ = files
    test = _write_csv(tmp_path / "test.csv", ["refund now"], [["upsell"]])
    done = runner.invoke(
        app,
        ["simulate", str(pool), "--test", str(test), "--text-field", "text",
         "--label-field", "tags", "--task", "multi-label", "--seeds", "1"],
    )  # fmt: skip
    assert done.exit_code == 2 and "test.csv" in done.stderr and "'upsell'" in done.stderr


@pytest.fixture
def single_label_file(tmp_path) -> Path:
    path = tmp_path / "single.csv"
    texts, sets = _generated(40, 6)
    rows = [[t, s[0] if s else "none"] for t, s in zip(texts, sets, strict=True)]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([["text", "label"], *rows])
    return path


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--strategy", "cardinality_inconsistency"], "cardinality_inconsistency"),
        (["--metric", "micro-f1"], "--metric"),
        (["--labels", "a,b"], "--labels"),
    ],
)
def test_single_label_simulation_refuses_set_only_options(single_label_file, options, named):
    done = runner.invoke(
        app,
        ["simulate", str(single_label_file), "--text-field", "text", "--label-field", "label",
         "--seeds", "1", "--budget", "10", *options],
    )  # fmt: skip
    assert done.exit_code == 2
    assert named in done.stderr


def test_multilabel_simulation_refuses_an_lf_file(files, tmp_path):
    pool, _ = files
    lfs = tmp_path / "lfs.py"
    lfs.write_text("RULES = []\n")
    done = runner.invoke(
        app,
        ["simulate", str(pool), "--text-field", "text", "--label-field", "tags",
         "--task", "multi-label", "--lfs", str(lfs)],
    )  # fmt: skip
    assert done.exit_code == 2 and "--lfs" in done.stderr
