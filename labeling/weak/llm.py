"""The LLM labelling function: ask an OpenAI-compatible server to label items, keep every
answer, and store the readable ones as LF votes.

A run (``labelloop lf llm run``) asks about the items whose answer is not kept yet under the
current prompt (labeling.weak.llm_prompt: the labels, the guidelines and the few-shot examples
of labeling.weak.llm_shots), ``concurrency`` at a time, within ``max_calls`` and ``max_tokens``
(``[llm]`` in labelloop.toml). Answers are kept in ``llmanswer`` by (prompt version, model,
text digest), so a second run costs nothing and a guidelines edit asks again. ``--sample N``
asks about N gold items only and reports the accuracy and the cost first, before a run over
the pool. The key is read from the variable ``api_key_env`` names and goes only into the
request's header.

In a single-label workspace the votes are those of one LF, ``llm``. In a multi-label one an
answer is a set, and it votes as multi-label LFs do (labeling.weak.multilabel): one LF per
label, ``llm:LABEL``, voting present when the set holds the label and absent when it does not,
so the per-label label models and ``lf analyze`` read it like any other.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from labeling.annotation import guidelines
from labeling.config_tables import LLMSettings
from labeling.context import Context
from labeling.errors import BadInput
from labeling.store import db, labelsets
from labeling.store.bulk import bulk_insert
from labeling.store.models import REMOVED, Item, LabelingFunction, LFVote, LLMAnswer
from labeling.weak.llm_client import ChatClient, KeyRefused, LLMError, Reply
from labeling.weak.llm_prompt import PromptSet, parse_answer
from labeling.weak.llm_shots import decided_shots
from labeling.weak.votes import ABSENT_MARK, CHUNK, mark_lfs_changed

LF_NAME = "llm"
LF_KIND = "llm"
ANSWER_TOKENS = 16  # one label name, with room for a stray word
SET_TOKENS_PER_LABEL = 8  # a set names up to every label
LOOKUP_CHUNK = 500


def lf_names(labels: tuple[str, ...], multilabel: bool) -> list[str]:
    """The names the LLM LF's votes are stored under: ``llm``, or ``llm:LABEL`` per label."""
    return [f"{LF_NAME}:{label}" for label in labels] if multilabel else [LF_NAME]


@dataclass
class _Job:
    item_id: int
    key: str
    prompt: str
    text: str
    text_hash: str


def _settings(ws: Context) -> tuple[LLMSettings, str | None]:
    settings = ws.config.llm
    if settings is None:
        raise BadInput(
            "no [llm] table in labelloop.toml: add base_url and model (and api_key_env for a "
            "server that needs a key); see docs/assisted.md"
        )
    if not settings.api_key_env:
        return settings, None
    key = os.environ.get(settings.api_key_env)
    if not key:
        raise BadInput(
            f"[llm] api_key_env: the environment variable {settings.api_key_env} is not set "
            "(it should hold the server's key)"
        )
    return settings, key


def answer_key(prompt: str, model: str, text_hash: str) -> str:
    """``llmanswer.key``: the digest of (prompt version, model, text digest)."""
    return hashlib.sha256(f"{prompt}\x00{model}\x00{text_hash}".encode()).hexdigest()


def _items(session: Session, sample: int | None) -> list[tuple[int, str, str]]:
    """(id, text, split) of the items to label: a sample of gold items in the seeded order, or
    every pool and gold item."""
    query = select(Item.id, Item.text, Item.split).where(Item.split != REMOVED)
    if sample is not None:
        query = query.where(Item.split == "gold").order_by(col(Item.rank)).limit(sample)
    else:
        query = query.order_by(col(Item.id))
    return [(int(i or 0), t, s) for i, t, s in session.exec(query).all()]


def _jobs(items: list[tuple[int, str, str]], prompts: PromptSet, model: str) -> list[_Job]:
    """Each item's question: the prompt version it is asked under and its answer's key."""
    jobs = []
    for item_id, text, _split in items:
        text_hash = hashlib.sha256(text.encode()).hexdigest()
        prompt = prompts.version_for(text)
        jobs.append(_Job(item_id, answer_key(prompt, model, text_hash), prompt, text, text_hash))
    return jobs


