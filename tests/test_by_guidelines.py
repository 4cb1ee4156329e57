"""Gold accuracy and agreement per guidelines version: handmade answers before and after an
edit, recounted from the stored rows by hand; the same figures in status --json (schema), the
HTML report and the Metrics page; and the one gold-check rule every gold figure uses.

Runs on SQLite and PostgreSQL (``--backend``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from labeling import Workspace, figures
from labeling.cli.main import app
from labeling.config import write_config
from labeling.quality.agreement import krippendorff_alpha
from labeling.quality.by_guidelines import by_guidelines
from labeling.quality.multilabel_agreement import krippendorff_alpha_sets
from labeling.quality.summary import summary
from labeling.store.models import Annotation, Item

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "docs" / "status.schema.json").read_text()
)
POOL = {"p0": "a", "p1": "a", "p2": "b", "p3": "b", "p4": "a", "p5": "b"}
# bob differs from ann on p1 and p5, and always answers "a" on gold
BOB = POOL | {"p1": "b", "p5": "a"}


def _import(ws: Workspace, path: Path, rows: dict[str, str], *, gold: bool) -> None:
    if gold:
        path.write_text("id,text,label\n" + "".join(f"{i},text {i},{g}\n" for i, g in rows.items()))
        ws.import_file(path, id_field="id", label_field="label", split="gold")
    else:
        path.write_text("id,text\n" + "".join(f"{i},text {i}\n" for i in rows))
        ws.import_file(path, id_field="id")


def _label(ws: Workspace, name: str, n: int | None = None) -> None:
    """``name`` answers ``n`` served items (all when None): ann and cat are always right on
    gold, bob always says "a" there; on the pool each follows a fixed map."""
    gold = {**GOLD_BEFORE, **GOLD_AFTER}
    done = 0
    while n is None or done < n:
        item = _next(ws, name)
        if item is None:
            return
        key = item.external_id
        if key in gold:
            answer = "a" if name == "bob" else gold[key]
        else:
            answer = (BOB if name == "bob" else POOL)[key]
        ws.annotate(item.item_id, name, answer)
        done += 1


def _next(ws: Workspace, name: str):
    """The next item, or None once neither pool items nor gold checks are left for ``name``
    (gold comes at random while pool items are left, then the rest of it)."""
    return ws.next_item(name)


def _configure(ws: Workspace, **changes) -> None:
    ws.config = replace(ws.config, **changes)
    write_config(ws.root, ws.config)


GOLD_BEFORE = {"g0": "a", "g1": "a", "g2": "b", "g3": "b"}
GOLD_AFTER = {"g4": "a", "g5": "b", "g6": "a", "g7": "b"}
FIRST = {key: POOL[key] for key in ("p0", "p1", "p2")}
SECOND = {key: POOL[key] for key in ("p3", "p4", "p5")}


@pytest.fixture
def versions(tmp_path, db_url):
    """ann and bob answer three pool items and four gold items before any guidelines, and as
    many again under version 1; cat answers one of the first pool items under version 1, so
    that item's answers span the versions."""
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"], db_url=db_url, name="versions")
    _import(ws, tmp_path / "pool.csv", FIRST, gold=False)
    _import(ws, tmp_path / "gold.csv", GOLD_BEFORE, gold=True)
    _configure(ws, overlap=2, gold_rate=0.5)
    for name in ("ann", "bob", "cat"):
        ws.add_user(name)
    ws.add_user("eng", role="engineer")
    for name in ("ann", "bob"):
        _label(ws, name)
    ws.edit_guidelines({"labels": {"a": {"definition": "The first kind."}}}, by="eng")
    _configure(ws, overlap=3, gold_rate=0.0)
    _label(ws, "cat", 1)
    _configure(ws, gold_rate=0.5)
    _import(ws, tmp_path / "pool2.csv", SECOND, gold=False)
    _import(ws, tmp_path / "gold2.csv", GOLD_AFTER, gold=True)
    for name in ("ann", "bob"):
        _label(ws, name)
    yield ws
    ws.close()


