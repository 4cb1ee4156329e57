"""Quality figures of a multi-label workspace: MASI alpha and per-label kappa between people,
gold accuracy as exact match and Jaccard, the review of likely errors in sets, and the pages'
summary and report built from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labeling import Workspace
from labeling.store import labelsets
from tests.test_multilabel_rounds import LABELS, make_items


def two_people(tmp_path, db_url=None) -> Workspace:
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label", db_url=db_url)
    pool = make_items(60, 5, "p")
    gold = make_items(12, 6, "g")
    (tmp_path / "pool.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t, _s in pool)
    )
    ws.import_file(tmp_path / "pool.jsonl", id_field="id")
    (tmp_path / "gold.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": t, "labels": s}) + "\n" for i, t, s in gold)
    )
    ws.import_file(tmp_path / "gold.jsonl", id_field="id", label_field="labels", split="gold")
    toml = ws.root / "labelloop.toml"
    # Half the served items are gold checks, so that both people answer some.
    text = toml.read_text().replace("overlap = 1", "overlap = 2")
    toml.write_text(text.replace("gold_rate = 0.05", "gold_rate = 0.5"))
    root = ws.root
    ws.close()
    ws = Workspace.open(root, db_url=db_url)
    truth = {i: s for i, _t, s in pool + gold}
    ws.add_user("ann")
    ws.add_user("bob")
    for who in ("ann", "bob"):
        for _ in range(40):
            item = ws.next_item(who)
            if item is None:
                break
            names = list(truth[item.external_id])
            if who == "bob" and names:  # bob leaves out the last label of every set
                names = names[:-1]
            ws.annotate(item.item_id, who, names)
    return ws


@pytest.fixture(scope="module")
def answered_root(tmp_path_factory) -> Path:
    """``two_people`` on SQLite, built once for the module and closed; each test works on a
    copy of its own (``copy_of``). PostgreSQL tests build theirs."""
    folder = tmp_path_factory.mktemp("answered")
    two_people(folder).close()
    return folder / "ws"


def copy_of(root: Path, tmp_path: Path) -> Workspace:
    """A workspace of its own, the same as ``root`` (a closed SQLite workspace)."""
    return Workspace.open(shutil.copytree(root, tmp_path / "ws"))


def test_agreement_and_gold_figures_read_sets(answered_root, tmp_path, backend, db_url):
    opened = copy_of(answered_root, tmp_path) if db_url is None else two_people(tmp_path, db_url)
    with opened as ws:
        quality = ws.metrics()["quality"]
        agree = quality["agreement"]
        assert agree["alpha_distance"] == "masi"
        assert agree["items"] > 0 and agree["alpha"] is not None and agree["alpha"] < 1
        assert set(agree["per_label_kappa"]) == set(LABELS)
        assert agree["confusion"] is None
        assert agree["pairs"][0]["a"] == "ann" and agree["pairs"][0]["b"] == "bob"
        gold = quality["gold"]
        assert gold["n"] > 0
        assert gold["annotators"]["ann"]["accuracy"] == 1.0
        assert gold["annotators"]["bob"]["jaccard"] < 1.0
        html = ws.report_html()
        assert "Krippendorff" in html


def test_a_round_reviews_sets_out_of_sample(answered_root, tmp_path):
    with copy_of(answered_root, tmp_path) as ws:
        round_ = ws.retrain()
        assert round_.status == "succeeded", round_.error
        review = ws.review()
        assert review["round"] == round_.id
        assert review["likely_errors_checked"] > 0
        # bob leaves labels out: people disagree on sets, listed with both answers.
        assert review["counts"]["disagreement"] > 0
        for kind in ("disagreement", "model", "likely_error"):
            for entry in review["items"][kind]:
                labelsets.decode(entry["label"])
                assert all(labelsets.decode(a) <= set(LABELS) for a in entry["answers"].values())


def test_coverage_counts_sets_per_label(answered_root, tmp_path):
    with copy_of(answered_root, tmp_path) as ws:
        cover = ws.metrics()["coverage"]
        labelled = ws.status()["items"]["labelled"]
        assert cover["counts"]["human"] == labelled > 0
        with ws._read() as session:
            from labeling.store.answers import human_labels

            sets = [labelsets.decode(v) for v in human_labels(session, ws.labels).values()]
        for label in LABELS:
            expected = sum(label in names for names in sets) / cover["pool"]
            assert cover["per_class"][label]["human"] == round(expected, 6)


def test_status_json_of_a_multi_label_workspace_follows_the_schema(answered_root, tmp_path):
    import jsonschema
    from typer.testing import CliRunner

    from labeling.cli.main import app
    from tests.test_quality_rounds import SCHEMA

    with copy_of(answered_root, tmp_path) as ws:
        assert ws.retrain().status == "succeeded"
        root = ws.root
    runner = CliRunner()
    result = runner.invoke(app, ["status", "-w", str(root), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    jsonschema.validate(info, SCHEMA)
    assert info["task"] == "multi-label"
    assert info["quality"]["agreement"]["alpha_distance"] == "masi"
    assert info["quality"]["gold"]["jaccard"] is not None
    round_ = info["model"]["rounds"][-1]
    assert round_["subset_accuracy"] == round_["accuracy"]
    assert {"micro_f1", "hamming_loss", "jaccard"} <= set(round_)
    human = runner.invoke(app, ["status", "-w", str(root)])
    assert human.exit_code == 0 and "Krippendorff" in human.stdout
    report = runner.invoke(app, ["report", str(tmp_path / "r.html"), "-w", str(root)])
    assert report.exit_code == 0, report.output
    html = (tmp_path / "r.html").read_text()
    assert "Jaccard on gold checks" in html and "Exact match on gold checks" in html
    assert "Agreement per label" in html and "MASI distance" in html
