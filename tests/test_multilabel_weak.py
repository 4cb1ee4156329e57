"""LFs and label models in multi-label workspaces: present and absent votes, a label model
per label with its fallback to majority vote, weak sets in rounds, and the LF analysis."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.errors import BadInput
from labeling.store import labelsets
from labeling.store.models import Item, LFVote, WeakLabel
from labeling.weak.votes import ABSENT_MARK
from weak_supervision import ABSTAIN, absent, apply_lfs, labeling_function, rule_from_spec
from weak_supervision.multilabel import binary_votes, fit_label_models_per_label

LABELS = ("billing", "refund", "bug")
WORDS = {"billing": "invoice", "refund": "money back", "bug": "crash"}

LF_FILE = """
from weak_supervision import ABSTAIN, absent, labeling_function

@labeling_function()
def happy_means_no_bug(row):
    return absent("bug") if "thanks" in row.text else ABSTAIN

@labeling_function(label="refund")
def refund_words(row):
    return "money back" in row.text
"""


def make_items(n: int, seed: int, prefix: str) -> list[tuple[str, str, list[str]]]:
    """(id, text, true set): each label's word is in the text when the set holds it; "thanks"
    only in texts without a bug."""
    rng = random.Random(seed)
    items = []
    for k in range(n):
        chosen = [label for label in LABELS if rng.random() < 0.4]
        filler = ["hello", "today", "please", "order", "account", "team"]
        words = [WORDS[label] for label in chosen] + rng.sample(filler, 3)
        if "bug" not in chosen and rng.random() < 0.5:
            words.append("thanks")
        rng.shuffle(words)
        items.append((f"{prefix}{k}", f"{' '.join(words)} {prefix}{k}", chosen))
    return items


def make_workspace(tmp_path: Path, db_url: str | None = None) -> tuple[Workspace, dict]:
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label", db_url=db_url)
    pool, gold = make_items(150, 1, "p"), make_items(40, 2, "g")
    (tmp_path / "pool.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t, _ in pool)
    )
    ws.import_file(tmp_path / "pool.jsonl", id_field="id")
    (tmp_path / "gold.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": t, "labels": s}) + "\n" for i, t, s in gold)
    )
    ws.import_file(tmp_path / "gold.jsonl", id_field="id", label_field="labels", split="gold")
    (ws.lfs_dir / "sets.py").write_text(LF_FILE)
    ws.add_rule(
        {"kind": "keyword", "name": "kw_invoice", "label": "billing", "keywords": ["invoice"]}
    )
    ws.add_rule(
        {"kind": "keyword", "name": "kw_no_invoice", "label": "billing", "keywords": ["hello"]}
        | {"absent": True}
    )
    ws.add_rule({"kind": "regex", "name": "re_crash", "label": "bug", "pattern": "crash"})
    return ws, {i: s for i, _t, s in pool + gold}


# ------------------------------------------------------------------------- votes


def test_a_code_lf_and_a_rule_vote_absent_as_codes_after_the_labels():
    @labeling_function()
    def no_bug(row):
        return absent("bug") if "thanks" in row.text else "refund"

    rule = rule_from_spec(
        {"kind": "keyword", "name": "no_billing", "label": "billing", "keywords": ["hi"]}
        | {"absent": True}
    )
    frame = pd.DataFrame({"text": ["thanks a lot", "hi there", "money please"]})
    lfs = [no_bug.bind(LABELS), rule.bind(LABELS)]
    assert no_bug.declared_labels() == {"bug", "refund"}
    for engine in ("local", "snorkel"):
        L = apply_lfs(lfs, frame, engine=engine).L
        # absent k is 3 + k: bug absent = 5, billing absent = 3; refund present = 1
        assert L.tolist() == [[5, -1], [1, 3], [1, -1]], engine


def test_an_absent_rule_keeps_its_direction_in_its_spec_and_a_present_one_is_unchanged():
    spec = {"kind": "regex", "name": "r", "label": "bug", "pattern": "x", "case_sensitive": False}
    assert rule_from_spec(spec).spec == spec  # no "absent" key: old rules keep their versions
    absent_rule = rule_from_spec(spec | {"absent": True})
    assert absent_rule.spec["absent"] is True
    assert absent_rule.bind(LABELS).version != rule_from_spec(spec).bind(LABELS).version


def test_a_code_lf_voting_absent_on_another_label_than_declared_is_a_fault():
    @labeling_function(label="bug")
    def wrong(row):
        return absent("refund")

    result = apply_lfs([wrong.bind(LABELS)], pd.DataFrame({"text": ["a"]}))
    assert result.faults["wrong"] == 1
    assert "absent('refund')" in result.first_fault["wrong"]


def test_a_single_label_workspace_refuses_an_absent_rule(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=("ham", "spam"))
    spec = {"kind": "keyword", "name": "k", "label": "spam", "keywords": ["hi"], "absent": True}
    with pytest.raises(BadInput, match="absent votes need a multi-label workspace"):
        ws.add_rule(spec)
    ws.close()


def test_votes_are_stored_one_row_per_lf_and_item_with_absent_marked(tmp_path, backend, db_url):
    ws, _truth = make_workspace(tmp_path, db_url)
    report = ws.apply_lfs()
    assert report.errors == []
    with Session(ws.engine) as session:
        stored = session.exec(select(LFVote.label)).all()
    assert ABSENT_MARK + "billing" in stored and ABSENT_MARK + "bug" in stored
    assert {"billing", "refund", "bug"} <= set(stored)
    listed = {r["name"]: r for r in ws.list_lfs()}
    assert listed["kw_no_invoice"]["polarity"] == ["¬billing"]
    assert listed["happy_means_no_bug"]["polarity"] == ["¬bug"]
    ws.close()


# ------------------------------------------------------------------ label models


def test_binary_votes_give_each_label_the_lfs_that_voted_on_it():
    L = np.array([[0, 3, -1], [-1, 1, 4], [-1, -1, -1]])
    assert binary_votes(L, 0, 3).tolist() == [[1, 0], [-1, -1], [-1, -1]]
    assert binary_votes(L, 1, 3).tolist() == [[-1, -1], [1, 0], [-1, -1]]
    assert binary_votes(L, 2, 3).shape == (3, 0)


def _noisy_votes(seed: int, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """True sets and the votes of 4 LFs per label, each right 60-90% of the time on half the
    rows, voting present or absent."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, len(LABELS))) < 0.35).astype(np.int64)
    columns = []
    for k in range(len(LABELS)):
        for accuracy in rng.uniform(0.6, 0.9, size=4):
            vote = np.where(rng.random(n) < accuracy, Y[:, k], 1 - Y[:, k])
            code = np.where(vote == 1, k, len(LABELS) + k)
            columns.append(np.where(rng.random(n) < 0.5, code, ABSTAIN))
    return Y, np.stack(columns, axis=1)


