"""From stored votes to weak labels, and what the LFs did.

:func:`fit_weak_labels` fits the label model on the stored votes and stores each covered
item's weak label and confidence in ``weaklabel``, where rounds read them; :func:`analyze`
reports per LF polarity, coverage, overlaps, conflicts, accuracy and faults, with the
workspace's coverage totals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import delete

from labeling.context import Context
from labeling.errors import BadInput
from labeling.quality.coverage import coverage
from labeling.store import db
from labeling.store.bulk import bulk_insert
from labeling.store.models import WeakLabel, utcnow
from labeling.weak.loading import load
from labeling.weak.multilabel import analyze_sets, fit_weak_sets, reference_sets
from labeling.weak.votes import CHUNK, VOTES_STATE, WEAK_STATE, Votes, fact, put_fact, votes
from weak_supervision import (
    WeakLabels,
    analyze_lfs,
    estimate_class_balance,
    fit_label_model,
    gold_accuracy,
)
from weak_supervision.analysis import weak_label_gold_accuracy
from weak_supervision.errors import LabelModelError


def fit_weak_labels(ws: Context, *, model: str = "auto") -> dict[str, Any]:
    """Fit the label model on the stored votes; store each item's weak label and confidence
    (multi-label: a label model per label and weak sets, labeling.weak.multilabel)."""
    if ws.multilabel:
        return fit_weak_sets(ws, model=model)
    with db.read_session(ws.engine) as session:
        fitted_at = fact(session, VOTES_STATE)  # read first: a change after it reads as stale
    v = votes(ws)
    n_classes = len(ws.labels)
    if not v.names:
        raise BadInput("no applied LFs: add LFs to lfs/ or rules, then run `labelloop lf apply`")
    pool = v.split == "pool"
    try:
        balance = estimate_class_balance(v.human[pool], n_classes)
        weak = fit_label_model(v.L, n_classes, model=model, class_balance=balance, seed=0)
    except LabelModelError as exc:
        raise BadInput(str(exc)) from exc
    stored = _store_weak_labels(ws, v, weak, fitted_at=fitted_at)
    return _fit_report(v, weak, balance, stored=stored)


def _store_weak_labels(ws: Context, v: Votes, weak: WeakLabels, *, fitted_at: str | None) -> int:
    """Replace the stored weak labels with ``weak``'s (covered items only) and record the
    votes state they were fitted at; returns how many were stored."""
    records = [
        {
            "item_id": int(v.item_ids[i]),
            "label": ws.labels[int(weak.labels[i])],
            "confidence": round(float(weak.confidence[i]), 6),
            "model": weak.model,
            "updated_at": utcnow(),
        }
        for i in np.flatnonzero(weak.labels >= 0)
    ]
    with db.write_session(ws.engine) as session:
        session.execute(delete(WeakLabel))
        for start in range(0, len(records), CHUNK):
            bulk_insert(session, WeakLabel.__table__, records[start : start + CHUNK])  # type: ignore[attr-defined]
        put_fact(session, WEAK_STATE, fitted_at or "")
    return len(records)


def _fit_report(
    v: Votes, weak: WeakLabels, balance: np.ndarray | None, *, stored: int
) -> dict[str, Any]:
    """What ``lf label`` reports: the model, coverage, and accuracy on gold and human labels."""
    pool = v.split == "pool"
    gold_rows = v.gold >= 0
    human_rows = v.human >= 0
    covered = weak.labels >= 0
    human_hits = int((weak.labels[human_rows & covered] == v.human[human_rows & covered]).sum())
    report: dict[str, Any] = {
        "model": weak.model,
        "message": weak.message,
        "lfs": len(v.names),
        "coverage": round(float(covered[pool].mean()) if pool.any() else 0.0, 6),
        "weak_labels": stored,
        "class_balance": None if balance is None else [round(float(b), 4) for b in balance],
        "gold_accuracy": None,
        "gold_correct": None,
        "gold_n": int(gold_rows.sum()),
        "human_accuracy": (
            round(human_hits / int((human_rows & covered).sum()), 6)
            if (human_rows & covered).any()
            else None
        ),
        "human_n": int((human_rows & covered).sum()),
        "human_correct": human_hits,
    }
    if gold_rows.any():
        scored = gold_accuracy(weak, v.gold, seed=0)
        report["gold_accuracy"] = round(float(scored["accuracy"]), 6)
        report["gold_correct"] = int(scored["correct"])
    # The same gold items, counting only those with a weak label (no tie, some LF voted):
    # the figure to read next to the LF table's right/gold counts.
    report |= weak_label_gold_accuracy(weak.labels, v.gold)
    return report


def analyze(ws: Context) -> dict[str, Any]:
    """Per-LF polarity, coverage, overlaps, conflicts, accuracy (with counts), faults; totals
    (multi-label: per LF and label, with its direction; labeling.weak.multilabel)."""
    loaded = load(ws)
    v = votes(ws)
    if ws.multilabel:
        people, reference, source = reference_sets(ws, v)
        gold = reference if source == "gold" else np.full_like(reference, -1)
        records = analyze_sets(ws, v, people, gold)
    else:
        records = _analyze_single(ws, v)
    for record in records:
        record["kind"] = v.kinds.get(record["lf"])
        record["file"] = loaded.files.get(record["lf"])
    with db.read_session(ws.engine) as session:
        totals = coverage(session, ws.labels, ws.config.weak_threshold, multilabel=ws.multilabel)
    # The names lf analyze --json used before the figures had one definition, kept for
    # scripts: the same numbers under their old keys.
    totals |= {"items": totals["pool"], "lfs": totals["lf"], "humans": totals["human"]}
    for shares in totals["per_class"].values():
        shares |= {"lfs": shares["lf"], "humans": shares["human"]}
    return {"lfs": records, "totals": totals, "errors": loaded.errors}


def _analyze_single(ws: Context, v: Votes) -> list[dict[str, Any]]:
    """The single-label analysis: one record per LF."""
    pool = v.split == "pool"
    records = (
        analyze_lfs(v.L[pool], v.names, ws.labels, human=v.human[pool], faults=v.faults)
        if v.names
        else []
    )
    if v.names and (v.gold >= 0).any():
        gold_records = analyze_lfs(v.L, v.names, ws.labels, gold=v.gold)
        for record, gold in zip(records, gold_records, strict=True):
            record.update({k: val for k, val in gold.items() if k.startswith("gold")})
    return records
