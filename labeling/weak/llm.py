"""The LLM labelling function: ask an OpenAI-compatible server to label items, keep every
answer, and store the readable ones as the votes of an LF named ``llm``.

A run (``labelloop lf llm run``) asks about the items whose answer is not kept yet under the
current prompt (labeling.weak.llm_prompt: the labels and the guidelines), ``concurrency`` at a
time, within ``max_calls`` and ``max_tokens`` (``[llm]`` in labelloop.toml). Answers are kept in
``llmanswer`` by (prompt version, model, text digest), so a second run costs nothing and a
guidelines edit asks again. ``--sample N`` asks about N gold items only and reports the
accuracy and the cost first, before a run over the pool. The key is read from the variable
``api_key_env`` names and goes only into the request's header.

Single-label workspaces for now: a set answer needs one LF per label (the next step).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from labeling.annotation import guidelines
from labeling.config import LLMSettings
from labeling.context import Context
from labeling.errors import BadInput
from labeling.store import db
from labeling.store.models import REMOVED, Item, LabelingFunction, LFVote, LLMAnswer
from labeling.weak.llm_client import ChatClient, KeyRefused, LLMError, Reply
from labeling.weak.llm_prompt import build_messages, parse_answer, prompt_version
from labeling.weak.votes import mark_lfs_changed

LF_NAME = "llm"
LF_KIND = "llm"
ANSWER_TOKENS = 16  # one label name, with room for a stray word
LOOKUP_CHUNK = 500


@dataclass
class _Job:
    item_id: int
    key: str
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


def _answer_key(prompt: str, model: str, text_hash: str) -> str:
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


def _kept(session: Session, keys: list[str]) -> dict[str, LLMAnswer]:
    found: dict[str, LLMAnswer] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        for row in session.exec(select(LLMAnswer).where(col(LLMAnswer.key).in_(chunk))).all():
            found[row.key] = row
    return found


def _ask(
    client: ChatClient,
    jobs: list[_Job],
    settings: LLMSettings,
    messages_for: Callable[[str], list[dict[str, str]]],
) -> tuple[dict[str, Reply], int, int]:
    """Ask about ``jobs`` within the budget; (replies by key, failed, not asked). A refused
    key stops the run at once (:class:`KeyRefused` propagates)."""
    limit = settings.max_calls or len(jobs)
    todo = jobs[:limit]
    not_asked = len(jobs) - len(todo)
    replies: dict[str, Reply] = {}
    failed = 0
    tokens = 0
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        # Submitted a window at a time, so the token budget can stop the rest.
        window = settings.concurrency * 4
        for start in range(0, len(todo), window):
            if settings.max_tokens and tokens >= settings.max_tokens:
                not_asked += len(todo) - start
                break
            batch = todo[start : start + window]
            futures = [
                pool.submit(client.complete, messages_for(job.text), max_tokens=ANSWER_TOKENS)
                for job in batch
            ]
            for job, future in zip(batch, futures, strict=True):
                try:
                    reply = future.result()
                except KeyRefused:
                    for other in futures:
                        other.cancel()
                    raise
                except LLMError:
                    failed += 1
                    continue
                replies[job.key] = reply
                tokens += reply.tokens
    return replies, failed, not_asked


def run_llm(
    ws: Context, *, sample: int | None = None, client: ChatClient | None = None
) -> dict[str, Any]:
    """Label the items with the LLM (``sample``: N gold items only) and store its votes; the
    report ``{"calls", "cached", "votes", "abstained", "failed", "not_asked", "tokens",
    "gold_accuracy", "gold_n", "prompt_version", "seconds"}``. Why: one function on purpose,
    it reads the run top to bottom."""
    ws.require_single_label("the LLM labelling function")
    if sample is not None and sample < 1:
        raise BadInput(f"option '--sample': expected at least 1 item, found {sample}")
    settings, key = _settings(ws)
    started = time.perf_counter()
    with db.read_session(ws.engine) as session:
        guides = guidelines.current(session, ws.labels)
        items = _items(session, sample)
    prompt = prompt_version(ws.labels, guides)
    version = hashlib.sha256(f"{prompt}\x00{settings.model}".encode()).hexdigest()[:16]
    jobs = []
    for item_id, text, _split in items:
        text_hash = hashlib.sha256(text.encode()).hexdigest()
        jobs.append(_Job(item_id, _answer_key(prompt, settings.model, text_hash), text, text_hash))
    with db.read_session(ws.engine) as session:
        kept = _kept(session, [job.key for job in jobs])
    missing = [job for job in jobs if job.key not in kept]
    client = client or ChatClient(
        settings.base_url,
        settings.model,
        api_key=key,
        key_name=settings.api_key_env,
        timeout=settings.timeout_s,
    )
    replies, failed, not_asked = _ask(
        client, missing, settings, lambda text: build_messages(text, ws.labels, guides)
    )
    by_key = {job.key: job for job in jobs}
    with db.write_session(ws.engine) as session:
        parsed = {k: parse_answer(reply.text, ws.labels) for k, reply in replies.items()}
        for answer_key, reply in replies.items():
            job = by_key[answer_key]
            session.add(
                LLMAnswer(
                    key=answer_key,
                    prompt_version=prompt,
                    model=settings.model,
                    text_hash=job.text_hash,
                    reply=reply.text,
                    vote=parsed[answer_key],
                    tokens=reply.tokens,
                )
            )
        session.flush()
        votes = {
            job.item_id: kept[job.key].vote if job.key in kept else parsed[job.key]
            for job in jobs
            if job.key in kept or job.key in replies
        }
        stored = _store_votes(session, version, votes)
    return _report(ws, items, votes, kept, replies, failed, not_asked, prompt, started, stored)


def _store_votes(session: Session, version: str, votes: dict[int, str | None]) -> int:
    """The ``llm`` LF's row (made on the first run) and its votes at ``version``; votes of an
    older version are replaced."""
    row = session.exec(select(LabelingFunction).where(LabelingFunction.name == LF_NAME)).first()
    if row is None:
        row = LabelingFunction(name=LF_NAME, kind=LF_KIND, spec="{}", version=version)
    elif row.kind != LF_KIND:
        raise BadInput(
            f"an LF named {LF_NAME!r} exists already ({row.kind}); rename it to run the LLM LF"
        )
    if row.version != version:
        session.execute(delete(LFVote).where(col(LFVote.lf_id) == row.id))
    row.version = version
    row.applied_version = version
    session.add(row)
    session.flush()
    assert row.id is not None
    have = set(session.exec(select(LFVote.item_id).where(LFVote.lf_id == row.id)).all())
    added = 0
    for item_id, vote in votes.items():
        if vote is not None and item_id not in have:
            session.add(LFVote(lf_id=row.id, item_id=item_id, lf_version=version, label=vote))
            added += 1
    if added:
        mark_lfs_changed(session)
    return added


def _report(
    ws: Context,
    items: list[tuple[int, str, str]],
    votes: dict[int, str | None],
    kept: dict[str, LLMAnswer],
    replies: dict[str, Reply],
    failed: int,
    not_asked: int,
    prompt: str,
    started: float,
    stored: int,
) -> dict[str, Any]:
    gold_ids = [item_id for item_id, _t, split in items if split == "gold"]
    with db.read_session(ws.engine) as session:
        gold = dict(
            session.exec(
                select(Item.id, Item.gold_label).where(col(Item.id).in_(gold_ids or [-1]))
            ).all()
        )
    scored = [(votes[i], gold[i]) for i in gold_ids if votes.get(i) is not None and gold.get(i)]
    right = sum(vote == truth for vote, truth in scored)
    return {
        "calls": len(replies),
        "cached": len(kept),
        "votes": sum(v is not None for v in votes.values()),
        "abstained": sum(v is None for v in votes.values()),
        "failed": failed,
        "not_asked": not_asked,
        "tokens": sum(r.tokens for r in replies.values()),
        "gold_accuracy": round(right / len(scored), 4) if scored else None,
        "gold_n": len(scored),
        "new_votes": stored,
        "prompt_version": prompt,
        "seconds": round(time.perf_counter() - started, 3),
    }
