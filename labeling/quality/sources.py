"""What every quality figure reads: people by name, people's current answers per item, the
files a round left in its folder, and the precision of figures in ``status --json``."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlmodel import Session, col, select

from labeling.context import Context
from labeling.store.answers import current
from labeling.store.models import HUMAN, SYSTEM_ROLE, Annotation, Annotator, Item, Round


def rounded(value: float | None) -> float | None:
    """A figure as ``status --json`` carries it: six decimals, None stays None."""
    return None if value is None else round(float(value), 6)


def people_names(session: Session) -> dict[int, str]:
    """Annotator id -> name, for everyone who can answer (the import's system user left out)."""
    return dict(
        session.exec(
            select(Annotator.id, Annotator.name).where(Annotator.role != SYSTEM_ROLE)
        ).all()  # type: ignore[arg-type]
    )


def people_answers(split: str) -> tuple[Any, ...]:
    """The WHERE conditions of people's current answers with a label on items of ``split``
    (skips, decisions, imported and bulk labels left out); the query joins Item."""
    return (
        Item.split == split,
        current(),
        col(Annotation.label).is_not(None),
        Annotation.origin == HUMAN,
    )


def gold_checks(labels: tuple[str, ...], *, multilabel: bool) -> tuple[Any, ...]:
    """The WHERE conditions of the answers every gold figure scores (gold accuracy, the
    anchoring check, the figures per guidelines version): people's current labels on gold
    items whose gold label can be scored. Single-label: a gold label that is one of
    ``labels`` (a gold item whose label the toml no longer lists is left out: nobody can give
    that answer any more); multi-label: any gold set (stored as labeling.store.labelsets
    encodes it, so never one of ``labels``)."""
    known = col(Item.gold_label).is_not(None) if multilabel else col(Item.gold_label).in_(labels)
    return (*people_answers("gold"), known)


def answers_by_item(session: Session, split: str) -> dict[int, dict[int, str]]:
    """item id -> {annotator id: label} over people's current (non-skip) answers."""
    found: dict[int, dict[int, str]] = defaultdict(dict)
    for item_id, annotator_id, label in session.exec(
        select(Annotation.item_id, Annotation.annotator_id, Annotation.label)
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(*people_answers(split))
    ).all():
        if label is not None:
            found[item_id][annotator_id] = label
    return found


def round_file(ws: Context, round_: Round, name: str) -> Any | None:
    """The JSON file ``name`` in a round's folder, or None when the round wrote none."""
    if not round_.model_path:
        return None
    path = ws.root / round_.model_path / name
    if not path.exists():
        return None
    return json.loads(path.read_text())
