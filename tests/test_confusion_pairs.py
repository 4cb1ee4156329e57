"""The confused label pairs behind the Guidelines page's hint and `labelloop guidelines hints`:
counted by hand from answers on gold items, disagreements on overlapped items and a round's
flagged labels, ranked, and checked against the exclude notes."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from labeling import Workspace
from labeling.annotation import leases
from labeling.annotation.session import UserSession
from labeling.cli.main import app
from labeling.config import write_config
from labeling.errors import Forbidden
from labeling.quality.confusion_pairs import (
    ConfusedPair,
    directed_counts,
    disagreement_counts,
    flagged_answers,
    mentions,
    rank_pairs,
    swaps,
)
from labeling.quality.label_errors import REVIEW_FILE
from labeling.store import labelsets
from labeling.store.models import Round

LABELS = ("billing", "refund", "account")


# ---------------------------------------------------------------- pure parts


def test_an_answer_confuses_the_label_it_gave_with_the_one_expected():
    assert swaps("billing", "refund", multilabel=False) == {("billing", "refund")}
    assert swaps("billing", "billing", multilabel=False) == set()


def test_a_set_confuses_each_extra_label_with_each_missing_one():
    def enc(*names: str) -> str:
        return labelsets.encode(names, LABELS)

    # given {billing, account} where {refund, account} was expected: billing in place of refund
    assert swaps(enc("billing", "account"), enc("refund", "account"), multilabel=True) == {
        ("billing", "refund")
    }
    # a label only left out (or only added) confuses no two labels
    assert swaps(enc("billing"), enc("billing", "refund"), multilabel=True) == set()
    assert swaps(enc("billing", "refund"), enc(), multilabel=True) == set()
    assert swaps(enc("billing", "refund"), enc("account"), multilabel=True) == {
        ("billing", "account"),
        ("refund", "account"),
    }


def test_an_item_counts_once_per_pair_however_many_people_disagree():
    units = [["billing", "refund", "refund"], ["billing", "billing"], ["account", "billing"]]
    found = disagreement_counts(units, multilabel=False)
    assert found == Counter(
        {frozenset(("billing", "refund")): 1, frozenset(("account", "billing")): 1}
    )


def test_an_exclude_note_names_a_label_as_a_word_in_any_case():
    assert mentions("Asking for money back is Refund.", "refund")
    assert mentions("That is a refund request, not billing", "refund_request")
    assert not mentions("refunds are elsewhere", "refund")  # another word
    assert not mentions("", "refund")
    assert mentions("see c++ notes", "c++")  # a name with regex characters


def test_pairs_rank_by_their_total_then_label_order_and_say_where_a_note_helps():
    gold = Counter({("billing", "refund"): 2, ("refund", "billing"): 1, ("account", "refund"): 1})
    people = Counter({frozenset(("billing", "refund")): 1, frozenset(("account", "billing")): 1})
    model = directed_counts(
        flagged_answers([[7, "account", "refund", 0.9, 0.1, True], [8, "a", "b", 0.9, 0, False]]),
        multilabel=False,
    )
    excludes = {"billing": "Asking for money back is Refund.", "refund": ""}
    found = rank_pairs(LABELS, gold=gold, people=people, model=model, excludes=excludes)
    assert [p.labels for p in found] == [
        ("billing", "refund"),
        ("refund", "account"),
        ("billing", "account"),
    ]
    top = found[0]
    assert (top.gold, top.people, top.model, top.total) == (3, 1, 0, 4)
    assert top.given_instead == {"billing": 2, "refund": 1} and top.note_on == "billing"
    assert top.noted and top.noted_in == ("billing",)
    second = found[1]
    assert (second.gold, second.model, second.total) == (1, 1, 2)
    assert second.note_on == "account" and not second.noted
    assert found[2].as_dict() == {
        "labels": ["billing", "account"],
        "total": 1,
        "gold": 0,
        "people": 1,
        "model": 0,
        "given_instead": {"billing": 0, "account": 0},
        "note_on": "billing",
        "noted": False,
        "noted_in": [],
    }
    assert rank_pairs(LABELS, gold=gold, people=people, model=model, excludes={}, limit=1) == [
        replace(top, noted_in=())
    ]


def test_a_label_no_longer_in_the_workspace_is_left_out():
    found = rank_pairs(
        LABELS,
        gold=Counter({("billing", "gone"): 5, ("billing", "refund"): 1}),
        people=Counter(),
        model=Counter(),
        excludes={},
    )
    assert [p.labels for p in found] == [("billing", "refund")]


# ---------------------------------------------------------------- from the store


class _AlwaysGold:
    """A draw that always falls under the gold rate: gold checks come first."""

    def random(self) -> float:
        return 0.0


# What each person answers, by item: gold labels g0 billing, g1 refund, g2 refund, g3 account.
ANSWERS = {
    "ann": {"g0": "billing", "g1": "billing", "g2": "refund", "g3": "account"}
    | {"p0": "billing", "p1": "refund", "p2": "account", "p3": "billing"},
    "bob": {"g0": "refund", "g1": "billing", "g2": "account", "g3": "account"}
    | {"p0": "refund", "p1": "refund", "p2": "billing", "p3": "billing"},
}


@pytest.fixture
def answered(tmp_path, db_url, monkeypatch):
    """Two people, overlap 2, every item answered by both (ANSWERS)."""
    monkeypatch.setattr(leases, "_GOLD_DRAWS", _AlwaysGold())
    ws = Workspace.create(tmp_path / "ws", labels=list(LABELS), db_url=db_url, name="tickets")
    (tmp_path / "pool.csv").write_text(
        "id,text\n" + "".join(f"p{k},ticket number {k}\n" for k in range(4))
    )
    ws.import_file(tmp_path / "pool.csv", id_field="id")
    gold = ["billing", "refund", "refund", "account"]
    (tmp_path / "gold.csv").write_text(
        "id,text,label\n" + "".join(f"g{k},gold ticket {k},{g}\n" for k, g in enumerate(gold))
    )
    ws.import_file(tmp_path / "gold.csv", id_field="id", label_field="label", split="gold")
    ws.config = replace(ws.config, overlap=2, gold_rate=0.5)
    write_config(ws.root, ws.config)
    ws.add_user("eng", role="engineer")
    for name, answers in ANSWERS.items():
        ws.add_user(name)
        served = []
        while (item := ws.next_item(name)) is not None:
            served.append(item.external_id)
            ws.annotate(item.item_id, name, answers[item.external_id])
        assert sorted(served) == sorted(answers)
    yield ws
    ws.close()


def test_pairs_come_from_gold_answers_and_disagreements(answered):
    found = answered.confused_pairs()
    assert [(p.labels, p.gold, p.people, p.model) for p in found] == [
        (("billing", "refund"), 3, 1, 0),  # ann g1, bob g0 and g1; p0
        (("billing", "account"), 0, 1, 0),  # p2
        (("refund", "account"), 1, 0, 0),  # bob g2
    ]
    assert found[0].given_instead == {"billing": 2, "refund": 1}
    assert not any(p.noted for p in found)
    answered.edit_guidelines(
        {"labels": {"billing": {"exclude": "Asking for money back is refund."}}}, by="eng"
    )
    assert answered.confused_pairs(limit=1)[0].noted_in == ("billing",)


def test_a_round_s_flagged_labels_count_as_the_model_s(answered):
    folder = answered.models_dir / "round-0001"
    folder.mkdir(parents=True)
    rows = [[1, "account", "refund", 0.9, 0.05, True], [2, "refund", "billing", 0.8, 0.1, False]]
    (folder / REVIEW_FILE).write_text(json.dumps({"labels": list(LABELS), "items": rows}))
    with Session(answered.engine) as session:
        session.add(Round(status="succeeded", model_path="models/round-0001"))
        session.commit()
    found = {p.labels: p for p in answered.confused_pairs()}
    assert found[("refund", "account")].model == 1  # the flagged row only
    # bob answered account on g2 (gold refund), and the flagged row gave account too
    assert found[("refund", "account")].given_instead == {"refund": 0, "account": 2}
    assert found[("billing", "refund")].model == 0


def test_annotators_may_not_read_the_pairs(answered):
    with pytest.raises(Forbidden, match="needs the engineer role"):
        UserSession(answered, "ann").confused_pairs()
    assert UserSession(answered, "eng").confused_pairs(limit=1)[0].total == 4


def test_the_cli_prints_the_hints_and_their_json(answered):
    root = str(answered.root)
    runner = CliRunner()
    done = runner.invoke(app, ["guidelines", "hints", "-w", root, "--json", "--limit", "2"])
    assert done.exit_code == 0, done.output
    found = json.loads(done.stdout)
    assert found["guidelines_version"] == 0
    assert [p["labels"] for p in found["confused_pairs"]] == [
        ["billing", "refund"],
        ["billing", "account"],
    ]
    assert (
        found["confused_pairs"][0]
        == ConfusedPair(
            labels=("billing", "refund"),
            gold=3,
            people=1,
            model=0,
            given_instead={"billing": 2, "refund": 1},
            noted_in=(),
        ).as_dict()
    )
    text = runner.invoke(app, ["guidelines", "hints", "-w", root]).stdout
    assert "billing / refund: 4 (gold 3, people 1, model 0)" in text
    assert "write one on billing" in text


def test_a_workspace_without_answers_has_no_pairs(tmp_path):
    with Workspace.create(tmp_path / "ws", labels=list(LABELS)) as ws:
        assert ws.confused_pairs() == []
        done = CliRunner().invoke(app, ["guidelines", "hints", "-w", str(ws.root)])
        assert done.exit_code == 0 and "No confused label pairs yet" in done.stdout


def test_sets_in_a_multi_label_workspace(tmp_path, monkeypatch):
    monkeypatch.setattr(leases, "_GOLD_DRAWS", _AlwaysGold())
    ws = Workspace.create(tmp_path / "ws", labels=list(LABELS), task="multi-label")
    rows = [
        {"id": "g0", "text": "money back and a login problem", "labels": ["refund", "account"]},
        {"id": "p0", "text": "an invoice"},
    ]
    (tmp_path / "gold.jsonl").write_text(json.dumps(rows[0]) + "\n")
    (tmp_path / "pool.jsonl").write_text(json.dumps(rows[1]) + "\n")
    ws.import_file(tmp_path / "pool.jsonl", id_field="id")
    ws.import_file(tmp_path / "gold.jsonl", id_field="id", label_field="labels", split="gold")
    ws.config = replace(ws.config, overlap=2, gold_rate=0.5)
    write_config(ws.root, ws.config)
    answers = {
        "ann": {"g0": ["billing", "account"], "p0": ["billing"]},
        "bob": {"g0": ["refund"], "p0": ["refund", "account"]},
    }
    for name, mine in answers.items():
        ws.add_user(name)
        while (item := ws.next_item(name)) is not None:
            ws.annotate(item.item_id, name, mine[item.external_id])
    found = {p.labels: (p.gold, p.people) for p in ws.confused_pairs()}
    # ann: billing in place of refund on g0 (account right; bob only left account out);
    # p0: billing against refund and account
    assert found == {("billing", "refund"): (1, 1), ("billing", "account"): (0, 1)}
    ws.close()