def _kept(session: Session, keys: list[str]) -> dict[str, str | None]:
    """The kept answers' votes by key (columns, not rows: a cached run reads 10,000 of them
    in a few hundredths of a second instead of ~0.8 s building ORM objects)."""
    found: dict[str, str | None] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        query = select(LLMAnswer.key, LLMAnswer.vote).where(col(LLMAnswer.key).in_(chunk))
        found.update(session.exec(query).all())  # type: ignore[arg-type]
    return found


def _ask(
    client: ChatClient, jobs: list[_Job], settings: LLMSettings, prompts: PromptSet
) -> tuple[dict[str, Reply], int, int]:
    """Ask about ``jobs`` within the budget, ``concurrency`` requests in flight at all times;
    (replies by key, failed, not asked). A refused key stops the run at once
    (:class:`KeyRefused` propagates)."""
    limit = settings.max_calls or len(jobs)
    todo = jobs[:limit]
    replies: dict[str, Reply] = {}
    failed = 0
    tokens = 0
    answer_tokens = ANSWER_TOKENS + (
        SET_TOKENS_PER_LABEL * len(prompts.labels) if prompts.multilabel else 0
    )
    asked = 0
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        flying: dict[Future[Reply], _Job] = {}
        while asked < len(todo) or flying:
            # A new request only while the token budget lasts: the rest is not asked.
            within = not settings.max_tokens or tokens < settings.max_tokens
            while within and asked < len(todo) and len(flying) < settings.concurrency:
                job = todo[asked]
                future = pool.submit(
                    client.complete, prompts.messages(job.text), max_tokens=answer_tokens
                )
                flying[future] = job
                asked += 1
            if not flying:
                break
            done, _ = wait(flying, return_when=FIRST_COMPLETED)
            for future in done:
                job = flying.pop(future)
                try:
                    reply = future.result()
                except KeyRefused:
                    for other in flying:
                        other.cancel()
                    raise
                except LLMError:
                    failed += 1
                    continue
                replies[job.key] = reply
                tokens += reply.tokens
    return replies, failed, len(jobs) - asked


def run_llm(
    ws: Context, *, sample: int | None = None, client: ChatClient | None = None
) -> dict[str, Any]:
    """Label the items with the LLM (``sample``: N gold items only) and store its votes; the
    report ``{"calls", "cached", "votes", "abstained", "failed", "not_asked", "tokens",
    "gold_accuracy", "gold_n", "prompt_version", "seconds"}`` (and ``gold_per_label`` for
    sets). Why: one function on purpose, it reads the run top to bottom."""
    if sample is not None and sample < 1:
        raise BadInput(f"option '--sample': expected at least 1 item, found {sample}")
    settings, key = _settings(ws)
    started = time.perf_counter()
    with db.read_session(ws.engine) as session:
        guides = guidelines.current(session, ws.labels)
        shots = decided_shots(session, ws.labels, multilabel=ws.multilabel, limit=settings.few_shot)
        items = _items(session, sample)
    prompts = PromptSet(ws.labels, guides, multilabel=ws.multilabel, shots=shots)
    version = hashlib.sha256(f"{prompts.version}\x00{settings.model}".encode()).hexdigest()[:16]
    jobs = _jobs(items, prompts, settings.model)
    with db.read_session(ws.engine) as session:
        kept = _kept(session, [job.key for job in jobs])
    # Two items with one text share one answer: ask once.
    missing = list({job.key: job for job in jobs if job.key not in kept}.values())
    client = client or ChatClient(
        settings.base_url,
        settings.model,
        api_key=key,
        key_name=settings.api_key_env,
        timeout=settings.timeout_s,
    )
    replies, failed, not_asked = _ask(client, missing, settings, prompts)
    by_key = {job.key: job for job in missing}
    parsed = {
        k: parse_answer(reply.text, ws.labels, multilabel=ws.multilabel)
        for k, reply in replies.items()
    }
    with db.write_session(ws.engine) as session:
        for answer_key_, reply in replies.items():
            job = by_key[answer_key_]
            session.add(
                LLMAnswer(
                    key=answer_key_,
                    prompt_version=job.prompt,
                    model=settings.model,
                    text_hash=job.text_hash,
                    reply=reply.text,
                    vote=parsed[answer_key_],
                    tokens=reply.tokens,
                )
            )
        session.flush()
        votes = {
            job.item_id: kept[job.key] if job.key in kept else parsed[job.key]
            for job in jobs
            if job.key in kept or job.key in replies
        }
        stored = _store_votes(session, version, _lf_votes(ws, votes))
    cached = sum(job.key in kept for job in jobs)
    report = _report(ws, items, votes, replies, failed, not_asked, started)
    return report | {"cached": cached, "new_votes": stored, "prompt_version": prompts.version}


