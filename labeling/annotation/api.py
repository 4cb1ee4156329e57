"""The Workspace calls for people and labelling: who may sign in, the queue, undo, hints and
each person's own numbers. :class:`labeling.workspace.Workspace` inherits them."""

from __future__ import annotations

import dataclasses
import tomllib
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TypedDict

from sqlmodel import Session, select

from labeling.annotation import (
    answers,
    leases,
    progress,
    queue_preview,
    users,
)
from labeling.annotation.progress import EmptyQueue, PoolCounts, Progress
from labeling.annotation.queue_preview import MAX_PREVIEW, QueuePreview
from labeling.annotation.suggestions import Suggestion
from labeling.config import config_from_mapping, render_config, write_config
from labeling.context import Context
from labeling.errors import BadInput, UnknownAnnotator, UnknownItem
from labeling.quality.throughput import throughput
from labeling.store import labelsets
from labeling.store.answers import current_answer_counts
from labeling.store.models import SYSTEM_ROLE, Annotation, Annotator, Item

AnnotatorRef = str | Annotator


@dataclass(frozen=True)
class Person:
    """Someone who can sign in, as the Team page and ``labelloop user list`` show them."""

    name: str
    role: str
    active: bool
    labels: int  # current labels, as on My stats and the Metrics page
    created: Any


class AnnotatorStats(TypedDict):
    """A person's own numbers (My stats)."""

    name: str
    role: str
    labels: int  # current labels (as on the Metrics page)
    skips: int  # current skips
    by_label: dict[str, int]
    median_seconds: float | None
    per_day: dict[str, int]  # local day (ISO) -> labels given that day, last ``days`` days


