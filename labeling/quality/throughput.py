"""Throughput per annotator: labels per hour of labelling time, median seconds per item, skip
rate, and the labels and skips a person has now (as on My stats)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from sqlmodel import Session, select

from labeling.quality.sources import people_names, rounded
from labeling.store.answers import current_answer_counts
from labeling.store.models import Annotation

# Per item, labelling time above this counts as a break, not as work (labels per hour).
MAX_WORK_SECONDS = 300


def throughput(session: Session, *, annotator_id: int | None = None) -> dict[str, dict[str, Any]]:
    """Per annotator: work done over every answer given (superseded ones included), and the
    current labels and skips (:func:`labeling.store.answers.current_answer_counts`)."""
    people = people_names(session)
    current = current_answer_counts(session, annotator_id=annotator_id)
    query = select(
        Annotation.annotator_id,
        Annotation.skipped,
        Annotation.duration_ms,
        Annotation.created_at,
    ).where(Annotation.origin == "human")
    if annotator_id is not None:
        query = query.where(Annotation.annotator_id == annotator_id)
    rows = session.exec(query).all()
    grouped: dict[str, list[tuple[bool, int | None, Any]]] = defaultdict(list)
    for annotator_id, skipped, duration, created in rows:
        if annotator_id in people:
            grouped[people[annotator_id]].append((bool(skipped), duration, created))
    result: dict[str, dict[str, Any]] = {}
    for name, answers in sorted(grouped.items()):
        labelled = sum(not skipped for skipped, _, _ in answers)
        skips = len(answers) - labelled
        seconds = [d / 1000 for _, d, _ in answers if d is not None]
        work = sum(min(s, MAX_WORK_SECONDS) for s in seconds)
        result[name] = {
            "answers": len(answers),
            "labels": labelled,
            "skips": skips,
            "current_labels": 0,
            "current_skips": 0,
            "skip_rate": rounded(skips / len(answers)),
            "median_seconds": rounded(statistics.median(seconds)) if seconds else None,
            "work_hours": rounded(work / 3600),
            "labels_per_hour": rounded(labelled / (work / 3600)) if work > 0 else None,
            "first": min(c for _, _, c in answers).isoformat(),
            "last": max(c for _, _, c in answers).isoformat(),
        }
    for annotator_id, (labels_now, skips_now) in current.items():
        if annotator_id in people and people[annotator_id] in result:
            entry = result[people[annotator_id]]
            entry["current_labels"], entry["current_skips"] = labels_now, skips_now
    return result
