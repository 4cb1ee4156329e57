"""Reading the feed of label changes (labeling.store.label_feed) a page at a time, for a
training job that follows the labels (``GET /labels``).

A cursor is the feed's number of the last change read, as text. Each change names the item by
its external id, gives its label now (a name, or a list of names in a multi-label workspace;
None when it has no label any more or was removed), how the label was decided (the export's
``decided_by``: one definition) and when it changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col

from labeling.errors import BadInput
from labeling.store import label_feed, labelsets
from labeling.store.answers import decided_by, decision_rows, relabelled_of
from labeling.store.models import REMOVED, Annotation

MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000


@dataclass(frozen=True)
class LabelPage:
    """One page of the feed and the cursor to read the next from (the same cursor when the
    page is empty: nothing changed since)."""

    labels: list[dict[str, Any]]
    next: str


def parse_cursor(since: str | None) -> int:
    """The feed number a cursor stands for; no cursor: the start."""
    if since is None or since == "":
        return 0
    if not since.isdigit() or len(since) > 19:
        raise BadInput(
            f"since: expected a cursor from an earlier page's 'next' (digits), found {since!r}"
        )
    return int(since)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise BadInput(f"limit: expected 1 to {MAX_PAGE:,}, found {limit}")
    return limit


def read_page(
    session: Session, labels: tuple[str, ...], *, since: str | None, limit: int, multilabel: bool
) -> LabelPage:
    """The changes after cursor ``since``, at most ``limit`` of them, oldest first."""
    after = parse_cursor(since)
    changes = label_feed.changes_since(session, after, check_limit(limit))
    if not changes:
        return LabelPage(labels=[], next=str(after))
    ids = [change.item_id for change in changes]
    answers = decision_rows(session, col(Annotation.item_id).in_(ids))
    relabelled = relabelled_of(session, ids)
    page = []
    for change in changes:
        label, how = None, None
        if change.label is not None and change.split == "pool":
            label, how, _origin = decided_by(
                answers.get(change.item_id, []), labels, relabelled=relabelled[change.item_id]
            )
        value: Any = label
        if label is not None and multilabel:
            value = labelsets.decode_ordered(label)
        page.append(
            {
                "id": change.external_id,
                "label": value,
                "origin": how,
                "changed_at": change.changed_at.isoformat(),
                "removed": change.split == REMOVED,
            }
        )
    return LabelPage(labels=page, next=str(changes[-1].seq))
