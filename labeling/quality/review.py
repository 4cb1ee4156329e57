"""Review lists, and the lead's decision on an item.

The lists: items people disagree on, human labels a confident out-of-sample model or the weak
label disagrees with, and likely label errors (cleanlab's ``find_label_issues`` on the
cross-validated probabilities each round writes, :mod:`labeling.quality.label_errors`). An
adjudicated item leaves every list: :func:`adjudicate` records the lead's label, which
overrides the majority in rounds and export.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from labeling.annotation.answers import checked_value
from labeling.context import Context
from labeling.errors import BadInput
from labeling.quality.label_errors import REVIEW_FILE
from labeling.quality.sources import answers_by_item, people_names, round_file, rounded
from labeling.store import db
from labeling.store.answers import current, human_labels, refresh_labels
from labeling.store.models import (
    ADJUDICATION,
    DECISIONS,
    Annotation,
    Annotator,
    Item,
    Round,
    WeakLabel,
    utcnow,
)

REVIEW_KINDS = ("disagreement", "model", "weak", "likely_error")


@dataclass(frozen=True)
class _Known:
    """What the store says about the pool's labelled items, read once for every list."""

    people: dict[int, str]  # annotator id -> name
    answers: dict[int, dict[int, str]]  # item id -> {annotator id: label}
    decided: dict[int, str]  # item id -> a lead's label
    human: dict[int, str]  # item id -> label from people (adjudication included)
    weak: dict[int, tuple[str, float]]  # item id -> confident weak label, confidence


def review_items(
    ws: Context,
    *,
    limit: int | None = 200,
    answers: dict[int, dict[int, str]] | None = None,
    human: dict[int, str] | None = None,
) -> dict[str, Any]:
    """Items a lead should look at, by kind, with what each source says about them.

    ``model`` and ``likely_error`` come from the latest round's cross-validated probabilities
    and only list items whose label has not changed since (nor been adjudicated).
    ``answers`` and ``human``: the pool's current answers and labels from people, when the
    caller has read them already (see :func:`labeling.quality.summary.summary`).
    """
    known = _read_known(ws, answers=answers, human=human)
    round_id, review = latest_review(ws)
    # item id -> (out-of-sample prediction, confidence), from the latest round's check.
    checked: dict[int, tuple[str, float]] = {
        row[0]: (row[2], row[3]) for row in (review["items"] if review else [])
    }
    lists: dict[str, list[dict[str, Any]]] = {kind: [] for kind in REVIEW_KINDS}
    lists["disagreement"] = _disagreements(known)
    lists["weak"] = _weak_disagrees(known)
    if review:
        lists["model"], lists["likely_error"] = _model_disagrees(
            known, review["items"], ws.config.review_confidence
        )
    counts = {kind: len(entries) for kind, entries in lists.items()}
    for kind in lists:
        lists[kind].sort(key=lambda e: (-(e["score"] or 0), e["item_id"]))
        if limit is not None:
            lists[kind] = lists[kind][:limit]
    _describe(ws, lists, known, checked)
    return {
        "round": round_id,
        "counts": counts,
        "adjudicated": len(known.decided),
        "items": lists,
        "likely_errors_checked": len(review["items"]) if review else 0,
    }


def _read_known(
    ws: Context, *, answers: dict[int, dict[int, str]] | None, human: dict[int, str] | None
) -> _Known:
    with db.read_session(ws.engine) as session:
        people = people_names(session)
        if answers is None:
            answers = answers_by_item(session, "pool")
        decided = _adjudicated(session)
        if human is None:
            human = human_labels(session, ws.labels)
        weak = {
            item_id: (label, confidence)
            for item_id, label, confidence in session.exec(
                select(WeakLabel.item_id, WeakLabel.label, WeakLabel.confidence).where(
                    WeakLabel.confidence >= ws.config.weak_threshold
                )
            ).all()
        }
    return _Known(people, answers, decided, human, weak)


def _adjudicated(session: Session) -> dict[int, str]:
    """item id -> the current decision (a lead's adjudication or a correction)."""
    return dict(
        session.exec(
            select(Annotation.item_id, Annotation.label).where(
                col(Annotation.origin).in_(DECISIONS), current()
            )
        ).all()  # type: ignore[arg-type]
    )


