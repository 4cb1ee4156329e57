"""Every quality figure at once: what ``labelloop status --json`` carries under coverage,
quality, model, stopping, drift and throughput, and what the Metrics page and ``labelloop
report`` show. docs/status.md documents every key.

Everything in :mod:`labeling.quality` reads the store (and the round folders) and computes;
nothing writes, except :func:`labeling.quality.review.adjudicate`.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from labeling.context import Context
from labeling.quality.agreement import agreement, gold_accuracy
from labeling.quality.anchoring import anchoring
from labeling.quality.by_guidelines import by_guidelines
from labeling.quality.coverage import coverage
from labeling.quality.multilabel_agreement import gold_set_accuracy_of, set_agreement
from labeling.quality.review import review_items
from labeling.quality.sources import answers_by_item
from labeling.quality.stopping import model_metrics, stopping
from labeling.quality.throughput import throughput
from labeling.store import db
from labeling.store.answers import human_labels
from labeling.store.models import ImportBatch


def summary(ws: Context) -> dict[str, Any]:
    """Every metric, as ``status --json`` carries it under coverage/quality/model/..."""
    labels = ws.labels
    with db.read_session(ws.engine) as session:
        # Read once, used by coverage, agreement and the review counts.
        answers = answers_by_item(session, "pool")
        human = human_labels(session, labels)
        cover = coverage(
            session, labels, ws.config.weak_threshold, human=human, multilabel=ws.multilabel
        )
        if ws.multilabel:
            gold = gold_set_accuracy_of(session, labels)
            agree = set_agreement(session, labels, answers=answers)
        else:
            gold = gold_accuracy(session, labels)
            agree = agreement(session, labels, answers=answers)
        speed = throughput(session)
        drift = drift_reports(session)
        anchor = anchoring(session, labels, multilabel=ws.multilabel)
        versions = by_guidelines(session, labels, multilabel=ws.multilabel)
    review = review_items(ws, limit=0, answers=answers, human=human)
    model = model_metrics(ws)
    cover["rounds"] = [
        {"round": r["round"], "labels": r["n_human"], **(r["coverage"] or {})}
        for r in model["rounds"]
        if r["coverage"]
    ]
    return {
        "coverage": cover,
        "quality": {
            "gold": gold,
            "agreement": agree,
            "anchoring": anchor,
            "by_guidelines": versions,
            "review": {
                "round": review["round"],
                "counts": review["counts"],
                "adjudicated": review["adjudicated"],
                "likely_errors_checked": review["likely_errors_checked"],
            },
        },
        "model": model,
        "stopping": stopping(ws),
        "drift": drift,
        "throughput": speed,
    }


def drift_reports(session: Session) -> list[dict[str, Any]]:
    """The drift check of each pool import that had something to compare against."""
    reports = []
    for batch in session.exec(
        select(ImportBatch).where(ImportBatch.split == "pool").order_by(col(ImportBatch.id))
    ).all():
        found = json.loads(batch.drift or "{}")
        # An import with nothing to compare against (the first one) is not a report.
        if found and (found.get("auc") is not None or "error" in found):
            reports.append(
                found
                | {
                    "batch": batch.id,
                    "source": batch.source_name,
                    "priority_left": batch.priority_left,
                }
            )
    return reports
