"""Quality on real data: planted label errors, drift, the stopping hint, status JSON and report.

YouTube comments (files 01-04 the pool, 05 gold) on the workspace's own SQLite file; the
metrics' PostgreSQL path is covered by tests/test_quality.py.
"""

from __future__ import annotations

import csv
import html
import json
import random
import re
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from labeling import Workspace, figures
from labeling.cli.main import app
from labeling.config import write_config
from labeling.data.drift import class_mix as drift_mix
from labeling.quality.label_errors import REVIEW_FILE
from labeling.quality.review import review_items
from labeling.quality.stopping import stopping
from labeling.quality.summary import summary
from labeling.store.models import ImportBatch, Item
from tests.browser import chromium, chromium_path
from tests.conftest import REPO, YOUTUBE

FILES = sorted(YOUTUBE.glob("Youtube0*.csv"))
DEMO_POOL = REPO / "datasets" / "demo" / "pool.csv"
SCHEMA = json.loads((REPO / "docs" / "status.schema.json").read_text())
runner = CliRunner()


def _rows(paths: list[Path]) -> list[dict[str, str]]:
    seen: set[str] = set()
    rows = []
    for path in paths:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["COMMENT_ID"] in seen:
                    continue
                seen.add(row["COMMENT_ID"])
                label = "spam" if row["CLASS"].strip() == "1" else "ham"
                rows.append({"id": row["COMMENT_ID"], "text": row["CONTENT"], "label": label})
    return rows