def _by_hand(ws: Workspace) -> dict:
    """The figures recounted from every stored answer in plain Python."""
    with Session(ws.engine) as session:
        rows = session.exec(
            select(Annotation, Item).join(Item, Item.id == Annotation.item_id)
        ).all()
    given: dict = defaultdict(int)
    gold: dict = defaultdict(lambda: [0, 0])
    pool: dict = defaultdict(dict)
    for answer, item in rows:
        if answer.origin != "human":
            continue
        given[answer.guidelines_version] += 1
        if answer.superseded_by is not None or answer.label is None:
            continue
        if item.split == "gold":
            gold[answer.guidelines_version][0] += 1
            gold[answer.guidelines_version][1] += int(answer.label == item.gold_label)
        else:
            pool[item.id][answer.annotator_id] = (answer.label, answer.guidelines_version)
    units: dict = defaultdict(list)
    spanning = 0
    for by_person in pool.values():
        if len(by_person) < 2:
            continue
        seen = {v for _label, v in by_person.values()}
        if len(seen) > 1:
            spanning += 1
        else:
            units[seen.pop()].append([label for label, _v in by_person.values()])
    return {"given": dict(given), "gold": dict(gold), "units": dict(units), "spanning": spanning}


def test_each_version_gets_its_own_answers(versions):
    with Session(versions.engine) as session:
        found = by_guidelines(session, versions.labels)
    hand = _by_hand(versions)
    assert [v["version"] for v in found["versions"]] == [None, 1]
    assert found["spanning_items"] == hand["spanning"] == 1
    for v in found["versions"]:
        version = v["version"]
        assert v["answers"] == hand["given"][version]
        assert [v["gold"]["n"], v["gold"]["correct"]] == hand["gold"][version]
        units = hand["units"].get(version, [])
        assert v["agreement"]["items"] == len(units)
        expected = krippendorff_alpha(units, versions.labels)
        assert v["agreement"]["alpha"] == pytest.approx(expected)
    before, after = found["versions"]
    # ann is right on every gold item, bob on the "a" ones: 6 of 8 under each version
    assert (before["gold"]["correct"], before["gold"]["n"]) == (6, 8)
    assert (after["gold"]["correct"], after["gold"]["n"]) == (6, 8)
    low, high, rate = before["gold"]["low"], before["gold"]["high"], before["gold"]["rate"]
    assert 0 < low < rate < high <= 1
    assert before["since"] is None and after["since"] is not None
    assert before["answers"] == 2 * (3 + 4) and after["answers"] == 1 + 2 * (3 + 4)
    # p0-p2 before, minus the one cat answered again; p3-p5 after
    assert (before["agreement"]["items"], after["agreement"]["items"]) == (2, 3)
    assert {(p["a"], p["b"]) for p in after["agreement"]["pairs"]} == {("ann", "bob")}


def test_status_report_and_page_show_the_same_figures(versions, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    done = CliRunner().invoke(app, ["status", "-w", str(versions.root), "--json"] + _db(versions))
    assert done.exit_code == 0, done.output
    info = json.loads(done.stdout)
    jsonschema.validate(info, SCHEMA)
    assert info["quality"]["by_guidelines"] == summary(versions)["quality"]["by_guidelines"]
    per_version = info["quality"]["by_guidelines"]["versions"]
    for key in ("n", "correct"):  # every gold check counts under exactly one version
        assert sum(v["gold"][key] for v in per_version) == info["quality"]["gold"][key]

    text = versions.report_html()
    assert "<h2>By guidelines version</h2>" in text and "version 1" in text
    rows = figures.version_rows(info["quality"]["by_guidelines"])
    assert all(row["gold accuracy"] in text for row in rows)
    assert "<h2>Suggestions and anchoring</h2>" in text

    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(versions.root))
    if versions.db_url.startswith("postgresql"):
        monkeypatch.setenv("LABELLOOP_DB", versions.db_url)
    else:
        monkeypatch.delenv("LABELLOOP_DB", raising=False)
    script = (
        "from labeling.ui.views import common, metrics\ncommon.apply_style()\nmetrics.render()\n"
    )
    at = AppTest.from_string(script, default_timeout=60)
    at.session_state["ll_user"] = "eng"
    at.run()
    assert not at.exception
    assert "By guidelines version" in [h.value for h in at.subheader]
    table = next(t.value for t in at.dataframe if "guidelines" in t.value.columns)
    assert list(table["guidelines"]) == ["none", "version 1"]
    assert list(table["gold accuracy"]) == [row["gold accuracy"] for row in rows]


def _db(ws: Workspace) -> list[str]:
    return ["--db", ws.db_url] if ws.db_url.startswith("postgresql") else []


