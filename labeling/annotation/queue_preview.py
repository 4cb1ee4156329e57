"""The queue as one annotator would get it now, read-only: the next items in the order their
claims would serve them, each with the round, strategy, score and the reason in words.

The order comes from the claim's own statements (:func:`labeling.annotation.leases.claim_order`)
run with a larger limit and nothing locked or written: first the items the person holds (a
reload serves them again), then, while import batches are prioritised, those batches' items, then
the promoted round's scores from the highest down, then the seeded order. The walk assumes each
item is labelled in turn (a label counts a prioritised batch down; a skip does not) and that
nobody else claims meanwhile. Gold checks are drawn at random per claim, so they are not listed:
the preview says how often they come instead.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlmodel import Session, col, select

from labeling.annotation import queue_reasons
from labeling.annotation.leases import can_keep, claim_order, promoted_round
from labeling.context import Context
from labeling.store.models import Annotator, ImportBatch, Item, Lease, Round, Score, utcnow

# How far a preview looks ahead at most (the Queue page shows 50).
MAX_PREVIEW = 500


class PreviewItem(TypedDict):
    """One item of the preview, as ``labelloop queue --json`` prints it."""

    position: int  # 1 = the item the person's next claim serves
    id: str  # external id
    text: str
    round: int | None  # the round whose order serves it (recorded on the lease)
    strategy: str | None  # that round's strategy; None in the seeded order
    score: float | None  # the round's score; None in the seeded order
    prediction: str | None  # the promoted model's prediction
    confidence: float | None
    reason: str


class QueuePreview(TypedDict):
    """The next items one annotator would get (``Workspace.queue_preview``)."""

    annotator: str
    round: int | None  # the promoted round (None before the first model)
    strategy: str | None
    overlap: int
    gold_rate: float  # share of claims that serve a hidden gold check instead (not listed)
    note: str  # why reasons lack probabilities, or ""
    items: list[PreviewItem]


@dataclass(frozen=True)
class Pick:
    """An item in serving order and how the claim reaches it."""

    item_id: int
    how: str  # "held", "undo", "scored" or "seeded"
    round_id: int | None
    priority_batch: int | None = None  # the prioritised import batch it is served from


def preview(ws: Context, session: Session, annotator: Annotator, *, n: int) -> QueuePreview:
    """The next ``n`` items ``annotator`` would be served now; nothing is written."""
    assert annotator.id is not None
    now = utcnow()
    overlap = ws.config.overlap
    promoted = promoted_round(session)
    round_row = session.get(Round, promoted) if promoted is not None else None
    picks = served_order(
        session, annotator_id=annotator.id, overlap=overlap, now=now, promoted=promoted, n=n
    )
    items = _describe(ws, session, picks, round_row)
    return {
        "annotator": annotator.name,
        "round": promoted,
        "strategy": round_row.strategy if round_row is not None else None,
        "overlap": overlap,
        "gold_rate": ws.config.gold_rate,
        "note": items.note,
        "items": items.rows,
    }


def served_order(
    session: Session,
    *,
    annotator_id: int,
    overlap: int,
    now: datetime,
    promoted: int | None,
    n: int,
) -> list[Pick]:
    """The items of the annotator's next ``n`` claims, if each is labelled in turn.

    Each list the walk draws from is fetched once, ``n`` rows long: ``n`` claims can take at
    most ``n`` rows of any one of them.
    """
    picks = _held(session, annotator_id=annotator_id, overlap=overlap, now=now)[:n]
    left = _priority_left(session)
    batch_of = _batches_of(session, [pick.item_id for pick in picks])
    for pick in picks:  # the held items are labelled first: they count their batch down too
        if pick.how == "held" and left.get(batch_of.get(pick.item_id, -1), 0) > 0:
            left[batch_of[pick.item_id]] -= 1
    params: dict[str, Any] = {"me": annotator_id, "overlap": overlap, "now": now}
    if promoted is not None:
        params["promoted"] = promoted
    runs = {False: _walks(session, params, n, overlap, promoted, None)}
    if left:
        runs[True] = _walks(session, params, n, overlap, promoted, sorted(left))
    batch_of.update(_batches_of(session, [i for run in runs.values() for i, _ in run]))
    served = {pick.item_id for pick in picks}
    while len(picks) < n:
        active = {batch for batch, count in left.items() if count > 0}
        found = None
        if active:
            found = _first(runs[True], served, batch_of, active)
        prioritised = found is not None
        if found is None:
            found = _first(runs[False], served, batch_of, None)
        if found is None:
            break
        item_id, how = found
        batch = batch_of.get(item_id)
        served.add(item_id)
        picks.append(Pick(item_id, how, promoted, batch if prioritised else None))
        if prioritised and batch is not None:
            left[batch] -= 1
    return picks


def _walks(
    session: Session,
    params: dict[str, Any],
    n: int,
    overlap: int,
    promoted: int | None,
    priority: list[int] | None,
) -> list[tuple[int, str]]:
    """The claim's candidates in its order (scored first, then seeded), up to ``n`` of each.

    The seeded order merges the claim's walks, one per label count, by rank (the lowest label
    count first on a tie, as the claim's ``min`` does).
    """
    prioritised = priority is not None
    if prioritised:
        params = {**params, "priority": priority}
    run = session.connection().execute
    found: list[tuple[int, str]] = []
    if promoted is not None:
        scored = claim_order(scored=True, prioritised=prioritised).limit(n)
        found = [(int(row[0]), "scored") for row in run(scored, params)]
    seeded = claim_order(scored=False, prioritised=prioritised).limit(n)
    walks = [
        [(int(row[1]), labels, int(row[0])) for row in run(seeded, {**params, "labels": labels})]
        for labels in range(overlap)
    ]
    found += [(item_id, "seeded") for _rank, _labels, item_id in heapq.merge(*walks)][:n]
    return found


def _first(
    run: list[tuple[int, str]],
    served: set[int],
    batch_of: dict[int, int],
    batches: set[int] | None,
) -> tuple[int, str] | None:
    """The run's first item not served yet (and, with ``batches``, of one of those batches)."""
    for item_id, how in run:
        if item_id not in served and (batches is None or batch_of.get(item_id) in batches):
            return item_id, how
    return None