def _write(path: Path, rows: list[dict[str, str]], *, labels: bool = True) -> Path:
    fields = ["id", "text", "label"] if labels else ["id", "text"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _configure(ws: Workspace, **changes) -> None:
    ws.config = replace(ws.config, **changes)
    write_config(ws.root, ws.config)


def test_cleanlab_finds_planted_label_errors(tmp_path):
    rows = _rows(FILES[:4])
    rng = random.Random(7)
    flipped = set(rng.sample(range(len(rows)), len(rows) // 20))  # 5%
    for k in flipped:
        rows[k] = rows[k] | {"label": "ham" if rows[k]["label"] == "spam" else "spam"}
    ws = Workspace.create(tmp_path / "yt", labels=["ham", "spam"])
    ws.import_file(
        _write(tmp_path / "flipped.csv", rows),
        id_field="id",
        label_field="label",
        allow_duplicate_texts=True,
    )
    done = ws.retrain()
    assert done.status == "succeeded"
    found = review_items(ws, limit=None)
    flagged = {e["id"] for e in found["items"]["likely_error"]}
    planted = {rows[k]["id"] for k in flipped}
    hits = flagged & planted
    recall = len(hits) / len(planted)
    precision = len(hits) / len(flagged)
    print(
        f"planted {len(planted)}, flagged {len(flagged)}: recall {recall:.2f}, "
        f"precision {precision:.2f}"
    )
    assert recall >= 0.5
    assert precision >= 0.3
    # The probabilities were out-of-sample: the round stored them per labelled item.
    review = json.loads((ws.root / done.model_path / REVIEW_FILE).read_text())
    assert len(review["items"]) == len(rows)
    # A relabelled item leaves the list (its label is no longer the one checked).
    ws.close()


def _drift_ws(tmp_path: Path, **config) -> tuple[Workspace, list[dict[str, str]]]:
    rows = _rows(FILES[:4])
    random.Random(3).shuffle(rows)
    ws = Workspace.create(tmp_path / "drift", labels=["ham", "spam"])
    _configure(ws, **config)
    ws.import_file(
        _write(tmp_path / "first.csv", rows[:800]),
        id_field="id",
        label_field="label",
        allow_duplicate_texts=True,
    )
    ws.retrain()
    return ws, rows


def test_the_class_mix_of_label_sets_counts_each_label_given():
    # A multi-label item gives each of its labels; the mix is over all the labels given.
    assert drift_mix([["a", "b"], ["a"], []], ("a", "b", "c")) == {
        "a": round(2 / 3, 6),
        "b": round(1 / 3, 6),
        "c": 0.0,
    }
    assert drift_mix(["a", "a", "b", "a"], ("a", "b")) == {"a": 0.75, "b": 0.25}
    assert drift_mix([], ("a",)) == {"a": 0.0}


def test_the_first_push_is_the_first_import_even_when_checked_after_the_second(tmp_path):
    # The API checks pushes in a helper process, after the reply: a second push can land
    # before the first one's check runs. The first is still the store's first pool import.
    ws = Workspace.create(tmp_path / "pushes", labels=["ham", "spam"])
    rows = _rows(FILES[:1])[:60]
    pushed = [
        ws.push_items([{"id": r["id"], "text": r["text"]} for r in part], drift_check=False)
        for part in (rows[:30], rows[30:])
    ]
    first, second = (report.batch_id for report in pushed)
    assert first is not None and second is not None and first < second
    assert ws.check_drift(second)["auc"] is not None
    found = ws.check_drift(first)
    assert found["auc"] is None and found["note"].startswith("the first pool import")
    ws.close()


def test_drift_fires_on_another_domain_and_not_on_the_same_one(tmp_path, monkeypatch):
    ws, rows = _drift_ws(tmp_path)
    same = ws.import_file(
        _write(tmp_path / "more.csv", rows[800:], labels=False),
        id_field="id",
        allow_duplicate_texts=True,
    )
    assert same.drift is not None and same.drift["auc"] is not None
    assert same.drift["reference"] == "labelled"
    assert not same.drift["drifted"], same.drift
    assert same.drift["auc"] < 0.75
    other = ws.import_file(DEMO_POOL, id_field="id", allow_duplicate_texts=True)
    assert other.drift is not None and other.drift["drifted"], other.drift
    assert other.drift["auc"] >= ws.config.drift_threshold
    assert set(other.drift["predicted_mix"]) == {"ham", "spam"}
    # The mix is the promoted round's own predictions on the new items (all of them: the
    # import is smaller than the check's sample), the ones `predict` and the API give.
    with DEMO_POOL.open(encoding="utf-8", newline="") as handle:
        demo_texts = [row["text"] for row in csv.DictReader(handle)]
    assert other.drift["sampled_items"] == len(demo_texts)
    predicted = ws.predict_texts(demo_texts).predicted
    share = {k: round(predicted.count(k) / len(predicted), 6) for k in ("ham", "spam")}
    assert other.drift["predicted_mix"] == share
    assert other.drift["action"] == "warn" and "round" not in other.drift
    reports = summary(ws)["drift"]
    assert [r["drifted"] for r in reports] == [False, True]
    # The check that passed is listed too, with what it compared, its AUC and the threshold.
    passed = figures.drift_check(reports[0])
    assert passed.startswith(f"Import {reports[0]['batch']} (more.csv): no drift, AUC ")
    assert f"< threshold {ws.config.drift_threshold}" in passed and "against" in passed
    assert "drift, AUC" in figures.drift_check(reports[1])
    text = runner.invoke(app, ["status", "-w", str(ws.root)]).stdout
    assert passed in text

    assert f"<div class='pass'>{html.escape(passed)}</div>" in ws.report_html()
    from streamlit.testing.v1 import AppTest

    ws.add_user("eng", role="engineer")
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    at = AppTest.from_string(
        "from labeling.ui.views import metrics\nmetrics.render()\n", default_timeout=60
    )
    at.session_state["ll_user"] = "eng"
    at.run()
    assert not at.exception, at.exception
    assert [e.label for e in at.expander] == ["Drift checks that found nothing (1)"]
    assert passed in [c.value for c in at.caption]
    assert any("drift, AUC" in w.value for w in at.warning)
    ws.close()


def test_drift_can_queue_a_round_and_serve_the_new_items_first(tmp_path):
    ws, rows = _drift_ws(tmp_path, drift_action="retrain", drift_priority=3, gold_rate=0.0)
    ws.import_file(
        _write(tmp_path / "more.csv", rows[800:], labels=False),
        id_field="id",
        allow_duplicate_texts=True,
    )
    report = ws.import_file(DEMO_POOL, id_field="id", allow_duplicate_texts=True)
    assert report.drift["drifted"] and report.drift["round"] is not None
    queued = ws.get_round(report.drift["round"])
    assert queued.status == "queued" and queued.trigger == "drift"
    ws.add_user("ann")
    demo_ids = {row["id"] for row in csv.DictReader(DEMO_POOL.open())}
    served = []
    for _ in range(5):
        item = ws.next_item("ann")
        served.append(item.external_id in demo_ids)
        ws.annotate(item.item_id, "ann", "ham")
    # The first three (the priority) come from the drifted import; then the model's order.
    assert served[:3] == [True, True, True]
    with Session(ws.engine) as session:
        batch = session.get(ImportBatch, report.batch_id)
        assert batch.priority_left == 0
    ws.close()


def test_stopping_hint_on_a_simulated_run(tmp_path):
    rows = _rows(FILES[:4])
    truth = {row["id"]: row["label"] for row in rows}
    ws = Workspace.create(tmp_path / "stop", labels=["ham", "spam"])
    _configure(ws, gold_rate=0.0, stop_set_size=400)
    ws.import_file(
        _write(tmp_path / "pool.csv", rows, labels=False), id_field="id", allow_duplicate_texts=True
    )
    ws.add_user("ann")

    def label(n: int) -> None:
        for _ in range(n):
            item = ws.next_item("ann")
            ws.annotate(item.item_id, "ann", truth[item.external_id])

    label(20)
    ws.retrain()
    early = stopping(ws)
    assert early["kappas"] == [] and not early["stop"]
    label(60)
    ws.retrain()
    after_two = stopping(ws)
    assert len(after_two["kappas"]) == 1 and not after_two["stop"]
    assert after_two["kappas"][0]["n"] == 400
    # The model has settled: three more rounds on unchanged labels predict the same.
    for _ in range(3):
        ws.retrain()
    final = stopping(ws)
    assert [k["kappa"] for k in final["kappas"][-3:]] == [1.0, 1.0, 1.0]
    assert final["stop"] and final["stable_runs"] >= 3
    assert "unlikely to change" in final["message"]
    ws.close()


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """Two annotators with overlap 2, gold checks, LF votes and two rounds."""
    tmp_path = tmp_path_factory.mktemp("busy")
    rows = _rows(FILES[:2])
    truth = {row["id"]: row["label"] for row in rows}
    ws = Workspace.create(tmp_path / "ws", labels=["ham", "spam"], name="busy <b>team</b>")
    _configure(ws, overlap=2, gold_rate=0.2)
    ws.import_file(
        _write(tmp_path / "pool.csv", rows, labels=False), id_field="id", allow_duplicate_texts=True
    )
    gold = _rows(FILES[4:])[:60]
    ws.import_file(
        _write(tmp_path / "gold.csv", gold),
        id_field="id",
        label_field="label",
        split="gold",
        allow_duplicate_texts=True,
    )
    truth |= {row["id"]: row["label"] for row in gold}
    ws.add_rule(
        {"name": "kw", "kind": "keyword", "label": "spam", "keywords": ["check out", "subscribe"]},
    )
    ws.apply_lfs()
    ws.fit_weak_labels()
    ws.add_user("ann")
    ws.add_user("bob")
    ws.add_user("lea", role="lead")
    noisy = random.Random(1)
    for round_number in range(2):
        for name in ("ann", "bob"):
            for _ in range(40):
                item = ws.next_item(name)
                answer = truth[item.external_id]
                if name == "bob" and noisy.random() < 0.15:
                    answer = "ham" if answer == "spam" else "spam"
                ws.annotate(item.item_id, name, answer, duration_ms=1500 + 100 * round_number)
        ws.retrain()
    yield ws
    ws.close()


def test_status_json_follows_the_documented_schema(busy):
    result = runner.invoke(app, ["status", "-w", str(busy.root), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    jsonschema.validate(info, SCHEMA)
    assert info["quality"]["agreement"]["pairs"][0]["n"] > 0
    assert info["quality"]["gold"]["n"] > 0
    assert info["coverage"]["lf"] > 0 and len(info["coverage"]["rounds"]) == 2
    assert len(info["model"]["learning_curve"]) == 2
    assert set(info["throughput"]) == {"ann", "bob"}
    human = runner.invoke(app, ["status", "-w", str(busy.root)])
    assert "Krippendorff" in human.stdout and "stopping:" in human.stdout


def test_every_documented_key_is_in_the_docs():
    text = (REPO / "docs" / "status.md").read_text()

    def keys(schema: dict, prefix: str = "") -> list[str]:
        found = []
        for name, sub in schema.get("properties", {}).items():
            found.append(name)
            found += keys(sub, f"{prefix}{name}.")
            if "items" in sub:
                found += keys(sub["items"], f"{prefix}{name}[].")
        return found

    missing = sorted({k for k in keys(SCHEMA) if f"`{k}`" not in text})
    assert not missing, f"docs/status.md does not explain: {missing}"


def test_report_is_self_contained_html(busy, tmp_path):
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(out), "-w", str(busy.root)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("<!doctype html>")
    assert text.count("<svg") >= 4  # learning curve, coverage, agreement, confusion, ...
    # Axis ticks and labels drawn in the charts are rounded ("35", not "35.000000").
    drawn = re.findall(r"<text[^>]*>([^<]*)</text>", text)
    assert drawn and not [t for t in drawn if re.search(r"\d\.\d{4,}", t)]
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org", "")
    assert "busy &lt;b&gt;team&lt;/b&gt;" in text and "<b>team</b>" not in text
    bad = runner.invoke(app, ["report", str(tmp_path / "report.txt"), "-w", str(busy.root)])
    assert bad.exit_code == 2 and "ending in .html" in bad.stderr


def test_metrics_and_review_pages(busy, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(busy.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)

    def page(module: str, user: str) -> AppTest:
        script = f"from labeling.ui.views import common, {module}\n{module}.render()\n"
        at = AppTest.from_string(script, default_timeout=60)
        at.session_state["ll_user"] = user
        return at.run()

    at = page("metrics", "lea")
    assert not at.exception, at.exception
    assert [m.label for m in at.metric][:2] == ["Labelled by people", "Covered, people or weak"]
    assert len(at.get("vega_lite_chart")) >= 4
    annotator = page("metrics", "ann")
    assert any("engineer" in e.value for e in annotator.error)

    at = page("review", "lea")
    assert not at.exception, at.exception
    disagreements = review_items(busy)["items"]["disagreement"]
    assert disagreements
    first = disagreements[0]
    choice = "spam" if first["label"] == "ham" else "ham"
    at.button(key=f"ll_decide_{first['item_id']}_{choice}").click().run()
    assert not at.exception
    with Session(busy.engine) as session:
        from labeling.store.answers import human_labels

        assert human_labels(session, busy.labels)[first["item_id"]] == choice
        assert session.exec(select(Item).where(Item.id == first["item_id"])).one()
    left = review_items(busy)["items"]["disagreement"]
    assert first["item_id"] not in {e["item_id"] for e in left}
    assert page("review", "ann").error  # annotators cannot review


@pytest.mark.skipif(chromium_path() is None, reason="needs Debian's chromium (.ci/setup)")
def test_report_fits_a_phone_screen(busy, tmp_path):
    """At 375 px wide the report does not scroll sideways: cards wrap, charts shrink, wide
    tables scroll inside their own box."""
    out = tmp_path / "report.html"
    assert runner.invoke(app, ["report", str(out), "-w", str(busy.root)]).exit_code == 0
    assert "name='viewport'" in out.read_text()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 812})
        page.goto(out.as_uri())
        page.screenshot(path=str(tmp_path / "report-375.png"), full_page=True)
        widths = page.evaluate(
            """() => ({
                page: document.documentElement.scrollWidth,
                body: document.body.scrollWidth,
                view: window.innerWidth,
                charts: [...document.querySelectorAll('svg')].map(
                    s => s.getBoundingClientRect().right),
                cards: [...document.querySelectorAll('.card')].map(
                    c => c.getBoundingClientRect().right),
            })"""
        )
        assert widths["view"] == 375
        assert widths["page"] <= 375 and widths["body"] <= 375, widths
        assert len(widths["charts"]) >= 4 and max(widths["charts"]) <= 375, widths
        assert max(widths["cards"]) <= 375, widths
        page.close()
