"""Which round orders the queue: finishing a round, promoting it, rolling back; reading rounds.

A succeeded round is promoted if it is not worse on gold than the promoted round (within
``promote_tolerance``); the first round always is. Promotion flips one flag in one
transaction, and the queue reads that flag at every claim, so the switch is atomic and
annotators keep labelling from the old scores until then. :func:`promote` and
:func:`rollback` flip it by hand, to any round whose scores are still stored.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from sqlalchemy import update
from sqlmodel import Session, col, select

from labeling.context import Context
from labeling.errors import BadInput
from labeling.quality.stopping import stopping_in
from labeling.rounds.scores import prune_scores
from labeling.store import db, outbox
from labeling.store.models import Round, Score, utcnow


def get_round(ws: Context, round_id: int) -> Round:
    with db.read_session(ws.engine) as session:
        round_ = session.get(Round, round_id)
        if round_ is None:
            raise BadInput(f"no round {round_id}")
        return round_


def list_rounds(ws: Context) -> list[Round]:
    with db.read_session(ws.engine) as session:
        return list(session.exec(select(Round).order_by(col(Round.id))).all())


class RoundSummary(TypedDict):
    """One round, for people and JSON (``labelloop rounds list --json``, the Model page)."""

    round: int
    status: str
    trigger: str
    strategy: str | None
    promoted: bool
    n_human: int
    n_weak: int
    gold_accuracy: float | None
    gold_macro_f1: float | None
    evaluation: str | None  # gold, cross-validation or none
    stage: str | None  # what a running round is doing
    error: str | None
    created_at: str | None  # ISO 8601
    finished_at: str | None
    model_path: str | None
    # The featurizer and classifier trained, the candidates' scores and why (None: no record).
    representation: dict[str, Any] | None
    metrics: dict[str, Any]  # everything the round measured (docs/rounds.md)


def round_summary(round_: Round) -> RoundSummary:
    """A round as ``labelloop rounds list --json`` and the Model page show it."""
    assert round_.id is not None  # a stored round
    metrics = json.loads(round_.metrics or "{}")
    metrics.pop("traceback", None)
    return {
        "round": round_.id,
        "status": round_.status,
        "trigger": round_.trigger,
        "strategy": round_.strategy,
        "promoted": round_.promoted,
        "n_human": round_.n_human,
        "n_weak": round_.n_weak,
        "gold_accuracy": metrics.get("gold_accuracy"),
        "gold_macro_f1": metrics.get("gold_macro_f1"),
        "evaluation": metrics.get("evaluation"),
        "stage": round_.stage,
        "error": round_.error,
        "created_at": round_.created_at.isoformat() if round_.created_at else None,
        "finished_at": round_.finished_at.isoformat() if round_.finished_at else None,
        "model_path": round_.model_path,
        "representation": metrics.get("representation"),
        "metrics": metrics,
    }


def promotable(
    metrics: dict[str, Any], current: Round | None, tolerance: float
) -> tuple[bool, str]:
    """Whether a round with ``metrics`` replaces the promoted round ``current``, and why."""
    if current is None:
        return True, "the first round is always promoted"
    old = json.loads(current.metrics or "{}").get("gold_macro_f1")
    new = metrics.get("gold_macro_f1")
    if old is None:
        return True, f"round {current.id} had no gold score to beat"
    if new is None:
        return False, "no gold score, while the promoted round has one"
    if new >= old - tolerance:
        return True, f"gold macro-F1 {new:.3f} vs {old:.3f} (tolerance {tolerance})"
    return False, f"gold macro-F1 {new:.3f} is worse than round {current.id}'s {old:.3f}"


def finish(
    ws: Context,
    round_id: int,
    metrics: dict[str, Any],
    path: str,
    strategy: str,
    *,
    n_human: int,
    n_weak: int,
) -> None:
    """Record a round as succeeded, promote it if :func:`promotable`, prune old scores."""
    with db.write_session(ws.engine) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        current = session.exec(select(Round).where(col(Round.promoted).is_(True))).first()
        promote, why = promotable(metrics, current, ws.config.promote_tolerance)
        metrics["promotion"] = why
        round_.status = "succeeded"
        round_.strategy = strategy
        round_.n_human = n_human
        round_.n_weak = n_weak
        round_.model_path = path
        round_.metrics = json.dumps(metrics)
        round_.finished_at = utcnow()
        round_.stage = None
        session.add(round_)
        session.flush()
        if promote:
            _promote_and_tell(session, ws, round_id, why)
    prune_scores(ws)


def _set_promoted(session: Session, round_id: int) -> None:
    session.execute(update(Round).where(col(Round.promoted).is_(True)).values(promoted=False))
    session.execute(
        update(Round).where(col(Round.id) == round_id).values(promoted=True, promoted_at=utcnow())
    )


def _promote_and_tell(session: Session, ws: Context, round_id: int, why: str) -> None:
    """Promote the round and, in the same transaction, write the webhooks' ``round.promoted``
    and, when the stopping hint turns to stop with it, ``stopping.reached`` (once per turn,
    not again while it stays at stop). The hint is read only if a webhook asked for it."""
    hooks, name = ws.config.webhooks, ws.config.name
    tell_stop = any(outbox.wants(hook, "stopping.reached") for hook in hooks)
    stopped_before = tell_stop and stopping_in(session, ws)["stop"]
    previous = session.exec(select(Round.id).where(col(Round.promoted).is_(True))).first()
    _set_promoted(session, round_id)
    if any(outbox.wants(hook, "round.promoted") for hook in hooks):
        round_ = session.get(Round, round_id, populate_existing=True)
        assert round_ is not None
        metrics = json.loads(round_.metrics or "{}")
        data = {
            "round": round_id,
            "previous": previous,
            "reason": why,
            "trigger": round_.trigger,
            "metrics": {key: metrics.get(key) for key in _TOLD_METRICS}
            | {"n_human": round_.n_human, "n_weak": round_.n_weak},
        }
        outbox.emit(session, hooks, "round.promoted", data, workspace=name)
    if tell_stop and not stopped_before:
        hint = stopping_in(session, ws)
        if hint["stop"]:
            told = {key: hint[key] for key in ("stable_runs", "threshold", "message")}
            data = {"round": round_id, **told, "kappas": hint["kappas"][-hint["runs_needed"] :]}
            outbox.emit(session, hooks, "stopping.reached", data, workspace=name)


# What round.promoted tells of the round's metrics (docs/webhooks.md).
_TOLD_METRICS = (
    "evaluation", "gold_accuracy", "gold_macro_f1", "strategy", "featurizer", "classifier",
)  # fmt: skip


def promote(ws: Context, round_id: int) -> Round:
    """Make a succeeded round's scores order the queue (whatever its metrics)."""
    with db.write_session(ws.engine) as session:
        round_ = session.get(Round, round_id)
        if round_ is None:
            raise BadInput(f"no round {round_id}")
        if round_.status != "succeeded":
            raise BadInput(f"round {round_id} is {round_.status}; only a succeeded round")
        has_scores = session.exec(select(Score.item_id).where(Score.round_id == round_id)).first()
        if has_scores is None:
            raise BadInput(f"round {round_id}'s scores were pruned; retrain instead")
        _promote_and_tell(session, ws, round_id, "promoted by hand")
    return get_round(ws, round_id)


def rollback(ws: Context) -> Round:
    """Promote again the round that was promoted before the current one."""
    with db.write_session(ws.engine) as session:
        history = session.exec(
            select(Round)
            .where(col(Round.promoted_at).is_not(None), Round.status == "succeeded")
            .order_by(col(Round.promoted_at).desc())
        ).all()
        current = next((r for r in history if r.promoted), None)
        if current is None:
            raise BadInput("no round is promoted; nothing to roll back")
        earlier = [r for r in history if r.id != current.id]
        for candidate in earlier:
            has_scores = session.exec(
                select(Score.item_id).where(Score.round_id == candidate.id)
            ).first()
            if has_scores is not None:
                assert candidate.id is not None
                _promote_and_tell(session, ws, candidate.id, f"rollback from round {current.id}")
                target = candidate.id
                break
        else:
            raise BadInput(f"round {current.id} is the only promoted round with scores left")
    assert target is not None
    return get_round(ws, target)
