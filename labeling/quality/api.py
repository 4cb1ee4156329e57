"""The Workspace calls for what the numbers say: status, metrics, review and adjudication,
and the HTML report. :class:`labeling.workspace.Workspace` inherits them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import func
from sqlmodel import Session, col, select

from labeling.annotation import roles, users
from labeling.annotation.answers import answer_value
from labeling.annotation.leases import require_active
from labeling.context import Context
from labeling.quality import corrections, report, review
from labeling.quality.corrections import FlagRecord
from labeling.quality.item_story import ItemStory, item_story
from labeling.quality.summary import summary
from labeling.store import db, labelsets
from labeling.store.answers import current
from labeling.store.models import (
    ADJUDICATION,
    BULK,
    CORRECTION,
    DECISIONS,
    REMOVED,
    SYSTEM_ROLE,
    Annotation,
    Annotator,
    Item,
    Lease,
    Round,
    utcnow,
)


class AnswerRecord(TypedDict):
    """One answer or decision in an item's history."""

    who: str
    label: str | None
    skipped: bool
    origin: str  # one of labeling.store.models.ORIGINS
    current: bool  # not superseded by a later answer of the same person
    at: datetime


class QualityAPI(Context):
    """Counts, quality figures, review and the report."""

    def status(self, *, metrics: bool = False) -> dict[str, Any]:
        """Counts for ``labelloop status``; the keys of DESIGN.md's JSON shape, and more.

        With ``metrics``, also every quality, coverage, model, drift, stopping and throughput
        number (:func:`labeling.quality.summary.summary`; docs/status.md documents the keys).
        """
        with self._read() as session:
            items = _item_counts(session)
            answers = _answer_counts(session)
            active_by_role = _active_by_role(session)
            rounds = session.exec(select(func.count()).select_from(Round)).one()
            leased = session.exec(select(func.count()).where(Lease.expires_at > utcnow())).one()
        pool = items["pool"]
        info = {
            "workspace": self.config.name,
            "labels": list(self.labels),
            "task": self.config.task,
            "database": db.display_url(self.db_url),
            "items": items,
            "annotations": sum(answers.by_label.values()),
            "annotations_by_label": labelsets.per_label(
                answers.by_label, self.labels, self.multilabel
            ),
            "skips": answers.skips,
            "annotation_log_rows": answers.log_rows,
            "annotators": sum(active_by_role.values()),
            # Active people per role: "3 annotators" counts people who label, not leads.
            "people_by_role": {role: int(active_by_role.get(role, 0)) for role in roles.ROLES},
            "rounds": rounds,
            "leases_active": leased,
            "adjudications": answers.adjudications,
            "corrections": answers.corrections,
            "bulk_labels": answers.bulk,
            "coverage": {"human": round(items["labelled"] / pool, 6) if pool else 0.0},
            "quality": {},
        }
        if metrics:
            info.update(summary(self))
        return info

    def metrics(self) -> dict[str, Any]:
        """Every quality, coverage and model number; ``status(metrics=True)`` minus the counts."""
        return summary(self)

    def report_html(self, *, summary: dict[str, Any] | None = None) -> str:
        """The Metrics page as one self-contained HTML page (``summary``: :meth:`metrics`, when
        already computed)."""
        return report.render_html(self.status(), summary if summary is not None else self.metrics())

    def write_report(self, out: str | Path) -> Path:
        """Write :meth:`report_html` to ``out`` (``.html``), whole or not at all."""
        return report.write_report(Path(out), self.report_html)

    def review(self, *, limit: int | None = 200) -> dict[str, Any]:
        """Items a lead should look at, by kind (disagreement, model, weak, likely error)."""
        return review.review_items(self, limit=limit)

    def item_history(self, item_id: int) -> list[AnswerRecord]:
        """Every answer and decision on an item, oldest first, superseded ones included."""
        with self._read() as session:
            rows = session.exec(
                select(Annotation, Annotator.name)
                .join(Annotator, col(Annotator.id) == col(Annotation.annotator_id))
                .where(Annotation.item_id == item_id)
                .order_by(col(Annotation.id))
            ).all()
        return [
            {
                "who": name,
                "label": a.label,
                "skipped": a.skipped,
                "origin": a.origin,
                "current": a.superseded_by is None,
                "at": a.created_at,
            }
            for a, name in rows
        ]

    def adjudicate(self, item_id: int, label: str | Collection[str], *, lead: str) -> Annotation:
        """The lead's final label for an item (a set in a multi-label workspace); it overrides
        the majority in rounds and export."""
        value = answer_value(label, self.labels, self.multilabel)
        with self._write() as session:
            person = users.get_annotator(session, lead)
            return review.adjudicate(
                session,
                lead=person,
                item_id=item_id,
                label=value,
                labels=self.labels,
                multilabel=self.multilabel,
            )

    # ------------------------------------------------------------------ corrections and flags

    def correct(
        self, item_id: str, label: str | Collection[str], *, by: str, note: str = ""
    ) -> dict[str, Any]:
        """Make ``label`` the label of the item people know as ``item_id``: a correction by
        ``by`` (an active engineer or above) that supersedes the item's adjudication and
        earlier corrections; people's answers and bulk labels stay current, and the newest
        decision outranks them (see :mod:`labeling.quality.corrections`). Gold and removed
        items are refused. A ``note`` is kept as a flag on the item, resolved at once. In a
        multi-label workspace ``label`` is a set of labels."""
        value = answer_value(label, self.labels, self.multilabel)
        with self._write() as session:
            person = users.get_annotator(session, by)
            require_active(person)
            roles.require(person.role, roles.ENGINEER, action="correcting labels", name=by)
            done = corrections.correct(
                session,
                person=person,
                external_id=item_id,
                label=value,
                labels=self.labels,
                note=note,
                multilabel=self.multilabel,
            )
        return {
            "item": done.external_id,
            "label": value,
            "previous_label": done.previous_label,
            "annotation": done.annotation.id,
            "by": person.name,
            "note": note.strip(),
            "superseded": done.superseded,
        }

    def flag(self, item_id: str, note: str, *, by: str) -> FlagRecord:
        """Flag the item people know as ``item_id`` with ``note``, raised by ``by``; it is listed
        on the Review page until a lead resolves it."""
        with self._write() as session:
            person = users.get_annotator(session, by)
            raised = corrections.flag(session, person=person, external_id=item_id, note=note)
            return corrections.list_flags(session, open_only=False, item_id=raised.item_id)[0]

    def flags(self, *, open_only: bool = True) -> list[FlagRecord]:
        """Flags, newest first: the open ones, or every one (``open_only=False``)."""
        with self._read() as session:
            return corrections.list_flags(session, open_only=open_only)

    def resolve_flag(self, flag_id: int, *, by: str) -> None:
        """Mark flag ``flag_id`` resolved by ``by`` (it leaves the Review page's list)."""
        with self._write() as session:
            person = users.get_annotator(session, by)
            roles.require(person.role, roles.LEAD, action="resolving flags", name=by)
            corrections.resolve_flag(session, flag_id=flag_id, by=person)

    def item(self, item_id: str) -> ItemStory:
        """Everything about the item people know as ``item_id``: text, fields, import batch,
        label now and how it was decided, every answer with history, LF votes, weak label, the
        promoted model's prediction and its flags (:mod:`labeling.quality.item_story`)."""
        with self._read() as session:
            return item_story(self, session, item_id)