def test_the_report_shows_the_anchoring_rows(tmp_path):
    """The report's anchoring table is figures.anchoring_rows, as on the Metrics page."""
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"])
    try:
        fake = summary(ws)
        check = fake["quality"]["anchoring"]
        check["n"] = 3
        check["shown"] = {"n": 3, "correct": 2, "rate": 0.6667, "low": 0.2077, "high": 0.9385}
        check["annotators"] = {"ann": dict(check)}
        text = ws.report_html(summary=fake)
    finally:
        ws.close()
    rows = figures.anchoring_rows(check)
    assert [r["annotator"] for r in rows] == ["everyone", "ann"]
    assert text.count("2/3 (66.7%, 20.8%-93.8%)") == 2
    assert "wrong guesses taken" in text


def test_no_guidelines_no_table_on_the_page_but_none_in_status(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"])
    try:
        _import(ws, tmp_path / "pool.csv", POOL, gold=False)
        ws.add_user("ann")
        _label(ws, "ann", 2)
        found = summary(ws)["quality"]["by_guidelines"]
    finally:
        ws.close()
    assert [v["version"] for v in found["versions"]] == [None]
    assert found["versions"][0]["answers"] == 2 and found["versions"][0]["gold"]["n"] == 0
    assert found["versions"][0]["gold"]["rate"] is None


def test_a_gold_label_the_toml_no_longer_lists_is_in_no_gold_figure(tmp_path):
    """One gold-check rule for gold accuracy, the anchoring check and the versions."""
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b", "c"])
    _import(ws, tmp_path / "gold.csv", {"g0": "a", "g1": "c"}, gold=True)
    _configure(ws, gold_rate=0.5)
    ws.add_user("ann")
    while (item := _next(ws, "ann")) is not None:
        ws.annotate(item.item_id, "ann", "a")
    _configure(ws, labels=("a", "b"))
    root = ws.root
    ws.close()
    ws = Workspace.open(root)
    try:
        quality = summary(ws)["quality"]
    finally:
        ws.close()
    assert quality["gold"]["n"] == 1
    assert quality["by_guidelines"]["versions"][0]["gold"]["n"] == 1


def test_sets_are_scored_by_exact_match_and_masi_alpha(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=["x", "y", "z"], task="multi-label")
    (tmp_path / "gold.jsonl").write_text(
        "".join(
            json.dumps({"id": f"g{k}", "text": f"gold {k}", "labels": ["x", "y"]}) + "\n"
            for k in range(4)
        )
    )
    ws.import_file(tmp_path / "gold.jsonl", id_field="id", label_field="labels", split="gold")
    _configure(ws, overlap=2, gold_rate=0.5)
    for name in ("ann", "bob"):
        ws.add_user(name)
    ws.add_user("eng", role="engineer")
    answers = {
        "ann": {"s0": ["x"], "s1": ["x", "y"], "s2": [], "s3": ["z"]},
        "bob": {"s0": ["x"], "s1": ["y"], "s2": ["z"], "s3": ["z"]},
    }
    for k in range(4):  # ann gives the gold set, bob one label short of it
        answers["ann"][f"g{k}"] = ["y", "x"]
        answers["bob"][f"g{k}"] = ["x"]
    for batch, ids in (("one", ("s0", "s1")), ("two", ("s2", "s3"))):
        _import(ws, tmp_path / f"{batch}.csv", dict.fromkeys(ids, ""), gold=False)
        for name, given in answers.items():
            while (item := _next(ws, name)) is not None:
                ws.annotate(item.item_id, name, given[item.external_id])
        if batch == "one":
            ws.edit_guidelines({"labels": {"x": {"definition": "The x kind."}}}, by="eng")
    try:
        quality = summary(ws)["quality"]
    finally:
        ws.close()
    found = quality["by_guidelines"]
    before, after = found["versions"]
    gold = [sum(v["gold"][key] for v in found["versions"]) for key in ("n", "correct")]
    assert gold == [quality["gold"]["n"], quality["gold"]["correct"]]
    assert quality["gold"]["correct"] * 2 == quality["gold"]["n"] > 0
    assert (before["version"], after["version"]) == (None, 1)
    assert before["agreement"]["items"] == after["agreement"]["items"] == 2
    units_before = [[frozenset({"x"})] * 2, [frozenset({"x", "y"}), frozenset({"y"})]]
    units_after = [[frozenset(), frozenset({"z"})], [frozenset({"z"})] * 2]
    assert before["agreement"]["alpha"] == pytest.approx(krippendorff_alpha_sets(units_before))
    assert after["agreement"]["alpha"] == pytest.approx(krippendorff_alpha_sets(units_after))
