"""Keyword and regex rules: stored as rows of ``labelingfunction``, added, edited, switched on
or off and deleted by ``labelloop lf add-rule|edit-rule|delete`` or the LF page, and previewed
on the pool before they are stored.

A change to a rule changes the votes the label model reads, so it marks stored weak labels
stale (:func:`labeling.weak.votes.weak_labels_stale`). Code LFs live in files and are refused
here.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from sqlalchemy import delete, func
from sqlmodel import col, select

from labeling.context import Context
from labeling.errors import BadInput
from labeling.store import db, labelsets
from labeling.store.answers import human_labels
from labeling.store.models import Item, LabelingFunction, LFVote, utcnow
from labeling.weak.apply import item_frame
from labeling.weak.loading import load
from labeling.weak.votes import mark_lfs_changed
from weak_supervision import LFDefinitionError, apply_lfs, rule_from_spec


def _bind_rule(ws: Context, spec: dict[str, Any]) -> Any:
    """The rule of ``spec`` bound to the workspace's labels; a bad spec is :class:`BadInput`."""
    try:
        bound = rule_from_spec(spec).bind(ws.labels)
    except LFDefinitionError as exc:
        raise BadInput(str(exc)) from exc
    if bound.rule.absent and not ws.multilabel:
        raise BadInput(
            f"rule {bound.name!r} votes {bound.label!r} absent; absent votes need a multi-label "
            "workspace (in a single-label one, vote the other label instead)"
        )
    return bound


def add_rule(ws: Context, spec: dict[str, Any]) -> LabelingFunction:
    """Store a keyword or regex rule after checking it compiles and its label exists."""
    bound = _bind_rule(ws, spec)
    rule = bound.rule
    code = {lf.name for lf in load(ws).lfs if getattr(lf, "kind", "") == "code"}
    with db.write_session(ws.engine) as session:
        taken = session.exec(
            select(LabelingFunction).where(LabelingFunction.name == rule.name)
        ).first()
        if taken is not None or rule.name in code:
            raise BadInput(f"an LF named {rule.name!r} exists already; pick another name")
        row = LabelingFunction(
            name=rule.name,
            kind=rule.spec["kind"],
            spec=json.dumps(rule.spec),
            label=rule.label,
            version=bound.version,
        )
        session.add(row)
        session.flush()
        session.refresh(row)
        return row


def _stored_rule(session: Any, name: str, *, action: str) -> LabelingFunction:
    """The rule row called ``name`` (locked for update on PostgreSQL); code LFs are refused."""
    row = session.exec(
        select(LabelingFunction).where(LabelingFunction.name == name).with_for_update()
    ).first()
    if row is None:
        names = session.exec(
            select(LabelingFunction.name).order_by(col(LabelingFunction.name))
        ).all()
        raise BadInput(
            f"no LF named {name!r}; the LFs are: {', '.join(names) if names else '(none)'}"
        )
    if row.kind == "code":
        file = json.loads(row.spec or "{}").get("file")
        raise BadInput(
            f"{name!r} is a code LF{f' (in lfs/{file})' if file else ''}: to {action} it, "
            "edit or remove it in its file"
        )
    return row


def rule_spec(ws: Context, name: str) -> dict[str, Any]:
    """The stored spec of rule ``name`` (what an edit starts from)."""
    with db.read_session(ws.engine) as session:
        spec: dict[str, Any] = json.loads(_stored_rule(session, name, action="edit").spec)
        return spec


def set_active(ws: Context, name: str, active: bool) -> None:
    """Turn a rule on or off (code LFs follow their file)."""
    with db.write_session(ws.engine) as session:
        row = _stored_rule(session, name, action="turn off or on")
        if row.active == active:
            return
        row.active = active
        row.updated_at = utcnow()
        session.add(row)
        mark_lfs_changed(session)


def edit_rule(ws: Context, name: str, spec: dict[str, Any]) -> LabelingFunction:
    """Replace the definition of rule ``name`` with ``spec`` (its name stays ``name``).

    The edited rule is a new version: the votes of the old one stop counting at once, and the
    next apply runs the rule over every item again (as for a changed LF file). Editing back to
    an earlier definition before applying keeps that version's votes.
    """
    bound = _bind_rule(ws, {**spec, "name": name})
    with db.write_session(ws.engine) as session:
        row = _stored_rule(session, name, action="edit")
        if bound.version == row.version:
            return row
        row.kind = bound.rule.spec["kind"]
        row.spec = json.dumps(bound.rule.spec)
        row.label = bound.rule.label
        row.version = bound.version
        row.updated_at = utcnow()
        session.add(row)
        mark_lfs_changed(session)
        session.flush()
        session.refresh(row)
        return row


def delete_rule(ws: Context, name: str) -> int:
    """Delete rule ``name`` and every vote it cast; returns how many votes went.

    Weak labels fitted with it are marked stale until the label model is fitted again. Code
    LFs live in files: remove the file (or the function) instead.
    """
    with db.write_session(ws.engine) as session:
        row = _stored_rule(session, name, action="delete")
        gone = session.exec(
            select(func.count()).select_from(LFVote).where(col(LFVote.lf_id) == row.id)
        ).one()
        session.execute(delete(LFVote).where(col(LFVote.lf_id) == row.id))
        session.delete(row)
        mark_lfs_changed(session)
    return int(gone or 0)


def _rule_right(ws: Context, rule: Any, answer: str) -> bool:
    """Whether a person's answer agrees with the rule's vote (multi-label: the person's set
    holds the label for a present vote, lacks it for an absent one)."""
    if not ws.multilabel:
        return answer == rule.label
    return (rule.label in labelsets.decode(answer)) != rule.absent


def preview_rule(ws: Context, spec: dict[str, Any], *, samples: int = 5) -> dict[str, Any]:
    """What a rule would do on the pool, for the rule builder: matches, accuracy, examples."""
    bound = _bind_rule(ws, spec)
    ids, _external, frame = item_frame(ws, 0, fields=False)
    with db.read_session(ws.engine) as session:
        pool_ids = set(session.exec(select(Item.id).where(Item.split == "pool")).all())
    mask = np.array([int(i) in pool_ids for i in ids], dtype=bool)
    result = apply_lfs([bound], frame[mask].reset_index(drop=True), engine="local")
    hits = np.flatnonzero(result.L[:, 0] >= 0)
    with db.read_session(ws.engine) as session:
        people = human_labels(session, ws.labels, bulk=False)
    pool_ids_sorted = ids[mask]
    answers = [people[int(pool_ids_sorted[i])] for i in hits if int(pool_ids_sorted[i]) in people]
    correct = sum(1 for answer in answers if _rule_right(ws, bound.rule, answer))
    labelled = answers
    texts = frame[mask]["text"].tolist()
    return {
        "matches": int(len(hits)),
        "pool": int(mask.sum()),
        "coverage": round(len(hits) / int(mask.sum()), 6) if mask.any() else 0.0,
        "human_labelled_matches": len(labelled),
        "correct": correct,
        "accuracy": round(correct / len(labelled), 6) if labelled else None,
        "samples": [texts[i] for i in hits[:samples]],
    }
