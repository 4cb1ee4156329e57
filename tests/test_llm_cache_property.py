"""The LLM LF's kept answers and votes against a recomputation from scratch, after any random
sequence of runs (with budgets and server failures), guideline edits, model changes, new items
(some with a text seen before) and decisions that become few-shot examples, in single-label
and multi-label workspaces (where each label's LF votes present or absent).

After every step: each item's vote is the parse of the answer kept for its current prompt
version (the version it is asked under, an example's own item without that example), and it
has none without such an answer; every kept answer's vote is the parse of its reply; every
successful request was kept (none lost) and none was made twice (same model, same messages);
after a run without budget or failures every item has its answer.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.annotation import guidelines
from labeling.config_tables import LLMSettings
from labeling.context import Context
from labeling.store import labelsets
from labeling.store.models import REMOVED, Item, LabelingFunction, LFVote, LLMAnswer
from labeling.weak.llm import answer_key, lf_names, run_llm
from labeling.weak.llm_client import ChatClient
from labeling.weak.llm_prompt import PromptSet, parse_answer
from labeling.weak.llm_shots import decided_shots
from labeling.weak.votes import ABSENT_MARK
from tests.fake_llm import completion, fake_llm

LABELS = ("spam", "ham")
WORDS = ("pills", "lunch", "free", "meeting", "win")
FEW_SHOT = 2
_EXAMPLES = itertools.count()

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("run"), st.sampled_from([0, 1, 2, 3, 5]), st.integers(0, 4)),
        st.tuples(st.just("edit"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("model"), st.sampled_from(["m1", "m2"]), st.just(0)),
        st.tuples(st.just("add"), st.integers(0, 24), st.integers(1, 3)),
        st.tuples(st.just("decide"), st.integers(0, 20), st.sampled_from(LABELS)),
    ),
    min_size=3,
    max_size=10,
)


class _Server:
    """Answers that change from request to request (so only the kept answer predicts a vote),
    failures for the texts a run says, and a log of the successful requests."""

    def __init__(self) -> None:
        self.count = 0
        self.failing = -1
        self.model = "m1"
        self.succeeded: list[tuple[str, str]] = []

    def __call__(self, prompt: str):
        text = prompt.rsplit("\n", 1)[-1]
        if _bucket(text) == self.failing:
            return 500, "down", 0
        self.count += 1
        self.succeeded.append((self.model, prompt))
        reply = ("spam", "Ham.", "spam or ham", "ham, spam", "none")[self.count % 5]
        return 200, completion(reply), 0


def _bucket(text: str) -> int:
    return hashlib.sha256(text.encode()).digest()[0] % 4


def _text(k: int) -> str:
    return f"{WORDS[k % len(WORDS)]} {k // len(WORDS)}"


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS, task=st.sampled_from(["single-label", "multi-label"]))
def test_kept_answers_and_votes_equal_a_recomputation(
    tmp_path_factory, backend, request, steps, task
):
    root = tmp_path_factory.mktemp("llm")
    url = None
    if backend != "sqlite":  # a fresh database per example
        url = request.getfixturevalue("postgres_server").create_database(f"llm{next(_EXAMPLES)}")
    ws = Workspace.create(root / "ws", labels=LABELS, db_url=url, task=task)
    try:
        ws.add_user("lead", role="lead")
        ws.add_user("eng", role="engineer")
        pool = root / "pool.csv"
        pool.write_text("id,text\n" + "".join(f"p{k},{_text(k)}\n" for k in range(4)))
        ws.import_file(pool, id_field="id")
        gold = root / "gold.csv"
        gold.write_text("id,text,label\ng0,pills 0,spam\ng1,lunch 9,ham\n")  # a set of one
        ws.import_file(gold, id_field="id", label_field="label", split="gold")
        answer = _Server()
        with fake_llm(answer) as server:
            _run_steps(ws, root, steps, answer, server.url)
    finally:
        ws.close()


def _run_steps(ws: Workspace, root, steps, answer: _Server, url: str) -> None:
    added = itertools.count()
    for kind, a, b in steps:
        if kind == "run":
            answer.failing = b  # 4: no failures
            llm = LLMSettings(url, answer.model, max_calls=a, concurrency=2, few_shot=FEW_SHOT)
            context = Context(ws.root, replace(ws.config, llm=llm), ws.engine, ws.db_url)
            client = ChatClient(url, answer.model, api_key=None, retries=0, sleep=lambda _s: None)
            report = run_llm(context, client=client)
            assert report["calls"] <= (a or report["calls"])
            _check(ws, answer, complete=a == 0 and report["failed"] == 0)
        elif kind == "edit":
            ws.edit_guidelines({"labels": {"spam": {"definition": f"Ads {a}."}}}, by="eng")
        elif kind == "model":
            answer.model = a
        elif kind == "add":
            path = root / f"add{next(added)}.csv"
            rows = "".join(f"n{path.stem}_{k},{_text(a + k)}\n" for k in range(b))
            path.write_text("id,text\n" + rows)
            ws.import_file(path, id_field="id")
        else:
            with Session(ws.engine) as session:
                ids = session.exec(
                    select(Item.id).where(Item.split == "pool").order_by(col(Item.id))
                ).all()
            ws.adjudicate(int(ids[a % len(ids)] or 0), [b] if ws.multilabel else b, lead="lead")


def _check(ws: Workspace, answer: _Server, *, complete: bool) -> None:
    multilabel = ws.multilabel
    with Session(ws.engine) as session:
        guides = guidelines.current(session, ws.labels)
        shots = decided_shots(session, ws.labels, multilabel=multilabel, limit=FEW_SHOT)
        items = session.exec(select(Item.id, Item.text).where(Item.split != REMOVED)).all()
        kept = {row.key: row for row in session.exec(select(LLMAnswer)).all()}
        stored = session.exec(
            select(LabelingFunction.name, LFVote.item_id, LFVote.label).join(
                LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id)
            )
        ).all()
    votes: dict[str, dict[int, str]] = {name: {} for name in lf_names(LABELS, multilabel)}
    for name, item_id, label in stored:
        votes[name][item_id] = label
    prompts = PromptSet(ws.labels, guides, multilabel=multilabel, shots=shots)
    expected: dict[str, dict[int, str]] = {name: {} for name in lf_names(LABELS, multilabel)}
    for item_id, text in items:
        text_hash = hashlib.sha256(text.encode()).hexdigest()
        row = kept.get(answer_key(prompts.version_for(text), answer.model, text_hash))
        if complete:
            assert row is not None, f"no answer kept for {text!r}"
        vote = parse_answer(row.reply, LABELS, multilabel=multilabel) if row else None
        if vote is not None and not multilabel:
            expected["llm"][int(item_id or 0)] = vote
        elif vote is not None:
            for label in LABELS:
                held = label in labelsets.decode(vote)
                expected[f"llm:{label}"][int(item_id or 0)] = label if held else ABSENT_MARK + label
    assert votes == expected
    assert all(
        row.vote == parse_answer(row.reply, LABELS, multilabel=multilabel) for row in kept.values()
    )
    assert len(set(answer.succeeded)) == len(answer.succeeded)  # none asked twice
    assert len(kept) == len(answer.succeeded)  # none lost