def test_a_label_model_that_loses_to_majority_on_gold_falls_back_and_says_so():
    Y, L = _noisy_votes(0)
    fitted = fit_label_models_per_label(L, LABELS, model="snorkel")
    # Gold on which majority vote is right wherever the two models disagree: the LabelModel
    # loses on it, whatever it learnt.
    majority = fit_label_models_per_label(L, LABELS, model="majority").probabilities
    disagree = (fitted.probabilities >= 0.5) != (majority >= 0.5)
    assert disagree[:, 0].any()
    gold = np.full_like(Y, -1)
    gold[:, 0] = np.where(disagree[:, 0], (majority[:, 0] >= 0.5).astype(int), Y[:, 0])
    weak = fit_label_models_per_label(L, LABELS, reference=gold)
    choice = weak.choices[0]
    assert choice.model == "majority"
    assert choice.snorkel_correct is not None and choice.majority_correct is not None
    assert choice.snorkel_correct < choice.majority_correct
    assert choice.message == (
        f"the LabelModel was right on {choice.snorkel_correct} of {choice.n_reference} "
        f"reference items, majority vote on {choice.majority_correct}: majority vote used"
    )
    covered = ~np.isnan(weak.probabilities[:, 0])
    assert np.allclose(weak.probabilities[covered, 0], majority[covered, 0])
    # the other labels have no reference: nothing to compare, the LabelModel stays
    assert [c.model for c in weak.choices[1:]] == ["snorkel", "snorkel"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_per_label_the_model_used_is_at_least_as_right_as_majority_on_gold(seed):
    Y, L = _noisy_votes(seed)
    rng = np.random.default_rng(seed + 100)
    gold = np.where(rng.random(Y.shape) < 0.2, Y, -1)
    weak = fit_label_models_per_label(L, LABELS, reference=gold)
    for k, choice in enumerate(weak.choices):
        rows = ~np.isnan(weak.probabilities[:, k]) & (gold[:, k] >= 0)
        right = int(((weak.probabilities[rows, k] >= 0.5) == (gold[rows, k] == 1)).sum())
        assert choice.majority_correct is not None
        assert right >= choice.majority_correct, choice


def test_one_sided_and_uncovered_labels_say_what_was_used():
    L = np.array([[0, -1], [0, 0], [-1, 0], [-1, -1]])  # only "billing present" votes
    weak = fit_label_models_per_label(L, LABELS)
    billing, refund, _bug = weak.choices
    assert billing.model == "majority" and billing.one_sided
    assert "only vote present" in (billing.message or "")
    assert refund.model == "none" and refund.message == "no LF voted on this label"
    assert weak.indicator.tolist() == [[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0]]
    assert weak.has_set.tolist() == [True, True, True, False]
    assert weak.confidence.tolist() == [1.0, 1.0, 1.0, 0.0]


def test_confidence_is_the_product_over_covered_labels_of_the_surer_side():
    L = np.array([[0, 4], [0, 1]])  # billing present twice; refund absent once, present once
    weak = fit_label_models_per_label(L, LABELS, model="majority")
    p = weak.probabilities
    assert np.isnan(p[0, 2])
    expected = max(p[0, 0], 1 - p[0, 0]) * max(p[0, 1], 1 - p[0, 1])
    assert weak.confidence[0] == pytest.approx(expected)


# ------------------------------------------------------------------ the workspace


def test_weak_sets_are_fitted_stored_and_analysed(tmp_path, backend, db_url):
    ws, truth = make_workspace(tmp_path, db_url)
    ws.apply_lfs()
    report = ws.fit_weak_labels()
    assert report["model"] == "per-label"
    assert report["reference"] == "gold"
    assert set(report["labels"]) == set(LABELS)
    assert report["labels"]["billing"]["lfs"] == 2
    assert report["labels"]["bug"]["lfs"] == 2
    assert report["gold_n"] > 0 and report["gold_accuracy"] is not None
    with Session(ws.engine) as session:
        weak = {w.item_id: w for w in session.exec(select(WeakLabel)).all()}
    assert len(weak) == report["weak_labels"] > 0
    for row in weak.values():
        assert labelsets.decode(row.label) <= set(LABELS)
        assert 0 < row.confidence <= 1
        assert row.model == "per-label"
    assert not ws.weak_labels_stale()

    analysis = ws.lf_analysis()
    rows = {(r["lf"], r["label"], r["direction"]): r for r in analysis["lfs"]}
    crash = rows[("re_crash", "bug", "present")]
    assert crash["gold_accuracy"] == 1.0  # "crash" is in a text exactly when it has a bug
    happy = rows[("happy_means_no_bug", "bug", "absent")]
    assert happy["gold_accuracy"] == 1.0 and happy["gold_n"] > 0
    # "hello" says nothing about billing: its absent votes meet kw_invoice's present ones
    assert rows[("kw_no_invoice", "billing", "absent")]["conflicts"] > 0
    assert rows[("refund_words", "refund", "present")]["polarity"] == ["refund"]
    ws.close()


def test_lf_label_and_add_rule_absent_from_the_command_line(tmp_path):
    ws, _truth = make_workspace(tmp_path)
    ws.close()
    base = ["-w", str(tmp_path / "ws")]
    runner = CliRunner()
    done = runner.invoke(
        app,
        ["lf", "add-rule", "kw_no_refund", "--label", "refund", "--keywords", "crash", "--absent"]
        + base,
    )
    assert done.exit_code == 0, done.output
    assert "-> not refund" in done.stdout
    assert runner.invoke(app, ["lf", "apply", *base]).exit_code == 0
    done = runner.invoke(app, ["lf", "label", "--json", *base])
    assert done.exit_code == 0, done.output
    shown = json.loads(done.stdout)
    assert shown["model"] == "per-label" and shown["labels"]["refund"]["lfs"] == 2


def test_confident_weak_sets_train_a_round(tmp_path):
    ws, truth = make_workspace(tmp_path)
    with ws:
        ws.add_user("ann")
        answered = set()
        for _ in range(20):
            item = ws.next_item("ann")
            ws.annotate(item.item_id, "ann", truth[item.external_id])
            if item.external_id.startswith("p"):  # not a hidden gold check
                answered.add(item.item_id)
        ws.apply_lfs()
        ws.fit_weak_labels()
        with Session(ws.engine) as session:
            weak = session.exec(select(WeakLabel)).all()
            pool = set(session.exec(select(Item.id).where(Item.split == "pool")).all())
        trains = [
            w
            for w in weak
            if w.confidence >= ws.config.weak_threshold
            and w.item_id in pool
            and w.item_id not in answered
        ]
        assert trains
        round_ = ws.retrain()
        assert round_.status == "succeeded", round_.error
        assert (round_.n_human, round_.n_weak) == (len(answered), len(trains))


def test_the_lfs_page_shows_directions_and_saves_an_absent_rule(tmp_path, monkeypatch):
    ws, _truth = make_workspace(tmp_path)
    ws.add_user("engineer", role="engineer")
    ws.apply_lfs()
    ws.fit_weak_labels()
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    script = "from labeling.ui.views import common, lfs\ncommon.apply_style()\nlfs.render()\n"
    at = AppTest.from_string(script, default_timeout=30)
    at.session_state["ll_user"] = "engineer"
    at.run()
    assert not at.exception
    (table,) = at.dataframe
    shown = table.value
    assert "kw_no_invoice (¬billing)" in set(shown["LF"])
    at.button(key="ll_lf_label").click().run()
    assert not at.exception
    at.text_input(key="ll_rule_name").set_value("kw_no_bug").run()
    at.text_input(key="ll_rule_keywords").set_value("thanks").run()
    at.selectbox(key="ll_rule_label").set_value("bug").run()
    at.checkbox(key="ll_rule_absent").check().run()
    at.button(key="ll_rule_save").click().run()
    assert not at.exception
    saved = {r["name"]: r for r in ws.list_lfs()}["kw_no_bug"]
    assert saved["spec"]["absent"] is True and saved["label"] == "bug"
    ws.close()