def _lf_votes(
    ws: Context, votes: dict[int, str | None]
) -> list[tuple[str, str | None, dict[int, str]]]:
    """(LF name, its label, its votes by item) to store: the answers themselves for one label;
    for sets, per label present (the set holds it) or absent (it does not)."""
    answered = {item_id: vote for item_id, vote in votes.items() if vote is not None}
    if not ws.multilabel:
        return [(LF_NAME, None, answered)]
    read = {vote: labelsets.decode(vote) for vote in set(answered.values())}  # few distinct
    sets = {item_id: read[vote] for item_id, vote in answered.items()}
    return [
        (
            name,
            label,
            {i: label if label in names else ABSENT_MARK + label for i, names in sets.items()},
        )
        for name, label in zip(lf_names(ws.labels, True), ws.labels, strict=True)
    ]


def _store_votes(
    session: Session, version: str, per_lf: list[tuple[str, str | None, dict[int, str]]]
) -> int:
    """Each LF's row (made on the first run) and its votes at ``version``; votes of an older
    version are replaced. The number of votes added."""
    added = 0
    changed = False
    for name, label, votes in per_lf:
        row = session.exec(select(LabelingFunction).where(LabelingFunction.name == name)).first()
        if row is None:
            row = LabelingFunction(name=name, kind=LF_KIND, spec="{}", label=label, version=version)
        elif row.kind != LF_KIND:
            raise BadInput(
                f"an LF named {name!r} exists already ({row.kind}); rename it to run the LLM LF"
            )
        if row.version != version and row.id is not None:
            session.execute(delete(LFVote).where(col(LFVote.lf_id) == row.id))
            changed = True
        row.version = version
        row.applied_version = version
        session.add(row)
        session.flush()
        assert row.id is not None
        have = set(session.exec(select(LFVote.item_id).where(LFVote.lf_id == row.id)).all())
        new = [
            {"lf_id": row.id, "item_id": item_id, "lf_version": version, "label": vote}
            for item_id, vote in votes.items()
            if item_id not in have
        ]
        for start in range(0, len(new), CHUNK):
            bulk_insert(session, LFVote.__table__, new[start : start + CHUNK])  # type: ignore[attr-defined]
        added += len(new)
    if added or changed:
        mark_lfs_changed(session)
    return added


def _report(
    ws: Context,
    items: list[tuple[int, str, str]],
    votes: dict[int, str | None],
    replies: dict[str, Reply],
    failed: int,
    not_asked: int,
    started: float,
) -> dict[str, Any]:
    """The run's counts and its accuracy on the gold items it has votes for: the same label,
    or for sets the same set (and, per label, how often it is rightly in or out)."""
    gold_ids = [item_id for item_id, _t, split in items if split == "gold"]
    with db.read_session(ws.engine) as session:
        gold = dict(
            session.exec(
                select(Item.id, Item.gold_label).where(col(Item.id).in_(gold_ids or [-1]))
            ).all()
        )
    scored = [(votes[i], gold[i]) for i in gold_ids if votes.get(i) is not None and gold.get(i)]
    # One stored form per set (labeling.store.labelsets): equal strings are equal sets.
    right = sum(vote == truth for vote, truth in scored)
    report: dict[str, Any] = {
        "calls": len(replies),
        "cached": 0,
        "votes": sum(v is not None for v in votes.values()),
        "abstained": sum(v is None for v in votes.values()),
        "failed": failed,
        "not_asked": not_asked,
        "tokens": sum(r.tokens for r in replies.values()),
        "gold_accuracy": round(right / len(scored), 4) if scored else None,
        "gold_n": len(scored),
    }
    if ws.multilabel:
        pairs = [(labelsets.decode(v), labelsets.decode(t)) for v, t in scored if v and t]
        report["gold_per_label"] = {
            label: round(sum((label in v) == (label in t) for v, t in pairs) / len(pairs), 4)
            if pairs
            else None
            for label in ws.labels
        }
    return report | {"seconds": round(time.perf_counter() - started, 3)}
