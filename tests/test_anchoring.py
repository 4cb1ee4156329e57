"""The anchoring check: gold accuracy with and without a guess shown, wrong guesses accepted,
each with counts and intervals, overall and per person, as status --json carries them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.config import write_config
from labeling.quality.anchoring import _difference
from labeling.store.models import Annotation, Item

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "docs" / "status.schema.json").read_text()
)


def test_the_difference_interval_is_newcombe_s():
    # Newcombe (1998), example (a): 56/70 against 48/80, method 10: 0.0524 to 0.3339.
    assert _difference([70, 56], [80, 48]) == {"value": 0.2, "low": 0.0524, "high": 0.3339}
    assert _difference([0, 0], [5, 3]) is None


@pytest.fixture
def anchored(tmp_path):
    """Gold items whose weak label (the guess) is wrong on the "odd" ones; two people: one
    takes every guess shown, the other always answers the gold label."""
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"])
    pool = tmp_path / "pool.csv"
    pool.write_text("id,text\n" + "".join(f"p{i},pool text {i}\n" for i in range(80)))
    ws.import_file(pool, id_field="id")
    gold = tmp_path / "gold.csv"
    rows = [f"g{i},{'odd' if i % 3 == 0 else 'even'} offer {i},spam\n" for i in range(30)]
    gold.write_text("id,text,label\n" + "".join(rows))
    ws.import_file(gold, id_field="id", label_field="label", split="gold")
    ws.add_rule({"kind": "keyword", "name": "even", "label": "spam", "keywords": ["even"]})
    ws.add_rule({"kind": "keyword", "name": "odd", "label": "ham", "keywords": ["odd"]})
    ws.apply_lfs()
    ws.fit_weak_labels()
    write_config(ws.root, replace(ws.config, suggestions="weak", gold_rate=0.5))
    ws.close()
    ws = Workspace.open(tmp_path / "ws")
    for name in ("taker", "careful"):
        ws.add_user(name)
    for name in ("taker", "careful"):
        for _ in range(80):
            item = ws.next_item(name)
            if item is None:
                break
            shown = ws.suggestion(item.item_id, name)
            # "spam" is the gold label of every gold item (pool items: any answer)
            answer = shown.value if name == "taker" and shown.value is not None else "spam"
            ws.annotate(item.item_id, name, answer, suggestion=shown)
    yield ws
    ws.close()


def _by_hand(ws: Workspace) -> dict[str, dict[str, list[int]]]:
    """The figures recounted from the stored answers, in plain Python."""
    people = {p.name: p for p in ws.list_users()}
    found: dict[str, dict[str, list[int]]] = {}
    with Session(ws.engine) as session:
        for answer, item in session.exec(
            select(Annotation, Item).join(Item, Item.id == Annotation.item_id)
        ).all():
            if item.split != "gold" or answer.superseded_by is not None:
                continue
            name = next(n for n, p in people.items() if p.id == answer.annotator_id)
            tally = found.setdefault(name, {"shown": [0, 0], "withheld": [0, 0], "wrong": [0, 0]})
            right = int(answer.label == item.gold_label)
            if answer.suggestion_withheld:
                tally["withheld"][0] += 1
                tally["withheld"][1] += right
            elif answer.suggestion is not None:
                tally["shown"][0] += 1
                tally["shown"][1] += right
                if answer.suggestion != item.gold_label:
                    tally["wrong"][0] += 1
                    tally["wrong"][1] += int(answer.label == answer.suggestion)
    return found


def test_status_reports_what_the_answers_say(anchored):
    done = CliRunner().invoke(app, ["status", "-w", str(anchored.root), "--json"])
    assert done.exit_code == 0, done.output
    info = json.loads(done.stdout)
    jsonschema.validate(info, SCHEMA)
    figures = info["quality"]["anchoring"]
    hand = _by_hand(anchored)
    for name, tally in hand.items():
        mine = figures["annotators"][name]
        assert [mine["shown"]["n"], mine["shown"]["correct"]] == tally["shown"]
        assert [mine["withheld"]["n"], mine["withheld"]["correct"]] == tally["withheld"]
        assert [mine["wrong_accepted"]["n"], mine["wrong_accepted"]["accepted"]] == tally["wrong"]
    # both saw guesses and had some withheld; the taker accepted every wrong guess shown, the
    # careful one none, and the careful one is always right
    taker, careful = figures["annotators"]["taker"], figures["annotators"]["careful"]
    assert taker["wrong_accepted"]["n"] > 0 and taker["wrong_accepted"]["rate"] == 1.0
    assert careful["wrong_accepted"]["rate"] == 0.0
    assert careful["shown"]["rate"] == 1.0 and careful["withheld"]["rate"] == 1.0
    assert taker["withheld"]["n"] > 0 and taker["withheld"]["rate"] == 1.0
    assert taker["difference"]["value"] < 0  # the taker does worse with a guess shown
    low, high = taker["shown"]["low"], taker["shown"]["high"]
    assert low <= taker["shown"]["rate"] <= high
    assert figures["n"] == sum(t["shown"][0] + t["withheld"][0] for t in hand.values())


def test_the_metrics_page_shows_the_check(anchored, monkeypatch):
    from streamlit.testing.v1 import AppTest

    anchored.add_user("eng", role="engineer")
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(anchored.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    script = (
        "from labeling.ui.views import common, metrics\ncommon.apply_style()\nmetrics.render()\n"
    )
    at = AppTest.from_string(script, default_timeout=60)
    at.session_state["ll_user"] = "eng"
    at.run()
    assert not at.exception
    assert "Suggestions and anchoring" in [h.value for h in at.subheader]
    tables = [t.value for t in at.dataframe if "wrong guesses taken" in t.value.columns]
    assert tables and list(tables[0]["annotator"]) == ["everyone", "careful", "taker"]