def _held(session: Session, *, annotator_id: int, overlap: int, now: datetime) -> list[Pick]:
    """The items the annotator holds that a claim would serve again, newest lease first (as
    :func:`labeling.annotation.leases.claim_next_item` does); leases it would drop are left out."""
    leases = session.exec(
        select(Lease).where(Lease.annotator_id == annotator_id).order_by(col(Lease.id).desc())
    ).all()
    kept = []
    for lease in leases:
        if can_keep(session, lease, annotator_id=annotator_id, overlap=overlap, now=now):
            kept.append(Pick(lease.item_id, "held" if lease.holds else "undo", lease.round_id))
    return kept


def _priority_left(session: Session) -> dict[int, int]:
    """Prioritised import batches (flagged by the drift check) and the labels each still needs."""
    rows = session.exec(
        select(ImportBatch.id, ImportBatch.priority_left).where(ImportBatch.priority_left > 0)
    ).all()
    return {int(batch or 0): int(count) for batch, count in rows}


def _batches_of(session: Session, item_ids: list[int]) -> dict[int, int]:
    if not item_ids:
        return {}
    rows = session.exec(select(Item.id, Item.batch_id).where(col(Item.id).in_(item_ids))).all()
    return {int(item or 0): batch for item, batch in rows if batch is not None}


@dataclass(frozen=True)
class _Described:
    rows: list[PreviewItem]
    note: str


def _describe(
    ws: Context, session: Session, picks: list[Pick], round_row: Round | None
) -> _Described:
    """The picks as rows: text, score, prediction, and the reason in words."""
    ids = [pick.item_id for pick in picks]
    if not ids:
        return _Described([], "")
    items = {item.id: item for item in session.exec(select(Item).where(col(Item.id).in_(ids)))}
    scores: dict[int, Score] = {}
    if round_row is not None:
        found = select(Score).where(Score.round_id == round_row.id, col(Score.item_id).in_(ids))
        scores = {score.item_id: score for score in session.exec(found)}
    wanted = {pick.priority_batch for pick in picks if pick.priority_batch is not None}
    batches = {
        batch.id: batch.source_name
        for batch in session.exec(select(ImportBatch).where(col(ImportBatch.id).in_(wanted)))
    }
    model = queue_reasons.round_probabilities(ws, round_row, [items[i].text for i in ids])
    stored = queue_reasons.stored_predictions(ws, round_row, ids)
    rows = [
        _row(
            position,
            pick,
            items[pick.item_id],
            scores.get(pick.item_id),
            round_row,
            model,
            stored,
            batches,
        )  # fmt: skip
        for position, pick in enumerate(picks, start=1)
    ]
    return _Described(rows, model.note)


def _row(
    position: int,
    pick: Pick,
    item: Item,
    score_row: Score | None,
    round_row: Round | None,
    model: queue_reasons.RoundView,
    stored: dict[int, tuple[str, float]],
    batches: dict[int | None, str],
) -> PreviewItem:
    scored = pick.how == "scored" and score_row is not None
    score = score_row.score if scored and score_row is not None else None
    prediction: str | None
    confidence: float | None
    if score_row is not None and score_row.prediction is not None:
        prediction, confidence = score_row.prediction, score_row.confidence
    else:
        prediction, confidence = stored.get(pick.item_id) or model.top(position - 1)
    reason = queue_reasons.reason(
        how=pick.how,
        round_row=round_row,
        score=score,
        ranked=model.ranked(position - 1),
        has_model=model.has_model,
        multilabel=model.multilabel,
        scored_when_ranked=score_row is not None,
        imported_after=round_row is not None
        and round_row.started_at is not None
        and item.created_at > round_row.started_at,
    )
    if pick.priority_batch is not None:
        reason = f"priority import batch {batches.get(pick.priority_batch, '?')!r}; {reason}"
    return {
        "position": position,
        "id": item.external_id,
        "text": item.text,
        "round": pick.round_id,
        "strategy": round_row.strategy if scored and round_row is not None else None,
        "score": round(score, 6) if score is not None else None,
        "prediction": prediction,
        "confidence": confidence,
        "reason": reason,
    }
