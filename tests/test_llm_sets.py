"""The LLM labelling function in a multi-label workspace: the answer is a set, read strictly,
stored as one LF per label voting present or absent (read by the per-label label models and
``lf analyze``), scored on gold by exact sets and per label, and pre-selected as a suggestion;
the key appears nowhere."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.config import write_config
from labeling.config_tables import LLMSettings
from labeling.store import labelsets
from labeling.store.models import Item, LabelingFunction, LFVote, LLMAnswer
from labeling.weak.llm import lf_names, run_llm
from labeling.weak.votes import ABSENT_MARK
from tests.fake_llm import completion, fake_llm

LABELS = ("billing", "refund", "bug")
KEY = "sk-fake-sets-0123456789abcdef"


def _answer(prompt: str):
    """Sets by words in the text: "invoice" billing, "money" refund, "crash" bug; "hello" is
    the empty set; "???" an unreadable answer."""
    text = prompt.rsplit("\n", 1)[-1]
    if "???" in text:
        return 200, completion("billing or maybe bug"), 0
    names = [
        name
        for word, name in (("invoice", "billing"), ("money", "refund"), ("crash", "bug"))
        if word in text
    ]
    return 200, completion(", ".join(n.upper() for n in names) if names else "None."), 0


def _workspace(tmp_path, url: str, db_url: str | None = None, **llm) -> Workspace:
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, task="multi-label", db_url=db_url)
    pool = tmp_path / "pool.csv"
    texts = [
        "invoice wrong",
        "money back for invoice",
        "app crash",
        "hello there",
        "??? what",
        "crash and money",
    ]
    pool.write_text("id,text\n" + "".join(f"p{i},{t}\n" for i, t in enumerate(texts)))
    ws.import_file(pool, id_field="id")
    gold = tmp_path / "gold.csv"
    gold.write_text(
        "id,text,labels\n"
        "g1,invoice twice,billing\n"
        "g2,money for crash,refund|bug\n"
        "g3,hello,[]\n"
        "g4,invoice crash,billing\n"
    )
    ws.import_file(gold, id_field="id", label_field="labels", split="gold")
    write_config(ws.root, replace(ws.config, llm=LLMSettings(url, "tiny", **llm)))
    ws.close()
    return Workspace.open(tmp_path / "ws", db_url=db_url)


def _ids(ws: Workspace) -> dict[int, str]:
    """Row id -> external id."""
    with Session(ws.engine) as session:
        return dict(session.exec(select(Item.id, Item.external_id)).all())  # type: ignore[arg-type]


def _lf_votes(ws: Workspace) -> dict[str, dict[str, str]]:
    """LF name -> item external id -> stored vote."""
    with Session(ws.engine) as session:
        rows = session.exec(
            select(LabelingFunction.name, LFVote.item_id, LFVote.label).join(
                LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id)
            )
        ).all()
    ids = _ids(ws)
    out: dict[str, dict[str, str]] = {}
    for name, item_id, label in rows:
        out.setdefault(name, {})[ids[item_id]] = label
    return out


def test_a_set_answer_votes_present_and_absent_per_label(tmp_path, db_url, monkeypatch):
    monkeypatch.setenv("LLM_KEY", KEY)
    with fake_llm(_answer, key=KEY) as server:
        ws = _workspace(tmp_path, server.url, db_url, api_key_env="LLM_KEY")
        report = run_llm(ws)
        assert (report["calls"], report["votes"], report["abstained"]) == (10, 9, 1)
        assert "separated by commas" in server.requests[0]["body"]["messages"][0]["content"]
        # exact sets on gold: g1, g2 and g3 right; g4 answered {billing, bug} against {billing}
        assert report["gold_n"] == 4 and report["gold_accuracy"] == 0.75
        assert report["gold_per_label"] == {"billing": 1.0, "refund": 1.0, "bug": 0.75}
        assert report["new_votes"] == 9 * 3
        again = run_llm(ws)
        assert (again["calls"], again["cached"], again["new_votes"]) == (0, 10, 0)
    votes = _lf_votes(ws)
    assert (
        sorted(votes) == sorted(lf_names(LABELS, True)) == ["llm:billing", "llm:bug", "llm:refund"]
    )
    assert votes["llm:billing"]["p1"] == "billing"
    assert votes["llm:refund"]["p1"] == "refund"
    assert votes["llm:bug"]["p1"] == ABSENT_MARK + "bug"
    assert all(
        v.startswith(ABSENT_MARK) for lf in votes.values() for k, v in lf.items() if k == "p3"
    )
    assert all("p4" not in lf for lf in votes.values())  # an unreadable answer: no vote at all
    with Session(ws.engine) as session:
        kept = {a.reply: a.vote for a in session.exec(select(LLMAnswer)).all()}
    assert kept["BILLING, REFUND"] == labelsets.encode(["billing", "refund"], LABELS)
    assert kept["None."] == "[]" and kept["billing or maybe bug"] is None
    ws.close()


def test_the_label_models_and_the_analysis_read_the_set_votes(tmp_path, db_url):
    with fake_llm(_answer) as server:
        ws = _workspace(tmp_path, server.url, db_url)
        run_llm(ws)
    ws.add_rule({"kind": "keyword", "name": "invoice", "label": "billing", "keywords": ["invoice"]})
    ws.apply_lfs()
    assert len(_lf_votes(ws)["llm:bug"]) == 9  # lf apply leaves the LLM's votes alone
    fitted = ws.fit_weak_labels()
    assert fitted["weak_labels"] > 0 and set(fitted["labels"]) == set(LABELS)
    rows = [r for r in ws.lf_analysis()["lfs"] if r["lf"].startswith("llm:")]
    assert {(r["lf"], r["direction"]) for r in rows} >= {
        ("llm:billing", "present"),
        ("llm:billing", "absent"),
        ("llm:bug", "absent"),
    }
    billing = next(r for r in rows if (r["lf"], r["direction"]) == ("llm:billing", "present"))
    assert billing["gold_n"] == 2 and billing["gold_accuracy"] == 1.0
    listed = {r["name"]: r for r in ws.list_lfs()}
    assert listed["llm:refund"]["kind"] == "llm"
    assert listed["llm:refund"]["polarity"] == ["refund", "¬refund"]
    ws.close()


def test_a_guidelines_edit_replaces_the_votes_of_every_label(tmp_path):
    with fake_llm(_answer) as server:
        ws = _workspace(tmp_path, server.url)
        first = run_llm(ws)
        ws.add_user("eng", role="engineer")
        ws.edit_guidelines({"labels": {"bug": {"definition": "Crashes."}}}, by="eng")
        again = run_llm(ws)
        assert again["calls"] == 10 and again["prompt_version"] != first["prompt_version"]
    with Session(ws.engine) as session:
        versions = set(session.exec(select(LFVote.lf_version)).all())
        current = set(session.exec(select(LabelingFunction.version)).all())
    assert versions == current and len(versions) == 1
    assert sum(len(v) for v in _lf_votes(ws).values()) == 9 * 3
    ws.close()


@pytest.mark.parametrize(("text", "expected"), [("app crash", ["bug"]), ("hello there", [])])
def test_the_llm_suggestion_preselects_its_set(tmp_path, db_url, text, expected):
    with fake_llm(_answer) as server:
        ws = _workspace(tmp_path, server.url, db_url)
        run_llm(ws)
    write_config(ws.root, replace(ws.config, suggestions="llm"))
    ws.close()
    ws = Workspace.open(tmp_path / "ws", db_url=db_url)
    ws.add_user("ann")
    with Session(ws.engine) as session:
        by_text = {t: i for i, t in session.exec(select(Item.id, Item.text)).all()}
    shown = ws.suggestion(by_text[text], "ann")
    assert (shown.value, shown.source) == (labelsets.encode(expected, LABELS), "llm")
    assert ws.suggestion(by_text["??? what"], "ann").value is None  # it abstained: no guess
    ws.close()


def test_the_key_is_nowhere_after_a_set_run(tmp_path, monkeypatch, capsys):
    from typer.testing import CliRunner

    from labeling.cli.main import app

    monkeypatch.setenv("LLM_KEY", KEY)
    with fake_llm(_answer, key=KEY) as server:
        ws = _workspace(tmp_path, server.url, api_key_env="LLM_KEY")
        ws.close()
        done = CliRunner().invoke(app, ["lf", "llm", "run", "-w", str(tmp_path / "ws"), "--json"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["gold_per_label"]["billing"] == 1.0
        listed = CliRunner().invoke(app, ["lf", "analyze", "-w", str(tmp_path / "ws"), "--json"])
    ws = Workspace.open(tmp_path / "ws")
    with Session(ws.engine) as session:
        stored = json.dumps(
            [r.model_dump(mode="json") for r in session.exec(select(LLMAnswer)).all()]
            + [r.model_dump(mode="json") for r in session.exec(select(LabelingFunction)).all()]
        )
    outputs = [done.output, listed.output, stored, capsys.readouterr().out]
    outputs.append((tmp_path / "ws" / "labelloop.toml").read_text())
    assert all(KEY not in text for text in outputs)
    ws.close()


def test_few_shot_sets_take_turns_by_label_and_the_empty_set_last(tmp_path, db_url):
    with fake_llm(_answer) as server:
        ws = _workspace(tmp_path, server.url, db_url, few_shot=4)
        ws.add_user("lead", role="lead")
        by_id = _ids(ws)
        row = {external: item_id for item_id, external in by_id.items()}
        ws.adjudicate(row["p3"], [], lead="lead")
        ws.adjudicate(row["p1"], ["billing", "refund"], lead="lead")
        ws.adjudicate(row["p0"], ["billing"], lead="lead")
        ws.adjudicate(row["p2"], ["bug"], lead="lead")
        run_llm(ws)
        asked = next(
            [m["content"] for m in r["body"]["messages"][1:]]
            for r in server.requests
            if r["body"]["messages"][-1]["content"] == "??? what"
        )
    # billing's turn: p1 (decided first); refund's: p1 again, so its next (none); bug: p2;
    # the empty set: p3; then billing again: p0
    assert asked == [
        "money back for invoice",
        "billing, refund",
        "app crash",
        "bug",
        "hello there",
        "none",
        "invoice wrong",
        "billing",
        "??? what",
    ]
    ws.close()
