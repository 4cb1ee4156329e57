"""Weak label sets for a multi-label workspace: a label model per label on the stored votes.

:func:`fit_weak_sets` reads the votes (present and absent), judges each label's LabelModel
against majority vote on the gold sets (or, without gold, on people's sets), and stores each
covered item's weak set with its confidence in ``weaklabel``, where rounds read them.
:func:`analyze_sets` is ``lf analyze`` for sets: per LF its label and direction, coverage,
overlaps, conflicts (present against absent on the same label) and accuracy against sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import delete
from sqlmodel import col, select

from labeling.context import Context
from labeling.errors import BadInput
from labeling.store import db, labelsets
from labeling.store.answers import human_labels
from labeling.store.bulk import bulk_insert
from labeling.store.models import Item, WeakLabel, utcnow
from labeling.weak.votes import CHUNK, VOTES_STATE, WEAK_STATE, Votes, fact, put_fact, votes
from weak_supervision import wilson_interval
from weak_supervision.errors import LabelModelError
from weak_supervision.lf import ABSTAIN
from weak_supervision.multilabel import WeakSets, fit_label_models_per_label

#: ``weaklabel.model`` of a weak set: each label says its own model in the fit report.
PER_LABEL = "per-label"


def reference_sets(ws: Context, v: Votes) -> tuple[np.ndarray, np.ndarray, str]:
    """(people's sets, the reference the models are judged by, its name): ``(rows, labels)``
    matrices, 1 has, 0 has not, -1 unknown. The reference is gold where any gold item has a
    set, else people's sets."""
    position = {int(item_id): row for row, item_id in enumerate(v.item_ids)}
    n_labels = len(ws.labels)
    people = np.full((len(v.item_ids), n_labels), ABSTAIN, dtype=np.int64)
    gold = people.copy()
    with db.read_session(ws.engine) as session:
        answers = human_labels(session, ws.labels, bulk=False)
        gold_rows = session.exec(
            select(Item.id, Item.gold_label).where(
                Item.split == "gold", col(Item.gold_label).is_not(None)
            )
        ).all()
    for target, pairs in ((people, list(answers.items())), (gold, list(gold_rows))):
        kept = [(position[i], v) for i, v in pairs if v and i is not None and i in position]
        ids = [row for row, _ in kept]
        values = [str(value) for _, value in kept]
        if ids:
            rows = np.array(ids, dtype=np.int64)
            target[rows] = labelsets.indicator(values, ws.labels)
    if (gold >= 0).any():
        return people, gold, "gold"
    return people, people, "people"


def fit_weak_sets(ws: Context, *, model: str = "auto") -> dict[str, Any]:
    """Fit a label model per label on the stored votes; store each covered item's weak set."""
    with db.read_session(ws.engine) as session:
        fitted_at = fact(session, VOTES_STATE)  # read first: a change after it reads as stale
    v = votes(ws)
    if not v.names:
        raise BadInput("no applied LFs: add LFs to lfs/ or rules, then run `labelloop lf apply`")
    people, reference, source = reference_sets(ws, v)
    try:
        weak = fit_label_models_per_label(v.L, ws.labels, reference=reference, model=model, seed=0)
    except LabelModelError as exc:
        raise BadInput(str(exc)) from exc
    stored = _store_weak_sets(ws, v, weak, fitted_at=fitted_at)
    return _fit_report(ws, v, weak, people, reference, source, stored=stored)


def _store_weak_sets(ws: Context, v: Votes, weak: WeakSets, *, fitted_at: str | None) -> int:
    """Replace the stored weak labels with ``weak``'s sets (items with one only)."""
    rows = np.flatnonzero(weak.has_set)
    sets = labelsets.from_indicator(weak.indicator[rows], ws.labels)
    records = [
        {
            "item_id": int(v.item_ids[i]),
            "label": value,
            "confidence": round(float(weak.confidence[i]), 6),
            "model": PER_LABEL,
            "updated_at": utcnow(),
        }
        for i, value in zip(rows, sets, strict=True)
    ]
    with db.write_session(ws.engine) as session:
        session.execute(delete(WeakLabel))
        for start in range(0, len(records), CHUNK):
            bulk_insert(session, WeakLabel.__table__, records[start : start + CHUNK])  # type: ignore[attr-defined]
        put_fact(session, WEAK_STATE, fitted_at or "")
    return len(records)


def _fit_report(
    ws: Context,
    v: Votes,
    weak: WeakSets,
    people: np.ndarray,
    reference: np.ndarray,
    source: str,
    *,
    stored: int,
) -> dict[str, Any]:
    """What ``lf label`` reports for sets: per label the model used and why, coverage, and
    how often the weak sets are exactly right on gold and on people's sets (``gold_*`` over
    every gold item, ``gold_covered_*`` over those with a weak set; ``human_*`` alike)."""
    pool = v.split == "pool"
    report: dict[str, Any] = {
        "model": PER_LABEL,
        "message": _summary(weak),
        "lfs": len(v.names),
        "coverage": round(float(weak.has_set[pool].mean()) if pool.any() else 0.0, 6),
        "weak_labels": stored,
        "reference": source,
        "labels": {
            c.label: {
                "model": c.model,
                "message": c.message,
                "lfs": c.lfs,
                "one_sided": c.one_sided,
                "covered": c.covered,
                "reference_n": c.n_reference,
                "label_model_correct": c.snorkel_correct,
                "majority_correct": c.majority_correct,
            }
            for c in weak.choices
        },
    }
    # Exact sets: on the items with a weak set, and over every item of the reference (an item
    # without one read as the empty set, as its uncovered labels are), so coverage shows.
    unknown = np.full_like(people, ABSTAIN)
    for name, known in (("gold", reference if source == "gold" else unknown), ("human", people)):
        every = (known >= 0).all(axis=1)
        exact = (weak.indicator == known).all(axis=1)
        n_all, n_covered = int(every.sum()), int((every & weak.has_set).sum())
        right_all, right_covered = (
            int((exact & every).sum()),
            int((exact & every & weak.has_set).sum()),
        )
        report[f"{name}_n"] = n_all
        report[f"{name}_accuracy"] = round(right_all / n_all, 6) if n_all else None
        report[f"{name}_correct"] = right_all
        report[f"{name}_covered_n"] = n_covered
        report[f"{name}_covered_correct"] = right_covered
        report[f"{name}_covered_accuracy"] = (
            round(right_covered / n_covered, 6) if n_covered else None
        )
        report[f"{name}_uncovered"] = n_all - n_covered
    return report


def _summary(weak: WeakSets) -> str | None:
    """One line naming the labels that fell back to majority vote, for ``weak.message``."""
    fell = [c.label for c in weak.choices if c.model == "majority" and c.message]
    if not fell:
        return None
    return f"majority vote for {', '.join(fell)} (see labels for why)"


def analyze_sets(
    ws: Context, v: Votes, people: np.ndarray, gold: np.ndarray
) -> list[dict[str, Any]]:
    """Per LF and per label it voted on: direction, coverage, overlaps, conflicts (another
    LF voting the other direction on the same label and item) and accuracy against people's
    and gold sets (a present vote is right when the set holds the label, an absent one when
    it does not). Shares are of pool rows, as in the single-label analysis."""
    n_labels = len(ws.labels)
    pool = v.split == "pool"
    records: list[dict[str, Any]] = []
    for k, label in enumerate(ws.labels):
        present = np.equal(v.L, k)
        gone = np.equal(v.L, n_labels + k)
        on_label = present | gone
        for j, name in enumerate(v.names):
            for direction, mine, other in (("present", present, gone), ("absent", gone, present)):
                voted = mine[:, j]
                if not voted.any():
                    continue
                others = np.delete(on_label, j, axis=1).any(axis=1)
                opposed = np.delete(other, j, axis=1).any(axis=1)
                record: dict[str, Any] = {
                    "lf": name,
                    "label": label,
                    "direction": direction,
                    "polarity": [label if direction == "present" else f"¬{label}"],
                    "votes": int(voted[pool].sum()),
                    "coverage": _share(voted, pool),
                    "overlaps": _share(voted & others, pool),
                    "conflicts": _share(voted & opposed, pool),
                    "faults": v.faults.get(name, 0),
                    "kind": v.kinds.get(name),
                }
                want = 1 if direction == "present" else 0
                for key, known in (("human", people), ("gold", gold)):
                    rows = voted & (known[:, k] >= 0)
                    n = int(rows.sum())
                    right = int((known[rows, k] == want).sum())
                    low, high = wilson_interval(right, n) or (None, None)
                    record |= {
                        f"{key}_correct": right,
                        f"{key}_n": n,
                        f"{key}_accuracy": round(right / n, 6) if n else None,
                        f"{key}_ci_low": low,
                        f"{key}_ci_high": high,
                    }
                records.append(record)
    return records


def _share(mask: np.ndarray, pool: np.ndarray) -> float:
    return round(float(mask[pool].mean()), 6) if pool.any() else 0.0
