"""Corrections, flags and the item page's story: the Python API, the role-checked session, the
CLI and the Review page, with a property test of ``Item.label`` against a recomputation.

Runs on SQLite and PostgreSQL (``--backend``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.annotation.session import UserSession
from labeling.cli.main import app
from labeling.config import write_config
from labeling.errors import (
    BadInput,
    Forbidden,
    NothingToUndo,
    UnknownAnnotator,
    UnknownItem,
    UnknownLabel,
)
from labeling.quality.item_story import HOW_DECIDED, current_rows
from labeling.store import db
from labeling.store.answers import decide, decided_by, final_labels, human_labels, refresh_labels
from labeling.store.models import (
    BULK,
    Annotation,
    Annotator,
    Flag,
    Item,
    LabelingFunction,
    LFVote,
    Round,
    Score,
    WeakLabel,
    utcnow,
)
from tests.appsession import signed_in

LABELS = ["a", "b", "c"]
# Who answers in the property test: the engineer and the lead who correct and adjudicate too.
PEOPLE = ["ann", "bob", "eng", "lea"]


def _workspace(root: Path, db_url: str | None, *, pool: int = 4, overlap: int = 3) -> Workspace:
    """``pool`` items p0.. with a ``channel`` field, gold items g0 (a) and g1 (b), annotators
    ann, bob and cid, engineer eng, lead lea; overlap 3, no gold checks."""
    ws = Workspace.create(root / "ws", labels=LABELS, db_url=db_url, name="corrections")
    ws.config = replace(ws.config, overlap=overlap, gold_rate=0.0)
    write_config(ws.root, ws.config)
    path = root / "pool.csv"
    rows = "".join(f"p{k},pool text number {k},web\n" for k in range(pool))
    path.write_text("id,text,channel\n" + rows)
    ws.import_file(path, id_field="id")
    gold = root / "gold.csv"
    gold.write_text("id,text,label\ng0,gold text zero,a\ng1,gold text one,b\n")
    ws.import_file(gold, id_field="id", label_field="label", split="gold")
    for name in ("ann", "bob", "cid"):
        ws.add_user(name)
    ws.add_user("eng", role="engineer")
    ws.add_user("lea", role="lead")
    return ws


@pytest.fixture
def ws(tmp_path, db_url):
    found = _workspace(tmp_path, db_url)
    yield found
    found.close()


def _label(ws: Workspace, name: str, answers: dict[str, str | None]) -> None:
    """Answer every item served to ``name``: ``answers[external id]``, skipping the items it
    does not name (and those it maps to None)."""
    while (item := ws.next_item(name)) is not None:
        label = answers.get(item.external_id)
        if label is None:
            ws.skip(item.item_id, name)
        else:
            ws.annotate(item.item_id, name, label)


def _row_id(ws: Workspace, external_id: str) -> int:
    with Session(ws.engine) as session:
        return session.exec(select(Item.id).where(Item.external_id == external_id)).one()


def _stored_label(ws: Workspace, external_id: str) -> str | None:
    with Session(ws.engine) as session:
        return session.exec(select(Item.label).where(Item.external_id == external_id)).one()


def _history(ws: Workspace, external_id: str) -> list[tuple[str, str, str | None, bool]]:
    """(who, origin, label, current) of every answer on the item, oldest first."""
    return [
        (a["who"], a["origin"], a["label"], a["current"]) for a in ws.item(external_id)["answers"]
    ]


def _labels_in_step(ws: Workspace) -> None:
    """``Item.label`` of every item equals a recomputation from the whole log."""
    with Session(ws.engine) as session:
        stored = {
            item_id: label
            for item_id, label in session.exec(select(Item.id, Item.label)).all()
            if label is not None
        }
        assert stored == final_labels(session, ws.labels)


def _export(ws: Workspace, out: Path, **options) -> dict[str, dict]:
    ws.export(out, **options)
    rows = map(json.loads, out.read_text().splitlines())
    key = "annotation_id" if options.get("annotations") else "id"
    return {r[key]: r for r in rows}


# ---------------------------------------------------------------- corrections


def test_a_correction_decides_the_label_and_every_answer_stays_in_history(ws, tmp_path):
    _label(ws, "ann", {"p0": "a", "p1": "a"})
    _label(ws, "bob", {"p0": "a", "p1": "b"})
    _label(ws, "cid", {"p0": "b", "p1": "b"})
    assert _stored_label(ws, "p0") == "a"
    done = ws.correct("p0", "c", by="eng", note="  the text is about c  ")
    assert done["item"] == "p0" and done["label"] == "c" and done["previous_label"] == "a"
    assert done["by"] == "eng" and done["note"] == "the text is about c"
    assert done["superseded"] == []  # people's answers stay current
    assert _stored_label(ws, "p0") == "c"
    assert _history(ws, "p0") == [
        ("ann", "human", "a", True),
        ("bob", "human", "a", True),
        ("cid", "human", "b", True),
        ("eng", "correction", "c", True),
    ]
    story = ws.item("p0")
    assert story["label"] == "c" and story["decided_by"] == "correction"
    # The note is kept as a flag resolved at once: in the item's story, not on Review.
    [kept] = story["flags"]
    assert kept["note"] == "corrected to c: the text is about c" and kept["resolved"]
    assert ws.flags() == []
    # Corrections train rounds; the review lists drop the decided item.
    with Session(ws.engine) as session:
        assert human_labels(session, ws.labels)[_row_id(ws, "p0")] == "c"
    assert [e["id"] for e in ws.review()["items"]["disagreement"]] == ["p1"]
    status = ws.status()  # people's answers; the correction is a decision
    assert (status["annotations"], status["corrections"], status["adjudications"]) == (6, 1, 0)

    # A second correction supersedes the first; an adjudication after it wins as the newest.
    ws.correct("p0", "b", by="lea")
    assert _stored_label(ws, "p0") == "b"
    ws.adjudicate(_row_id(ws, "p0"), "a", lead="lea")
    assert _stored_label(ws, "p0") == "a"
    assert ws.item("p0")["decided_by"] == "adjudication"
    assert [(o, lab, now) for _w, o, lab, now in _history(ws, "p0")][3:] == [
        ("correction", "c", False),
        ("correction", "b", False),
        ("adjudication", "a", True),
    ]
    # ... and a correction after that adjudication wins again.
    ws.correct("p0", "c", by="eng")
    assert _stored_label(ws, "p0") == "c" and ws.item("p0")["decided_by"] == "correction"
    assert ws.doctor()["ok"]
    _labels_in_step(ws)

    items = _export(ws, tmp_path / "items.jsonl")
    assert items["p0"]["label"] == "c" and items["p0"]["decided_by"] == "correction"
    assert items["p0"]["n_annotations"] == 3
    assert set(_export(ws, tmp_path / "c.jsonl", origins=["correction"])) == {"p0"}
    assert "p0" not in _export(ws, tmp_path / "h.jsonl", origins=["human"])
    log = _export(ws, tmp_path / "log.jsonl", annotations=True)
    corrections = [r for r in log.values() if r["origin"] == "correction"]
    assert [(r["label"], r["superseded_by"] is None) for r in corrections] == [
        ("c", False),
        ("b", False),
        ("c", True),
    ]
    assert {r["annotator"] for r in corrections} == {"eng", "lea"}


def test_a_correction_decides_over_bulk_labels_and_people_s_answers_without_superseding(ws):
    _label(ws, "ann", {"p0": "a"})
    with db.write_session(ws.engine) as session:
        eng = session.exec(select(Annotator.id).where(Annotator.name == "eng")).one()
        for external_id in ("p0", "p1"):
            session.add(
                Annotation(
                    item_id=_row_id(ws, external_id),
                    annotator_id=eng,
                    label="b",
                    origin=BULK,
                    batch="batch-1",
                )
            )
        session.flush()
        refresh_labels(session, ws.labels, [_row_id(ws, "p0"), _row_id(ws, "p1")])
    assert _stored_label(ws, "p0") == "a" and ws.item("p0")["decided_by"] == "majority"
    assert _stored_label(ws, "p1") == "b" and ws.item("p1")["decided_by"] == "bulk"
    assert ws.item("p1")["answers"][-1]["batch"] == "batch-1"
    done = ws.correct("p1", "c", by="eng")
    assert done["superseded"] == []  # a bulk label stays current: it counts in n_labels
    assert [h for h in _history(ws, "p1") if h[1] != "human"] == [
        ("eng", "bulk", "b", True),
        ("eng", "correction", "c", True),
    ]
    assert _stored_label(ws, "p1") == "c"
    ws.correct("p0", "c", by="eng")
    assert [(o, now) for _w, o, _lab, now in _history(ws, "p0")] == [
        ("human", True),
        ("bulk", True),
        ("correction", True),
    ]
    _labels_in_step(ws)


def test_relabelling_after_undo_replaces_one_s_answer_not_one_s_own_correction(ws):
    item = ws.next_item("eng")
    ws.annotate(item.item_id, "eng", "a")
    ws.correct(item.external_id, "c", by="eng")
    back = ws.undo("eng")
    assert back.item_id == item.item_id
    ws.annotate(back.item_id, "eng", "b")
    assert _history(ws, item.external_id) == [
        ("eng", "human", "a", False),
        ("eng", "correction", "c", True),
        ("eng", "human", "b", True),
    ]
    assert _stored_label(ws, item.external_id) == "c"
    assert ws.doctor()["ok"]


def test_decisions_made_at_once_on_one_item_leave_one_current_decision(tmp_path, db_url):
    """Corrections and adjudications of one item from several threads at once: each locks the
    item's row before reading its current decision, so the later supersedes the earlier."""
    ws = _workspace(tmp_path, db_url, pool=6)
    items = [f"p{k}" for k in range(6)]
    rows = {e: _row_id(ws, e) for e in items}
    errors: list[BaseException] = []

    def decide_item(external: str, k: int) -> None:
        try:
            if k % 2:
                ws.adjudicate(rows[external], LABELS[k % 3], lead="lea")
            else:
                ws.correct(external, LABELS[k % 3], by=("eng", "lea")[k % 4 // 2])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    for external in items:
        start = threading.Barrier(4)

        def run(k: int, external: str = external, start: threading.Barrier = start) -> None:
            start.wait()
            decide_item(external, k)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    for external in items:
        current = [h for h in _history(ws, external) if h[3]]
        assert len(current) == 1, (external, _history(ws, external))
        assert len(_history(ws, external)) == 4
        assert _stored_label(ws, external) == current[0][2]
    _labels_in_step(ws)
    assert ws.doctor()["ok"]
    ws.close()


def test_gold_removed_and_unknown_things_are_refused_by_name_and_change_nothing(ws):
    before = ws.item("p0")
    with pytest.raises(BadInput, match=r"'g0' is a gold item; its gold label 'a' is final"):
        ws.correct("g0", "b", by="eng")
    ws.remove_items(["p3"], by="eng")
    with pytest.raises(BadInput, match=r"'p3' was removed"):
        ws.correct("p3", "b", by="eng")
    with pytest.raises(BadInput, match=r"'p3' was removed"):
        ws.flag("p3", "odd", by="eng")
    with pytest.raises(UnknownItem, match=r"'nope'"):
        ws.correct("nope", "b", by="eng")
    with pytest.raises(UnknownItem, match=r"'nope'"):
        ws.item("nope")
    with pytest.raises(UnknownLabel, match=r"'z' is not one of: a, b, c"):
        ws.correct("p0", "z", by="eng")
    with pytest.raises(UnknownAnnotator, match=r"'zed'"):
        ws.correct("p0", "a", by="zed")
    # The person named is who the history shows: the roles of the UI hold here too.
    with pytest.raises(Forbidden, match=r"correcting labels needs the engineer role; 'ann'"):
        ws.correct("p0", "a", by="ann")
    with pytest.raises(BadInput, match="needs a note"):
        ws.flag("p0", "   ", by="ann")
    with pytest.raises(BadInput, match="no flag number 99"):
        ws.resolve_flag(99, by="lea")
    assert ws.item("p0") == before
    with Session(ws.engine) as session:
        assert session.exec(select(Annotation)).all() == []
        assert session.exec(select(Flag)).all() == []


# ---------------------------------------------------------------- flags


def test_flags_are_listed_until_resolved_and_resolving_twice_is_refused(ws):
    first = ws.flag("p1", "the text is cut off", by="ann")
    second = ws.flag("g1", "gold label looks wrong", by="bob")  # gold items may be flagged
    assert first["item"] == "p1" and first["text"] == "pool text number 1"
    assert first["who"] == "ann" and not first["resolved"] and first["when"]
    assert [f["flag"] for f in ws.flags()] == [second["flag"], first["flag"]]  # newest first
    ws.resolve_flag(first["flag"], by="lea")
    assert [f["item"] for f in ws.flags()] == ["g1"]
    every = {f["flag"]: f for f in ws.flags(open_only=False)}
    assert every[first["flag"]]["resolved"] and every[first["flag"]]["resolved_by"] == "lea"
    with pytest.raises(BadInput, match=rf"flag {first['flag']} on item 'p1' was resolved"):
        ws.resolve_flag(first["flag"], by="lea")
    assert [f["note"] for f in ws.item("p1")["flags"]] == ["the text is cut off"]


def test_roles_annotators_flag_engineers_correct_leads_resolve(ws):
    annotator, engineer, lead = (UserSession(ws, n) for n in ("ann", "eng", "lea"))
    raised = annotator.flag("p0", "not English")
    assert raised["text"] == ""  # annotators read items only through their queue
    with pytest.raises(Forbidden, match="correcting labels needs the engineer role"):
        annotator.correct("p0", "a")
    with pytest.raises(Forbidden):
        annotator.item("p0")
    with pytest.raises(Forbidden):
        annotator.flags()
    assert engineer.correct("p0", "b")["by"] == "eng"
    assert engineer.item("p0")["label"] == "b"
    assert [f["flag"] for f in engineer.flags()] == [raised["flag"]]
    with pytest.raises(Forbidden, match="resolving flags needs the lead role"):
        engineer.resolve_flag(raised["flag"])
    lead.resolve_flag(raised["flag"])
    assert lead.flags() == []
    ws.deactivate_user("eng")
    with pytest.raises(UnknownAnnotator):
        engineer.correct("p0", "a")


# ---------------------------------------------------------------- the item's story


def test_item_shows_fields_batch_answers_votes_weak_label_prediction_and_flags(ws):
    story = ws.item("p2")
    assert story["prediction"] is None and story["prediction_round"] is None
    assert story["label"] is None and story["decided_by"] == "none"
    _label(ws, "ann", {"p0": "a", "p1": "a", "p2": None, "p3": "a"})
    _label(ws, "bob", {"p0": "b", "p1": "b", "p2": "b", "p3": "b"})
    p2 = _row_id(ws, "p2")
    with db.write_session(ws.engine) as session:
        lf = LabelingFunction(name="kw_two", kind="keyword", version="v2", applied_version="v2")
        old = LabelingFunction(name="kw_old", kind="keyword", version="new")
        off = LabelingFunction(name="kw_off", kind="keyword", version="v", active=False)
        session.add_all([lf, old, off])
        session.flush()
        session.add(LFVote(lf_id=lf.id, item_id=p2, lf_version="v2", label="b"))
        session.add(LFVote(lf_id=old.id, item_id=p2, lf_version="stale", label="a"))
        session.add(LFVote(lf_id=off.id, item_id=p2, lf_version="v", label="a"))
        session.add(WeakLabel(item_id=p2, label="b", confidence=0.875, model="majority"))
        promoted = Round(status="succeeded", promoted=True, promoted_at=utcnow())
        session.add(promoted)
        session.flush()
        session.add(
            Score(round_id=promoted.id, item_id=p2, score=0.4, prediction="c", confidence=0.6)
        )
    flagged = ws.flag("p2", "ambiguous", by="bob")
    story = ws.item("p2")
    assert (story["id"], story["text"], story["split"]) == ("p2", "pool text number 2", "pool")
    assert story["source"] == {"id": "p2", "text": "pool text number 2", "channel": "web"}
    assert story["import_batch"]["file"] == "pool.csv" and story["import_batch"]["id"] >= 1
    assert story["label"] == "b" and story["decided_by"] == "majority"
    assert [(a["who"], a["role"], a["label"], a["skipped"]) for a in story["answers"]] == [
        ("ann", "annotator", None, True),
        ("bob", "annotator", "b", False),
    ]
    answer = story["answers"][1]
    assert answer["origin"] == "human" and answer["current"] and answer["superseded_by"] is None
    assert answer["duration_ms"] is not None and answer["created_at"] and answer["batch"] is None
    assert story["lf_votes"] == {"kw_two": "b"}  # stale versions and switched-off LFs left out
    assert (story["weak_label"], story["weak_confidence"]) == ("b", 0.875)
    assert story["prediction"] == "c" and story["prediction_confidence"] == pytest.approx(0.6)
    assert story["prediction_round"] == promoted.id
    assert [f["flag"] for f in story["flags"]] == [flagged["flag"]]
    # One answer each for a and b: a tie, broken by the toml's order.
    assert ws.item("p0")["label"] == "a" and ws.item("p0")["decided_by"] == "tie-break"
    gold = ws.item("g0")
    assert gold["gold_label"] == "a" and gold["split"] == "gold"
    assert gold["label"] is None and gold["decided_by"] == "none" and gold["answers"] == []


def test_item_says_a_label_that_came_with_the_file_was_decided_by_import(ws, tmp_path):
    path = tmp_path / "labelled.csv"
    path.write_text("id,text,label\nq0,an imported text,b\n")
    ws.import_file(path, id_field="id", label_field="label")
    story = ws.item("q0")
    assert story["label"] == "b" and story["decided_by"] == "import"
    assert [(a["who"], a["origin"]) for a in story["answers"]] == [("import", "import")]
    assert story["import_batch"]["file"] == "labelled.csv"


def test_decided_by_names_the_rule_decide_used():
    labels = ("a", "b", "c")
    cases = {
        ("adjudication", "adjudication"): [
            ("a", "human", 2, 1),
            ("b", "adjudication", 1, 5),
            ("c", "correction", 1, 4),
        ],
        ("correction", "correction"): [("a", "adjudication", 1, 4), ("c", "correction", 1, 6)],
        ("majority", "human"): [("a", "human", 2, 1), ("b", "human", 1, 2), ("c", "bulk", 5, 9)],
        ("tie-break", "human"): [("a", "human", 1, 1), ("b", "import", 1, 2)],
        ("import", "import"): [("b", "import", 1, 2)],
        ("bulk", "bulk"): [("c", "bulk", 1, 3), ("a", "bulk", 1, 2)],
        (None, None): [],
    }
    assert {how for how, _origin in cases} - {None} == set(HOW_DECIDED) - {"none"}
    for (how, origin), rows in cases.items():
        label, found, by_origin = decided_by(rows, labels)
        assert (found, by_origin) == (how, origin)
        assert label == decide(rows, labels)
    # A person's answer that replaced their own different one: a correction by a person.
    relabelled = decided_by([("b", "human", 2, 3), ("a", "human", 1, 1)], labels, relabelled={"b"})
    assert relabelled == ("b", "correction", "human")
    assert decide(cases[("adjudication", "adjudication")], labels) == "b"
    assert decide(cases[("bulk", "bulk")], labels) == "c"


def _cli(ws: Workspace, *args: str):
    base = ["-w", str(ws.root)] + (["--db", ws.db_url] if ws.db_url.startswith("postgres") else [])
    return CliRunner().invoke(app, [*args, *base])


def test_cli_item_correct_flag_flags_and_resolve(ws):
    _label(ws, "ann", {"p0": "a"})
    done = _cli(ws, "correct", "p0", "b", "--as", "eng", "--note", "see thread", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["previous_label"] == "a"
    plain = _cli(ws, "correct", "p0", "c", "--as", "lea")
    assert plain.exit_code == 0 and plain.stdout.strip() == "Corrected item p0: b -> c."
    shown = _cli(ws, "item", "p0", "--json")
    assert shown.exit_code == 0, shown.output
    story = json.loads(shown.stdout)
    assert story["label"] == "c" and [a["origin"] for a in story["answers"]] == [
        "human",
        "correction",
        "correction",
    ]
    text = _cli(ws, "item", "p0")
    assert "label: c (decided by correction)" in text.stdout and "channel: web" in text.stdout
    raised = _cli(ws, "flag", "p1", "--note", "duplicate of p0", "--as", "ann", "--json")
    assert raised.exit_code == 0, raised.output
    number = json.loads(raised.stdout)["flag"]
    listed = _cli(ws, "flags", "--json")
    assert [f["note"] for f in json.loads(listed.stdout)] == ["duplicate of p0"]
    assert "duplicate of p0" in _cli(ws, "flags").stdout
    assert _cli(ws, "resolve-flag", str(number), "--as", "lea").exit_code == 0
    assert json.loads(_cli(ws, "flags", "--json").stdout) == []
    assert len(json.loads(_cli(ws, "flags", "--all", "--json").stdout)) == 2  # with the note
    assert _cli(ws, "flags").stdout.strip() == "No open flags."
    for args, message in [
        (("correct", "g0", "b", "--as", "eng"), "error: item 'g0' is a gold item"),
        (("correct", "p9", "b", "--as", "eng"), "error: no item with id 'p9'"),
        (("correct", "p0", "z", "--as", "eng"), "error: label 'z' is not one of: a, b, c"),
        (("correct", "p0", "a", "--as", "zed"), "error: no annotator named 'zed'"),
        (("flag", "p0", "--note", " ", "--as", "ann"), "error: a flag needs a note"),
        (("item", "p9"), "error: no item with id 'p9'"),
        (("resolve-flag", str(number), "--as", "lea"), f"error: flag {number} on item 'p1'"),
    ]:
        failed = _cli(ws, *args)
        assert failed.exit_code == 2 and failed.stderr.startswith(message), failed.output
    missing = _cli(ws, "correct", "p0", "b")
    assert missing.exit_code == 2 and "--as" in missing.output


# ---------------------------------------------------------------- the Review page


def test_review_page_lists_flagged_items_and_resolves_them(ws, monkeypatch):
    if ws.db_url.startswith("postgres"):
        monkeypatch.setenv("LABELLOOP_DB", ws.db_url)
    else:
        monkeypatch.delenv("LABELLOOP_DB", raising=False)
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    signed_in(monkeypatch, ws, "lea")
    raised = ws.flag("p1", "**not** markdown", by="ann")
    script = "from labeling.ui.views import common, review\ncommon.apply_style()\nreview.render()\n"
    at = AppTest.from_string(script, default_timeout=30)
    at.session_state["ll_user"] = "lea"
    at.run()
    assert not at.exception
    assert any(s.value == "Flagged items" for s in at.subheader)
    assert any(t.value == "Note: **not** markdown" for t in at.text)  # shown as typed
    assert any(t.value == "pool text number 1" for t in at.text)
    assert any("flagged by ann" in c.value for c in at.caption)
    at.button(key=f"ll_flag_resolve_{raised['flag']}").click().run()
    assert not at.exception
    assert any("Resolved the flag on item p1" in c.value for c in at.caption)
    assert any("No open flags" in c.value for c in at.caption)
    assert ws.flags() == []


# ---------------------------------------------------------------- property: Item.label


_databases = itertools.count()
steps = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), st.sampled_from(PEOPLE), st.sampled_from(LABELS)),
        st.tuples(st.just("skip"), st.sampled_from(PEOPLE)),
        st.tuples(st.just("undo"), st.sampled_from(PEOPLE)),
        st.tuples(st.just("adjudicate"), st.integers(0, 3), st.sampled_from(LABELS)),
        st.tuples(st.just("correct"), st.integers(0, 3), st.sampled_from(LABELS)),
        st.tuples(st.just("flag"), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=14,
)


def _step(ws: Workspace, step: tuple) -> None:
    kind = step[0]
    if kind in ("answer", "skip"):
        item = ws.next_item(step[1])
        if item is None:
            return
        if kind == "answer":
            ws.annotate(item.item_id, step[1], step[2])
        else:
            ws.skip(item.item_id, step[1])
    elif kind == "undo":
        with contextlib.suppress(NothingToUndo):  # nothing to undo yet: the step does nothing
            ws.undo(step[1])
    elif kind == "adjudicate":
        ws.adjudicate(_row_id(ws, f"p{step[1]}"), step[2], lead="lea")
    elif kind == "correct":
        ws.correct(f"p{step[1]}", step[2], by="eng")
    else:
        ws.flag(f"p{step[1]}", "look again", by="ann")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=steps)
def test_item_label_always_equals_a_recomputation(backend, request, sequence):
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    db_url = None if server is None else server.create_database(f"corr{next(_databases)}")
    with tempfile.TemporaryDirectory() as directory:
        ws = _workspace(Path(directory), db_url, overlap=2)
        try:
            for step in sequence:
                _step(ws, step)
                _labels_in_step(ws)
            for k in range(4):
                story = ws.item(f"p{k}")
                assert story["label"] == decide(current_rows(story["answers"]), ws.labels)
            assert ws.doctor()["ok"]
        finally:
            ws.close()