class _AnswerCounts(NamedTuple):
    by_label: dict[str, int]  # current answers of people and imports per label
    skips: int  # current skips
    adjudications: int  # current decisions by a lead
    corrections: int  # current corrections (from the item page or `labelloop correct`)
    bulk: int  # current bulk labels
    log_rows: int  # every annotation ever written, superseded ones included


def _item_counts(session: Session) -> dict[str, int]:
    """Items by split, and the pool items someone has labelled."""
    by_split = dict(session.exec(select(Item.split, func.count()).group_by(col(Item.split))).all())
    labelled = session.exec(
        select(func.count()).where(Item.split == "pool", Item.n_labels > 0)
    ).one()
    pool = int(by_split.get("pool", 0))
    gold = int(by_split.get("gold", 0))
    return {
        "total": pool + gold,
        "pool": pool,
        "gold": gold,
        "labelled": labelled,
        "removed": int(by_split.get(REMOVED, 0)),
    }


def _answer_counts(session: Session) -> _AnswerCounts:
    per_label = (
        select(Annotation.label, func.count())
        .where(current(), col(Annotation.origin).not_in((*DECISIONS, BULK)))
        .group_by(col(Annotation.label))
    )
    by_origin = dict(
        session.exec(
            select(Annotation.origin, func.count())
            .where(current(), col(Annotation.origin).in_((ADJUDICATION, CORRECTION, BULK)))
            .group_by(col(Annotation.origin))
        ).all()
    )
    by_label: dict[str, int] = {}
    skips = 0
    for label, n in session.exec(per_label).all():
        if label is None:
            skips = n
        else:
            by_label[label] = n
    log_rows = session.exec(select(func.count()).select_from(Annotation)).one()
    return _AnswerCounts(
        by_label,
        skips,
        int(by_origin.get(ADJUDICATION, 0)),
        int(by_origin.get(CORRECTION, 0)),
        int(by_origin.get(BULK, 0)),
        log_rows,
    )


def _active_by_role(session: Session) -> dict[str, int]:
    """Active people (the import's system user left out) per role."""
    return dict(
        session.exec(
            select(Annotator.role, func.count())
            .where(Annotator.role != SYSTEM_ROLE, col(Annotator.active).is_(True))
            .group_by(col(Annotator.role))
        ).all()
    )
