"""The LLM labelling function against a fake server on 127.0.0.1: votes and abstains, answers
kept (a second run asks nothing), a guidelines edit asks again, the budget, a refused key, a
sample of gold first, and no key anywhere it could leak."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlmodel import Session, select

from labeling import Workspace
from labeling.config import write_config
from labeling.config_tables import LLMSettings
from labeling.errors import BadInput
from labeling.store.models import Annotation, Item, LFVote, LLMAnswer
from labeling.weak.llm import run_llm
from labeling.weak.llm_client import KeyRefused
from tests.fake_llm import completion, fake_llm

KEY = "sk-fake-abcdef0123456789"


def _answer(prompt: str):
    """spam for texts with "pills", ham for "lunch", an unreadable answer for the rest."""
    text = prompt.rsplit("\n", 1)[-1]
    if "pills" in text:
        return 200, completion("spam"), 0
    if "lunch" in text:
        return 200, completion("Ham."), 0
    return 200, completion("I am not sure, maybe spam"), 0


def _workspace(tmp_path, url: str, db_url: str | None = None, **llm) -> Workspace:
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], db_url=db_url)
    pool = tmp_path / "pool.csv"
    texts = [f"buy pills {i}" for i in range(6)] + [f"lunch at {i}" for i in range(4)] + ["hmm"]
    pool.write_text("id,text\n" + "".join(f"p{i},{t}\n" for i, t in enumerate(texts)))
    ws.import_file(pool, id_field="id")
    gold = tmp_path / "gold.csv"
    gold.write_text(
        "id,text,label\ng1,cheap pills now,spam\ng2,lunch today,ham\ng3,pills for lunch,ham\n"
    )
    ws.import_file(gold, id_field="id", label_field="label", split="gold")
    settings = LLMSettings(url, "tiny", **llm)
    write_config(ws.root, replace(ws.config, llm=settings))
    ws.close()
    return Workspace.open(tmp_path / "ws", db_url=db_url)


def _votes(ws: Workspace) -> dict[int, str]:
    with Session(ws.engine) as session:
        return {v.item_id: v.label for v in session.exec(select(LFVote)).all()}


def test_votes_abstains_and_a_second_run_asks_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_KEY", KEY)
    with fake_llm(_answer, key=KEY) as server:
        ws = _workspace(tmp_path, server.url, api_key_env="LLM_KEY", concurrency=3)
        first = run_llm(ws)
        assert (first["calls"], first["cached"], first["votes"], first["abstained"]) == (
            14,
            0,
            13,
            1,
        )
        assert first["gold_n"] == 3 and first["gold_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
        again = run_llm(ws)
        assert (again["calls"], again["cached"], again["new_votes"]) == (0, 14, 0)
        assert len(server.requests) == 14
    assert sorted(set(_votes(ws).values())) == ["ham", "spam"] and len(_votes(ws)) == 13
    rows = [r for r in ws.list_lfs() if r["name"] == "llm"]
    assert rows and rows[0]["kind"] == "llm"
    # an LF like any other: apply leaves it alone, the label model and the analysis read it
    ws.add_rule({"kind": "keyword", "name": "pills", "label": "spam", "keywords": ["pills"]})
    ws.apply_lfs()
    with Session(ws.engine) as session:
        assert len(session.exec(select(LFVote)).all()) == 13 + 8  # 8 texts hold "pills"
    fitted = ws.fit_weak_labels()
    assert fitted
    assert "llm" in json.dumps(ws.lf_analysis())
    ws.close()


def test_a_guidelines_edit_asks_again(tmp_path):
    with fake_llm(_answer) as server:
        ws = _workspace(tmp_path, server.url)
        run_llm(ws)
        ws.add_user("eng", role="engineer")
        ws.edit_guidelines({"labels": {"spam": {"definition": "Ads."}}}, by="eng")
        again = run_llm(ws)
        assert again["calls"] == 14 and again["cached"] == 0
        assert "Ads." in server.requests[-1]["body"]["messages"][0]["content"]
    ws.close()


def test_the_budget_stops_the_calls(tmp_path):
    with fake_llm(_answer) as server:
        ws = _workspace(tmp_path, server.url, max_calls=5)
        report = run_llm(ws)
        assert (report["calls"], report["not_asked"]) == (5, 9)
        assert len(server.requests) == 5
    ws.close()


def test_the_token_budget_stops_new_requests(tmp_path):
    with fake_llm(_answer) as server:  # 12 tokens an answer
        ws = _workspace(tmp_path, server.url, max_calls=0, max_tokens=30, concurrency=1)
        report = run_llm(ws)
        assert (report["calls"], report["tokens"], report["not_asked"]) == (3, 36, 11)
        following = run_llm(ws)  # the next run goes on with the rest
        assert (following["cached"], following["calls"]) == (3, 3)
    ws.close()


def test_a_sample_of_gold_first(tmp_path):
    with fake_llm(_answer) as server:
        ws = _workspace(tmp_path, server.url)
        report = run_llm(ws, sample=2)
        assert report["calls"] == 2 and report["gold_n"] == 2
        full = run_llm(ws)
        assert (full["calls"], full["cached"]) == (12, 2)  # the sample's answers are kept
    ws.close()


def test_failures_are_counted_and_asked_again_next_time(tmp_path):
    calls = {"n": 0}

    def flaky(prompt: str):
        calls["n"] += 1
        return (500, "down", 0) if "lunch" in prompt.rsplit("\n", 1)[-1] else _answer(prompt)

    with fake_llm(flaky) as server:
        ws = _workspace(tmp_path, server.url)
        from labeling.weak.llm_client import ChatClient

        client = ChatClient(server.url, "tiny", api_key=None, retries=1, sleep=lambda _s: None)
        report = run_llm(ws, client=client)
        assert report["failed"] == 6  # 4 pool and 2 gold texts with "lunch"
        with Session(ws.engine) as session:
            assert len(session.exec(select(LLMAnswer)).all()) == 8  # failures are not kept
    ws.close()


def test_a_refused_key_stops_the_run_and_leaks_nowhere(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLM_KEY", KEY)
    with fake_llm(_answer, key="another-key") as server:
        ws = _workspace(tmp_path, server.url, api_key_env="LLM_KEY")
        with pytest.raises(KeyRefused) as caught:
            run_llm(ws)
    assert "refused the key (the variable LLM_KEY)" in str(caught.value)
    assert KEY not in str(caught.value)
    assert _votes(ws) == {}
    with Session(ws.engine) as session:
        stored = json.dumps(
            [r.model_dump(mode="json") for r in session.exec(select(LLMAnswer)).all()]
        )
    assert KEY not in stored and KEY not in (ws.root / "labelloop.toml").read_text()
    assert KEY not in capsys.readouterr().out
    ws.close()


def test_setup_mistakes_are_named(tmp_path, monkeypatch):
    monkeypatch.delenv("LLM_KEY", raising=False)
    ws = _workspace(tmp_path, "http://127.0.0.1:9/v1", api_key_env="LLM_KEY")
    with pytest.raises(BadInput, match="the environment variable LLM_KEY is not set"):
        run_llm(ws)
    with pytest.raises(BadInput, match="option '--sample': expected at least 1"):
        run_llm(ws, sample=0)
    write_config(ws.root, replace(ws.config, llm=None))
    ws.close()
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(BadInput, match=r"no \[llm\] table in labelloop.toml"):
        run_llm(ws)
    ws.close()


def test_the_cli_reports_the_contract(tmp_path):
    from typer.testing import CliRunner

    from labeling.cli.main import app

    with fake_llm(_answer) as server:
        ws = _workspace(tmp_path, server.url)
        ws.close()
        done = CliRunner().invoke(
            app, ["lf", "llm", "run", "-w", str(tmp_path / "ws"), "--sample", "3", "--json"]
        )
        assert done.exit_code == 0, done.output
        report = json.loads(done.stdout)
        assert {"calls", "cached", "votes", "abstained", "gold_accuracy"} <= set(report)
        assert (report["calls"], report["gold_n"]) == (3, 3)
        human = CliRunner().invoke(app, ["lf", "llm", "run", "-w", str(tmp_path / "ws")])
        assert (
            human.exit_code == 0 and "11 calls" in human.stdout and "3 answers kept" in human.stdout
        )
        bad = CliRunner().invoke(
            app, ["lf", "llm", "run", "-w", str(tmp_path / "ws"), "--sample", "0"]
        )
        assert bad.exit_code == 2 and "--sample" in bad.stderr


def _row(ws: Workspace, external_id: str) -> int:
    with Session(ws.engine) as session:
        row = session.exec(select(Item.id).where(Item.external_id == external_id)).one()
    return int(row)


def _asked_with(server, text: str) -> list[str]:
    """The contents of the last request that asked about ``text`` (no system prompt)."""
    for request in reversed(server.requests):
        messages = request["body"]["messages"]
        if messages[-1]["content"] == text:
            return [m["content"] for m in messages[1:]]
    raise AssertionError(f"nothing asked about {text!r}")


def test_few_shot_examples_come_from_decisions_balanced_and_never_the_item(tmp_path, db_url):
    with fake_llm(_answer) as server:
        ws = _workspace(tmp_path, server.url, db_url, few_shot=3)
        ws.add_user("lead", role="lead")
        # decided in this order: three spam, then one ham; p4 is corrected to ham after
        for external_id, label in (("p0", "spam"), ("p1", "spam"), ("p2", "spam")):
            ws.adjudicate(_row(ws, external_id), label, lead="lead")
        ws.adjudicate(_row(ws, "p6"), "ham", lead="lead")
        with Session(ws.engine) as session:  # a decision on a gold item is never an example
            session.add(
                Annotation(
                    item_id=_row(ws, "g1"), annotator_id=1, label="spam", origin="adjudication"
                )
            )
            session.commit()
        first = run_llm(ws)
        # in turns across labels, oldest first: spam p0, ham p6, spam p1
        shots = ["buy pills 0", "spam", "lunch at 0", "ham", "buy pills 1", "spam"]
        assert _asked_with(server, "hmm") == [*shots, "hmm"]
        assert "cheap pills now" not in _asked_with(server, "hmm")  # the gold decision
        # an example's own item is asked without it, under a version of its own
        assert _asked_with(server, "buy pills 0") == [*shots[2:], "buy pills 0"]
        with Session(ws.engine) as session:
            versions = {a.prompt_version for a in session.exec(select(LLMAnswer)).all()}
        assert first["prompt_version"] in versions and len(versions) == 4
        # a decision that is not chosen (spam has its turn filled) changes nothing ...
        ws.adjudicate(_row(ws, "p3"), "spam", lead="lead")
        assert run_llm(ws)["calls"] == 0
        # ... one that is chosen (the ham example changes) makes a new prompt: asked again
        ws.adjudicate(_row(ws, "p6"), "spam", lead="lead")
        ws.adjudicate(_row(ws, "p7"), "ham", lead="lead")
        again = run_llm(ws)
        assert again["calls"] == 14 and again["prompt_version"] != first["prompt_version"]
        assert _asked_with(server, "hmm")[:4] == shots[:2] + ["lunch at 1", "ham"]
    ws.close()


def test_no_examples_by_default(tmp_path):
    with fake_llm(_answer) as server:
        ws = _workspace(tmp_path, server.url)
        ws.add_user("lead", role="lead")
        ws.adjudicate(_row(ws, "p0"), "spam", lead="lead")
        run_llm(ws)
        assert all(len(r["body"]["messages"]) == 2 for r in server.requests)
    ws.close()
