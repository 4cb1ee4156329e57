"""Each headline figure has one value, whichever surface shows it.

One fixed store (SQLite file or PostgreSQL, ``--backend``): LF votes, weak labels of which one
is not confident, gold items an LF misses, an annotator who changed an answer and skipped one,
a lead. Each figure is computed here from the store's rows, then read from the Metrics, LF and
My stats pages (AppTest), ``status --json``, ``lf analyze --json``, ``lf label --json`` and the
HTML report: all must show the same value, written the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from sqlmodel import Session, col, select
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from labeling import Workspace, figures
from labeling.annotation.session import UserSession
from labeling.cli.main import app
from labeling.config import write_config
from labeling.quality.stopping import stopping, stopping_message
from labeling.quality.summary import summary
from labeling.store.models import Annotation, Annotator, Item, LFVote, WeakLabel
from tests.appsession import open_page

runner = CliRunner()
POOL = (
    [f"refund please {k}" for k in range(6)]
    + [f"invoice wrong {k}" for k in range(3)]
    + [f"hello there {k}" for k in range(5)]
    + [f"nothing here {k}" for k in range(2)]
)
GOLD = [
    ("refund gold 0", "billing"),
    ("refund gold 1", "billing"),
    ("refund thanks 2", "other"),  # kw_refund votes billing: wrong
    ("hello gold 3", "other"),
    ("hello gold 4", "other"),
    ("greetings gold 5", "other"),  # no LF votes: no weak label
]


@pytest.fixture
def fixed(tmp_path, db_url, monkeypatch):
    ws = Workspace.create(
        tmp_path / "figs", labels=["billing", "other"], db_url=db_url, name="figures"
    )
    ws.config = replace(ws.config, gold_rate=0.0, overlap=1, weak_threshold=0.7)
    write_config(ws.root, ws.config)
    pool = tmp_path / "pool.csv"
    pool.write_text("id,text\n" + "".join(f"p{k},{t}\n" for k, t in enumerate(POOL)))
    ws.import_file(pool, id_field="id")
    gold = tmp_path / "gold.csv"
    gold.write_text("id,text,label\n" + "".join(f"g{k},{t},{g}\n" for k, (t, g) in enumerate(GOLD)))
    ws.import_file(gold, id_field="id", label_field="label", split="gold")
    ws.add_rule(
        {"name": "kw_refund", "kind": "keyword", "label": "billing", "keywords": ["refund"]}
    )
    ws.add_rule({"name": "kw_hello", "kind": "keyword", "label": "other", "keywords": ["hello"]})
    ws.apply_lfs()
    ws.fit_weak_labels()
    with Session(ws.engine) as session:  # one weak label below weak_threshold
        p13 = session.exec(select(Item.id).where(Item.external_id == "p13")).one()
        weak = session.exec(select(WeakLabel).where(WeakLabel.item_id == p13)).one()
        weak.confidence = 0.5
        session.add(weak)
        session.commit()
    ws.add_user("ann")
    ws.add_user("bob")
    ws.add_user("lea", role="lead")
    ws.add_user("eng", role="engineer")
    for _ in range(5):
        item = ws.next_item("ann")
        ws.annotate(item.item_id, "ann", "billing", duration_ms=2000)
    again = ws.undo("ann")  # ann changes her last answer: 6 labels given, 5 current
    ws.annotate(again.item_id, "ann", "other", duration_ms=1000)
    item = ws.next_item("ann")
    ws.skip(item.item_id, "ann", duration_ms=500)
    for _ in range(3):
        item = ws.next_item("bob")
        ws.annotate(item.item_id, "bob", "other", duration_ms=3000)
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def _by_hand(ws: Workspace) -> dict[str, object]:
    """The headline figures, counted from the rows without the code under test."""
    with Session(ws.engine) as session:
        pool = set(session.exec(select(Item.id).where(Item.split == "pool")).all())
        labelled = {
            a.item_id
            for a in session.exec(
                select(Annotation).where(
                    col(Annotation.superseded_by).is_(None), col(Annotation.label).is_not(None)
                )
            ).all()
        } & pool
        voted = set(session.exec(select(LFVote.item_id)).all()) & pool
        weak = {w.item_id: w.confidence for w in session.exec(select(WeakLabel)).all()}
        confident = {i for i, c in weak.items() if c >= 0.7} & pool
        ann = session.exec(select(Annotator).where(Annotator.name == "ann")).one()
        rows = session.exec(select(Annotation).where(Annotation.annotator_id == ann.id)).all()
    n = len(pool)
    counts = {
        "human": len(labelled),
        "lf": len(voted),
        "weak": len(confident),
        "combined": len(labelled | confident),
    }
    current = [r for r in rows if r.superseded_by is None and r.label is not None]
    return {
        "pool": n,
        "counts": counts,
        "shares": {k: v / n for k, v in counts.items()},
        "weak_any": len(set(weak) & pool),
        "ann_current": len(current),
        "ann_answers": len(rows),
    }


def _page(module: str, user: str) -> AppTest:
    at = open_page(module, user, style=False, timeout=60)
    assert not at.exception, at.exception
    return at


def test_every_surface_shows_the_same_headline_figures(fixed):
    ws = fixed
    hand = _by_hand(ws)
    counts, shares = hand["counts"], hand["shares"]
    # The fixed store: 16 pool items, 11 with LF votes, 10 confident weak labels (of 11).
    assert hand["pool"] == 16 and counts["lf"] == 11 and counts["weak"] == 10
    assert hand["weak_any"] == 11 and counts["human"] == 8
    assert (hand["ann_current"], hand["ann_answers"]) == (5, 7)  # + 1 changed, 1 skip
    written = {key: figures.share(value) for key, value in shares.items()}
    names = {key: name for key, name, _text in figures.COVERAGE_FIGURES}

    # status --json: the numbers themselves.
    result = runner.invoke(app, ["status", "-w", str(ws.root), "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    for key in counts:
        assert status["coverage"]["counts"][key] == counts[key], key
        assert status["coverage"][key] == pytest.approx(shares[key], abs=1e-6), key
    assert status["coverage"]["weak_any"] == pytest.approx(11 / 16, abs=1e-6)
    assert status["throughput"]["ann"]["current_labels"] == hand["ann_current"]
    assert status["throughput"]["ann"]["answers"] == hand["ann_answers"]
    assert status["people_by_role"] == {"annotator": 2, "engineer": 1, "lead": 1, "admin": 0}
    # status in words: the same names and the same writing.
    text = runner.invoke(app, ["status", "-w", str(ws.root)]).stdout
    for key in counts:
        assert f"{names[key]} {written[key]}" in text, key
    assert "2 annotators, 1 lead, 1 engineer" in text

    # lf analyze --json: the same totals (and the old key names carry the same numbers).
    result = runner.invoke(app, ["lf", "analyze", "-w", str(ws.root), "--json"])
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)["totals"]
    for key in counts:
        assert totals["counts"][key] == counts[key], key
        assert totals[key] == status["coverage"][key], key
    assert (totals["lfs"], totals["humans"], totals["items"]) == (
        totals["lf"],
        totals["human"],
        16,
    )
    assert sum(c["combined"] for c in totals["per_class"].values()) == pytest.approx(
        totals["combined"], abs=1e-5
    )
    text = runner.invoke(app, ["lf", "analyze", "-w", str(ws.root)]).stdout
    for key in counts:
        assert f"{names[key]} {written[key]}" in text, key

    # The HTML report: coverage table rows and the annotators table.
    html = ws.report_html()
    for key in counts:
        row = (
            f'<tr><td>{names[key]}</td><td class="n">{counts[key]}</td>'
            f'<td class="n">{written[key]}</td></tr>'
        )
        assert row in html, key
    ann_row = re.search(
        r"<tr><td>ann</td><td class=\"n\">(\d+)</td><td class=\"n\">(\d+)</td>", html
    )
    assert ann_row and ann_row.groups() == (str(hand["ann_current"]), str(hand["ann_answers"]))

    # The Metrics page: headline cards, coverage table, annotators table.
    at = _page("metrics", "lea")
    cards = {m.label: m.value for m in at.metric}
    assert cards[names["human"]] == written["human"]
    assert cards[names["combined"]] == written["combined"]
    frames = {tuple(d.value.columns)[:2]: d.value for d in at.dataframe}
    table = frames[("figure", "pool items")].set_index("figure")
    for key in counts:
        assert table.loc[names[key], "share of pool"] == written[key], key
        assert table.loc[names[key], "pool items"] == str(counts[key]), key
    people = frames[("annotator", "current labels")].set_index("annotator")
    assert people.loc["ann", "current labels"] == str(hand["ann_current"])
    assert people.loc["ann", "answers given"] == str(hand["ann_answers"])

    # The LF page: the same four figures under the same names.
    at = _page("lfs", "eng")
    cards = {m.label: m.value for m in at.metric}
    for key in counts:
        assert cards[names[key]] == written[key], key

    # My stats: ann's current labels and median time, as on the Metrics page and in the report.
    at = _page("stats", "ann")
    mine = {m.label: m.value for m in at.metric}
    assert mine["Current labels"] == str(hand["ann_current"])
    assert mine["Median time per item"] == people.loc["ann", "median time per item"]
    assert f'<td class="n">{mine["Median time per item"]}</td>' in html
    # The Team list (engineers see it): the same current labels.
    team = {p["name"]: p["labels"] for p in UserSession(ws, "eng").list_users()}
    assert team["ann"] == hand["ann_current"] and team["lea"] == 0


def test_the_label_models_gold_accuracy_says_what_it_counts(fixed):
    ws = fixed
    result = runner.invoke(app, ["lf", "label", "-w", str(ws.root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Gold g0-g4 have a weak label (g2's is wrong), g5 has none: 4 right of 5 covered.
    assert (report["gold_covered_correct"], report["gold_covered_n"]) == (4, 5)
    assert report["gold_uncovered"] == 1 and report["gold_n"] == 6
    # g5 guessed at random: right or not.
    assert report["gold_accuracy"] in (
        pytest.approx(4 / 6, abs=1e-6),
        pytest.approx(5 / 6, abs=1e-6),
    )
    words = figures.weak_gold_words(report)
    assert "4/5 (80.0%)" in words and "guessed at random" in words
    text = runner.invoke(app, ["lf", "label", "-w", str(ws.root)]).stdout
    assert words in text
    # The LF table's per-LF gold counts agree with the covered figure: 2/3 + 2/2.
    analysis = json.loads(
        runner.invoke(app, ["lf", "analyze", "-w", str(ws.root), "--json"]).stdout
    )
    per_lf = {r["lf"]: (r["gold_correct"], r["gold_n"]) for r in analysis["lfs"]}
    assert per_lf == {"kw_refund": (2, 3), "kw_hello": (2, 2)}
    at = _page("lfs", "eng")
    at.button(key="ll_lf_label").click().run()
    assert not at.exception
    assert any(words in t.value for t in at.toast)


def test_plurals_and_the_stopping_hint_in_words(fixed):
    ws = fixed
    found = stopping(ws)
    assert found["message"].endswith("there are 0 promoted rounds so far.")
    assert figures.plural(1, "item") == "1 item" and figures.plural(2, "round") == "2 rounds"
    series = [{"round": 2, "previous": 1, "n": 100, "kappa": 0.995}]
    message = stopping_message(series, 1, promoted=2)
    assert "0.995 (round 2 vs 1)" in message
    assert "the latest 1 reach it" in message and "at least 2 more promoted rounds" in message
    assert "1 items" not in ws.report_html() and "1 rounds" not in ws.report_html()


def test_figures_are_rounded_on_the_page_in_the_report_and_on_chart_axes(fixed):
    """No "6524.258 labels per hour" or "55.000000" ticks: tables and axes carry rounded
    figures (the raw JSON at the end of the report keeps the exact numbers)."""
    from labeling.quality import charts

    ws = fixed
    html = ws.report_html()
    # What a reader sees as text: before the raw JSON, outside the charts' drawing coordinates.
    shown = re.sub(r"<svg.*?</svg>", "", html[: html.index("<h2>Raw numbers</h2>")], flags=re.S)
    assert not re.findall(r"\d\.\d{4,}", shown)
    speed = summary(ws)["throughput"]["ann"]
    assert f'<td class="n">{figures.rate(speed["labels_per_hour"])}</td>' in shown
    at = _page("metrics", "lea")
    for frame in at.dataframe:
        for value in frame.value.astype(str).to_numpy().ravel():
            assert not re.search(r"\d\.\d{4,}", value), value
    curve = charts.learning_curve(
        {
            "model": {
                "learning_curve": [
                    {"round": 1, "labels": 55, "macro_f1": 0.5},
                    {"round": 2, "labels": 70, "macro_f1": 0.6},
                ]
            }
        }
    ).to_dict()
    assert curve["encoding"]["x"]["axis"]["format"] == ",d"
    assert figures.rate(6524.258) == "6,524" and figures.share(0.1875) == "18.8%"