def latest_review(ws: Context) -> tuple[int | None, dict[str, Any] | None]:
    """The latest succeeded round that wrote ``review.json``, and what it wrote."""
    with db.read_session(ws.engine) as session:
        rounds = session.exec(
            select(Round).where(Round.status == "succeeded").order_by(col(Round.id).desc())
        ).all()
    for round_ in rounds:
        found = round_file(ws, round_, REVIEW_FILE)
        if found is not None:
            return round_.id, found
    return None, None


def _disagreements(known: _Known) -> list[dict[str, Any]]:
    """Items people gave different labels, not adjudicated; score: the minority's share."""
    found = []
    for item_id, by_person in known.answers.items():
        if item_id in known.decided or len(set(by_person.values())) < 2:
            continue
        votes = Counter(by_person.values())
        found.append(
            {
                "item_id": item_id,
                "label": known.human.get(item_id),
                "score": 1 - max(votes.values()) / sum(votes.values()),
            }
        )
    return found


def _weak_disagrees(known: _Known) -> list[dict[str, Any]]:
    """Labelled items whose confident weak label differs; score: the weak label's confidence."""
    found = []
    for item_id, (label, confidence) in known.weak.items():
        mine = known.human.get(item_id)
        if mine is not None and item_id not in known.decided and label != mine:
            found.append(
                {
                    "item_id": item_id,
                    "label": mine,
                    "suggested": label,
                    "score": rounded(confidence),
                }
            )
    return found


def _model_disagrees(
    known: _Known, checked: list[list[Any]], review_confidence: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """From the round's out-of-sample check, items whose label is unchanged since: those a
    confident model disagrees with, and those cleanlab flags."""
    model: list[dict[str, Any]] = []
    likely_error: list[dict[str, Any]] = []
    for item_id, given, predicted, confidence, _p_given, flagged in checked:
        if item_id in known.decided or known.human.get(item_id) != given:
            continue
        entry = {"item_id": item_id, "label": given, "suggested": predicted, "score": confidence}
        if predicted != given and confidence >= review_confidence:
            model.append(dict(entry))
        if flagged:
            likely_error.append(dict(entry))
    return model, likely_error


def _describe(
    ws: Context,
    lists: dict[str, list[dict[str, Any]]],
    known: _Known,
    checked: dict[int, tuple[str, float]],
) -> None:
    """Add to each listed item its id, text, people's answers, weak label and model check."""
    wanted = {e["item_id"] for entries in lists.values() for e in entries}
    items: dict[int | None, tuple[str, str]] = {}
    if wanted:
        with db.read_session(ws.engine) as session:
            items = {
                item_id: (external_id, text)
                for item_id, external_id, text in session.exec(
                    select(Item.id, Item.external_id, Item.text).where(col(Item.id).in_(wanted))
                ).all()
            }
    for entries in lists.values():
        for entry in entries:
            item_id = entry["item_id"]
            external_id, text = items.get(item_id, (None, ""))
            entry["id"] = external_id
            entry["text"] = text
            entry["answers"] = {
                known.people.get(a, str(a)): lab
                for a, lab in known.answers.get(item_id, {}).items()
            }
            entry["weak"] = known.weak.get(item_id, (None, None))[0]
            entry["model"] = checked.get(item_id)


def adjudicate(
    session: Session,
    *,
    lead: Annotator,
    item_id: int,
    label: str,
    labels: tuple[str, ...],
    multilabel: bool = False,
) -> Annotation:
    """Record the lead's final label: an annotation of its own that overrides the majority.

    The item's current decision (an earlier adjudication or a correction) is superseded;
    people's answers stay as they were. The item's row is locked first (as a correction
    locks it), so two decisions on one item at once leave one current decision.
    """
    label = checked_value(label, labels, multilabel)
    item = session.get(Item, item_id, with_for_update={"key_share": True})
    if item is None:
        raise BadInput(f"no item has the row id {item_id} (it may have been removed)")
    if item.split != "pool":
        raise BadInput(f"item {item.external_id!r} is a gold item; its gold label is final")
    assert lead.id is not None
    previous = session.exec(
        select(Annotation).where(
            Annotation.item_id == item_id,
            col(Annotation.origin).in_(DECISIONS),
            current(),
        )
    ).all()
    decision = Annotation(
        item_id=item_id,
        annotator_id=lead.id,
        label=label,
        skipped=False,
        origin=ADJUDICATION,
        created_at=utcnow(),
    )
    session.add(decision)
    session.flush()
    for old in previous:
        old.superseded_by = decision.id
        session.add(old)
    session.flush()
    refresh_labels(session, labels, [item_id])
    return decision