class AnnotationAPI(Context):
    """People, sign-in and the labelling queue."""

    # ------------------------------------------------------------------ people

    def add_user(self, name: str, *, role: str = "annotator") -> tuple[Annotator, str]:
        """Create an annotator; returns it and its sign-in token, which is not stored."""
        with self._write() as session:
            return users.add_annotator(session, name=name, role=role)

    def deactivate_user(self, name: str) -> Annotator:
        """Switch a person off: their token, links and sessions stop working, and the items
        they hold go back to the queue at once."""
        with self._write() as session:
            target = users.get_annotator(session, name, active_only=False)
            done = users.deactivate(session, name=name)
            leases.release(session, annotator=target)
            return done

    def set_user_role(self, name: str, role: str) -> Annotator:
        with self._write() as session:
            return users.set_role(session, name=name, role=role)

    def reactivate_user(self, name: str) -> tuple[Annotator, str]:
        """Switch a person back on; returns them and their new token (shown once)."""
        with self._write() as session:
            return users.reactivate(session, name=name)

    def new_user_token(self, name: str) -> tuple[Annotator, str]:
        """A new token for a person, revoking the old one; returns it (shown once)."""
        with self._write() as session:
            return users.new_token(session, name=name)

    def sign_in_link(self, name: str) -> str:
        """A short-lived sign-in link token for an active person (``users.LINK_HOURS``)."""
        with self._write() as session:
            return users.issue_sign_in_link(session, annotator=users.get_annotator(session, name))

    def revoke_sign_in_links(self) -> int:
        """Revoke every launch link ``serve`` printed, of every server on this store; returns
        how many there were. Running servers keep serving; their links stop signing in."""
        with self._write() as session:
            return users.revoke_sign_in_links(session)

    def list_users(self) -> list[Annotator]:
        with self._read() as session:
            return users.list_annotators(session)

    def people(self) -> list[Person]:
        """Everyone who can sign in, with their current label counts; never tokens."""
        with self._read() as session:
            everyone = users.list_annotators(session)
            counts = current_answer_counts(session)
        return [
            Person(p.name, p.role, p.active, counts.get(p.id or 0, (0, 0))[0], p.created_at)
            for p in everyone
        ]

    def sign_in(self, token: str) -> Annotator:
        with self._read() as session:
            return users.authenticate(session, token)

    def person(self, name: str) -> Annotator:
        """An active person by name (raises :class:`UnknownAnnotator` once deactivated)."""
        with self._read() as session:
            return self._annotator(session, name, doing="sign in")

    def _annotator(self, session: Session, ref: AnnotatorRef, *, doing: str = "label") -> Annotator:
        name = ref.name if isinstance(ref, Annotator) else ref
        annotator = users.get_annotator(session, name)
        if annotator.role == SYSTEM_ROLE:
            raise UnknownAnnotator(f"{name!r} is not a person and cannot {doing}")
        return annotator

    def _item_id(self, session: Session, item: int | str) -> int:
        if isinstance(item, int) and not isinstance(item, bool):
            # The id alone (an index look-up): loading the row would read its text and source.
            if session.exec(select(Item.id).where(Item.id == item)).first() is None:
                raise UnknownItem(f"no item with id {item}")
            return item
        found = session.exec(select(Item.id).where(Item.external_id == str(item))).first()
        if found is None:
            raise UnknownItem(f"no item with id {item!r}")
        return found

    def update_settings(
        self,
        *,
        overlap: int,
        lease_seconds: int,
        gold_rate: float | None = None,
        prefetch: int | None = None,
    ) -> None:
        """Change overlap, lease time, the gold-check rate and ``prefetch`` (written to
        ``labelloop.toml``); None keeps a setting as it is."""
        candidate = dataclasses.replace(
            self.config,
            overlap=overlap,
            lease_seconds=lease_seconds,
            gold_rate=self.config.gold_rate if gold_rate is None else gold_rate,
            prefetch=self.config.prefetch if prefetch is None else prefetch,
        )
        # Validate through the same checks as a hand-edited toml.
        config_from_mapping(tomllib.loads(render_config(candidate)), source="settings")
        write_config(self.root, candidate)
        self.config = candidate
        PoolCounts.forget()

    # ------------------------------------------------------------------ labelling

    def next_item(self, annotator: AnnotatorRef) -> leases.QueueItem | None:
        """The item this annotator should label now (leased to them), or None when done."""
        with self._write() as session:
            return self._claim(session, self._annotator(session, annotator))

    def _claim(self, session: Session, me: Annotator) -> leases.QueueItem | None:
        return leases.claim_next_item(
            session,
            annotator=me,
            overlap=self.config.overlap,
            lease_seconds=self.config.lease_seconds,
            gold_rate=self.config.gold_rate,
        )

    def annotate(
        self,
        item_id: int | str,
        annotator: AnnotatorRef,
        label: str | Collection[str],
        *,
        duration_ms: int | None = None,
        suggestion: Suggestion | None = None,
    ) -> Annotation:
        """Label an item the annotator holds. ``item_id``: the internal id or the external id.
        ``label``: one label, or in a multi-label workspace a set of labels (empty: none).
        ``suggestion``: the guess the page showed with it (:meth:`suggestion`), recorded."""
        with self._write() as session:
            me = self._annotator(session, annotator)
            return self._annotate(session, me, item_id, label, duration_ms, suggestion)

    def _annotate(
        self,
        session: Session,
        me: Annotator,
        item: int | str,
        label: str | Collection[str],
        ms: int | None,
        suggestion: Suggestion | None = None,
    ) -> Annotation:
        return answers.annotate(
            session,
            annotator=me,
            item_id=self._item_id(session, item),
            label=answers.answer_value(label, self.labels, self.multilabel),
            labels=self.labels,
            overlap=self.config.overlap,
            duration_ms=ms,
            multilabel=self.multilabel,
            suggestion=suggestion,
        )

    def skip(
        self,
        item_id: int | str,
        annotator: AnnotatorRef,
        *,
        duration_ms: int | None = None,
        suggestion: Suggestion | None = None,
    ) -> Annotation:
        with self._write() as session:
            me = self._annotator(session, annotator)
            return self._skip(session, me, item_id, duration_ms, suggestion)

    def _skip(
        self,
        session: Session,
        me: Annotator,
        item: int | str,
        ms: int | None,
        suggestion: Suggestion | None = None,
    ) -> Annotation:
        return answers.skip(
            session,
            annotator=me,
            item_id=self._item_id(session, item),
            labels=self.labels,
            overlap=self.config.overlap,
            duration_ms=ms,
            suggestion=suggestion,
        )

    def answer_and_next(
        self,
        item_id: int | str,
        annotator: AnnotatorRef,
        label: str | Collection[str] | None,
        *,
        duration_ms: int | None = None,
        suggestion: Suggestion | None = None,
    ) -> leases.QueueItem | None:
        """Record ``label`` (``None``: a skip; a set in a multi-label workspace), with the
        suggestion shown, and lease the next item in the same transaction, as the Label page
        does on each key press."""
        with self._write() as session:
            me = self._annotator(session, annotator)
            if label is None:
                self._skip(session, me, item_id, duration_ms, suggestion)
            else:
                self._annotate(session, me, item_id, label, duration_ms, suggestion)
            return self._claim(session, me)

    def undo(self, annotator: AnnotatorRef) -> leases.QueueItem:
        """Bring back the annotator's previous item so they can change their answer."""
        with self._write() as session:
            return answers.undo(
                session,
                annotator=self._annotator(session, annotator),
                overlap=self.config.overlap,
                lease_seconds=self.config.lease_seconds,
            )

    def release(self, annotator: AnnotatorRef) -> int:
        """Hand back the items the person holds, so others get them at once."""
        with self._write() as session:
            return leases.release(session, annotator=self._annotator(session, annotator))

    def queue_preview(self, annotator: str, *, n: int = 50) -> QueuePreview:
        """The next ``n`` items ``annotator`` would be served now, in the order their claims
        would serve them, each with the round, strategy, score, prediction and the reason in
        words. Read-only: nothing is leased or written (the Queue page, ``labelloop queue``)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PREVIEW:
            raise BadInput(f"expected a preview length from 1 to {MAX_PREVIEW}, found {n!r}")
        with self._read() as session:
            me = self._annotator(session, annotator, doing="be served items")
            return queue_preview.preview(self, session, me, n=n)

    # ------------------------------------------------------------------ one person's numbers

    def progress(self, annotator: AnnotatorRef) -> Progress:
        """The numbers beside the item: mine today and in total, the pool's labelled and open."""
        with self._read() as session:
            return progress.progress_line(
                session, self._annotator(session, annotator), engine=self.engine,
                db_url=self.db_url, overlap=self.config.overlap,
            )  # fmt: skip

    def why_empty(self, annotator: AnnotatorRef) -> EmptyQueue:
        """Explain an empty queue: nothing imported, all done, or the rest held by others."""
        with self._read() as session:
            me = self._annotator(session, annotator)
            return progress.why_empty(session, me, overlap=self.config.overlap)

    def annotator_stats(self, annotator: AnnotatorRef, *, days: int = 14) -> AnnotatorStats:
        """A person's own numbers: counts, per label, per day, time per item (My stats)."""
        with self._read() as session:
            me = self._annotator(session, annotator)
            answers = progress.answers_per_day(session, me, days=days)
            # The same numbers as the Metrics page's row for this person (one definition).
            mine = throughput(session, annotator_id=me.id).get(me.name, {})
        labels = answers["labels"]
        return {
            "name": me.name,
            "role": me.role,
            "labels": mine.get("current_labels", 0),
            "skips": mine.get("current_skips", 0),
            "by_label": labelsets.per_label(Counter(labels), self.labels, self.multilabel),
            "median_seconds": mine.get("median_seconds"),
            "per_day": answers["per_day"],
        }
