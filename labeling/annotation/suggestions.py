"""Suggested answers on the Label page, and the anchoring check that measures their pull.

With ``suggestions`` set in ``labelloop.toml`` (``model``, ``llm`` or ``weak``; ``off`` by
default), the Label page pre-selects a guess for each item: the promoted round's prediction,
the LLM labelling function's vote, or the weak label. Enter accepts it, a digit answers
otherwise. Each answer records the guess shown, its source, and whether one was withheld.

**The anchoring check.** On a share of gold items (``suggestion_holdout``, half by default) the
guess is withheld, by a draw fixed per (person, item) so that a reload shows the same thing.
Gold accuracy with and without a guess shown, and how often a wrong guess was accepted, then say
whether suggestions pull people towards the model (labeling.quality.anchoring). The draw is
made here, on the server: a page only shows what it is given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlmodel import Session, col, select

from labeling.annotation.leases import promoted_round
from labeling.config import SUGGESTION_MODES
from labeling.context import Context
from labeling.errors import BadInput
from labeling.rounds import predictions
from labeling.store import labelsets
from labeling.store.models import (
    SUGGESTION_SOURCES,
    Item,
    LabelingFunction,
    LFVote,
    Score,
    WeakLabel,
)

OFF, MODEL, LLM, WEAK = SUGGESTION_MODES
# The LLM labelling function's kind (labeling.weak.llm: ``llm``, or ``llm:LABEL`` for sets).
LLM_LF = "llm"


@dataclass(frozen=True)
class Suggestion:
    """What the page shows with an item: ``value`` (a stored label or set) from ``source``, or
    nothing; ``withheld`` when a guess existed and was held back for the anchoring check."""

    value: str | None = None
    source: str | None = None
    withheld: bool = False
    confidence: float | None = None


NONE = Suggestion()


def suggestion_columns(suggestion: Suggestion | None) -> dict[str, object]:
    """The annotation columns that record what was suggested with an answer."""
    if suggestion is None or suggestion.source is None:
        return {"suggestion": None, "suggestion_source": None, "suggestion_withheld": False}
    if suggestion.source not in SUGGESTION_SOURCES:
        raise BadInput(
            f"suggestion source {suggestion.source!r}: expected one of "
            f"{', '.join(SUGGESTION_SOURCES)}"
        )
    return {
        "suggestion": None if suggestion.withheld else suggestion.value,
        "suggestion_source": suggestion.source,
        "suggestion_withheld": suggestion.withheld,
    }


def holdout_draw(annotator_id: int, item_id: int, share: float) -> bool:
    """Whether this person's guess on this gold item is withheld: a hash of the pair against
    ``share``, the same on every reload and process, independent of the guess itself."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"anchoring:{annotator_id}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def model_guess(
    ctx: Context, session: Session, item_id: int
) -> tuple[str | None, float | None, int | None]:
    """The promoted round's prediction for an item, its confidence, and the round (None before
    any promotion): the queue score first, then the round's predictions file for items beyond
    the top of the queue. The one definition behind the hint, the suggestions, the bulk audit
    and an item's story."""
    promoted = promoted_round(session)
    if promoted is None:
        return None, None, None
    row = session.exec(
        select(Score.prediction, Score.confidence).where(
            Score.round_id == promoted, Score.item_id == item_id
        )
    ).first()
    if row is None or row[0] is None:
        table = predictions.load(ctx, promoted)
        row = table.get(item_id) if table is not None else None
    if row is None or row[0] is None:
        return None, None, promoted
    return row[0], row[1], promoted


def _weak_guess(session: Session, item_id: int) -> tuple[str | None, float | None]:
    row = session.exec(
        select(WeakLabel.label, WeakLabel.confidence).where(WeakLabel.item_id == item_id)
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)


def _llm_guess(ctx: Context, session: Session, item_id: int) -> tuple[str | None, float | None]:
    """The LLM LF's vote: its label, or for sets the labels its per-label LFs (``llm:LABEL``)
    say present, when every label has a vote (a whole answer)."""
    rows = session.exec(
        select(LFVote.label)
        .join(LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id))
        .where(LabelingFunction.kind == LLM_LF, LFVote.item_id == item_id)
    ).all()
    if not ctx.multilabel:
        return (rows[0], None) if rows else (None, None)
    if len(rows) != len(ctx.labels):
        return None, None
    return labelsets.encode([v for v in rows if v in ctx.labels], ctx.labels), None


def suggestion_for(
    ctx: Context, session: Session, *, annotator_id: int, item_id: int
) -> Suggestion:
    """The guess to show ``annotator_id`` with ``item_id`` under the workspace's
    ``suggestions`` setting; withheld on a drawn share of gold items (see the module)."""
    mode = ctx.config.suggestions
    if mode == OFF:
        return NONE
    if mode == MODEL:
        value, confidence, _round = model_guess(ctx, session, item_id)
    elif mode == WEAK:
        value, confidence = _weak_guess(session, item_id)
    else:
        value, confidence = _llm_guess(ctx, session, item_id)
    if value is None:
        return NONE
    split = session.exec(select(Item.split).where(Item.id == item_id)).first()
    if split == "gold" and holdout_draw(annotator_id, item_id, ctx.config.suggestion_holdout):
        return Suggestion(source=mode, withheld=True)
    return Suggestion(value=value, source=mode, confidence=confidence)
