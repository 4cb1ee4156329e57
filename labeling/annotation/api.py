"""The Workspace calls for people and labelling: who may sign in, the queue, undo, hints and
each person's own numbers. :class:`labeling.workspace.Workspace` inherits them."""

from __future__ import annotations

import dataclasses
import random
import tomllib
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TypedDict

from sqlmodel import Session, col, select

from labeling.annotation import (
    answers,
    bulk,
    bulk_sets,
    bulk_writes,
    leases,
    progress,
    queue_preview,
    roles,
    suggestions,
    users,
)
from labeling.annotation.bulk import Selection
from labeling.annotation.leases import require_active
from labeling.annotation.progress import EmptyQueue, PoolCounts, Progress
from labeling.annotation.queue_preview import MAX_PREVIEW, QueuePreview
from labeling.annotation.suggestions import Suggestion
from labeling.config import config_from_mapping, render_config, write_config
from labeling.context import Context
from labeling.data.search import SearchQuery, matching_ids
from labeling.data.search import check as check_query
from labeling.errors import BadInput, UnknownAnnotator, UnknownItem, UnknownLabel
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


@dataclass(frozen=True)
class AuditItem:
    """One item of a bulk action's audit sample, for the person to check."""

    id: str  # external id
    text: str
    prediction: str | None  # the promoted model's, if a model has scored the item
    confidence: float | None
    current: str | None = None  # multi-label: the item's set now (``a|b``, ``[]``), if any


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
        self, *, overlap: int, lease_seconds: int, gold_rate: float | None = None
    ) -> None:
        """Change overlap, lease time and the gold-check rate (written to ``labelloop.toml``)."""
        candidate = dataclasses.replace(
            self.config,
            overlap=overlap,
            lease_seconds=lease_seconds,
            gold_rate=self.config.gold_rate if gold_rate is None else gold_rate,
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
        pool, labelled, open_items = PoolCounts.get(self.engine, self.db_url, self.config.overlap)
        with self._read() as session:
            mine, today = progress.my_label_counts(session, self._annotator(session, annotator))
        return Progress(today=today, mine=mine, labelled=labelled, pool=pool,
                        queue_left=open_items)  # fmt: skip

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

    # ------------------------------------------------------------------ bulk labelling

    def _bulk_selection(self, query: SearchQuery | None, item_ids: list[str] | None) -> Selection:
        """The items of a search (``query``) or of a list of external ids (``item_ids``)."""
        if (query is None) == (item_ids is None):
            raise BadInput("bulk labelling: give either a search query or item ids, not both")
        if query is not None:
            check_query(query, self.labels)
            found = [int(i) for i in matching_ids(self, query)]
            return Selection(found, {"search": query.as_dict()})
        wanted = list(dict.fromkeys(str(i) for i in item_ids or []))
        with self._read() as session:
            known = bulk.store_ids(session, wanted)
        missing = [i for i in wanted if i not in known]
        if missing:
            shown = ", ".join(repr(i) for i in missing[:5])
            more = f" and {len(missing) - 5:,} more" if len(missing) > 5 else ""
            raise UnknownItem(f"bulk labelling: no item with id {shown}{more}; nothing labelled")
        described = {"items": len(wanted), "first": wanted[:20]}
        return Selection(sorted(known[i] for i in wanted), described)

    def bulk_label(
        self,
        query: SearchQuery | None = None,
        *,
        item_ids: list[str] | None = None,
        label: str | Collection[str],
        by: str,
        action: str | None = None,
        audit: dict[str, Any] | None = None,
        min_precision: float = bulk.MIN_PRECISION,
        override: bool = False,
        dry_run: bool = False,
        expected: int | None = None,
    ) -> dict[str, Any]:
        """Give ``label`` to every item of a search (``query``) or of a list of external ids, as one
        batch applied by the person ``by``, an engineer or above (see
        :mod:`labeling.annotation.bulk`). In a multi-label workspace ``action`` says what to do to
        each item's set: ``add`` or ``remove`` the one ``label``, or ``set`` it to ``label``, a set
        (:mod:`labeling.annotation.bulk_sets`); items it would not change are left as they are
        (``skipped_unchanged``).

        Pool items with a label from a person, an import or a decision are left as they are
        (``skipped_labelled``), gold and removed items too (``skipped_not_pool``); an earlier bulk
        label is replaced (``replaced_bulk``). ``audit``: ``{"checked": n, "correct": k}`` from an
        audit sample (:meth:`bulk_audit_sample`); the batch is refused when the precision interval's
        lower bound is below ``min_precision``, and without an audit, unless ``override``.
        ``dry_run``: only the counts, nothing written. Returns ``{"batch", "count",
        "skipped_labelled", "skipped_not_pool", "replaced_bulk"}`` (no batch in a dry run).
        ``expected``: how many items the audit was drawn from; the batch is refused if the set has
        changed since (items added to the search, or labelled meanwhile). All checked, then written.
        """
        change = bulk_sets.set_action(action, label, self.labels, self.multilabel)
        if change is None and label not in self.labels:
            raise UnknownLabel(f"label {label!r} is not one of: {', '.join(self.labels)}")
        person = self._bulk_labeller(by)
        selection = self._bulk_selection(query, item_ids)
        if dry_run:
            found = bulk.count_targets(self, selection, change)
            counts = {"count": len(found.targets), "skipped_labelled": len(found.labelled),
                      "skipped_not_pool": len(found.not_pool)}  # fmt: skip
            return counts if change is None else {**counts, "skipped_unchanged": len(
                found.unchanged)}  # fmt: skip
        if not selection.item_ids:
            raise BadInput("bulk labelling: the selection has no items; nothing labelled")
        n = self._bulk_size(selection, change, audit, expected)
        record = bulk.check_audit(audit, n_items=n, min_precision=min_precision, override=override)
        return bulk_writes.apply_batch(
            self, selection, label=str(label) if change is None else change.words(),
            annotator=person, audit=record, override=override, overlap=self.config.overlap,
            change=change,
        )  # fmt: skip

    def _bulk_labeller(self, by: str) -> Annotator:
        """The person ``by``, checked: active, and an engineer or above."""
        with self._read() as session:
            person = self._annotator(session, by, doing="bulk-label")
        require_active(person)
        roles.require(person.role, roles.ENGINEER, action="bulk labelling", name=person.name)
        return person

    def _bulk_size(
        self,
        selection: Selection,
        change: bulk_sets.SetAction | None,
        audit: dict[str, Any] | None,
        expected: int | None,
    ) -> int:
        """How many items the batch would label (counted again for an audit: the sample was
        drawn from them and checked by hand meanwhile), refused if not ``expected``."""
        n_items = len(selection.item_ids)
        if (audit and "checked" in audit) or expected is not None:
            n_items = len(bulk.count_targets(self, selection, change).targets)
        if expected is not None and n_items != expected:
            raise BadInput(
                f"the set has changed since its audit: {expected:,} items to label then, "
                f"{n_items:,} now (items were added or labelled meanwhile); nothing was "
                "labelled. Audit it again"
            )
        return n_items

    def bulk_audit_sample(
        self,
        query: SearchQuery | None = None,
        *,
        item_ids: list[str] | None = None,
        n: int = bulk.AUDIT_SAMPLE,
        seed: int | None = None,
        action: str | None = None,
        label: str | Collection[str] | None = None,
    ) -> list[AuditItem]:
        """A random sample of the items a bulk label would change (at most ``n``), with the
        promoted model's prediction, for the person to check before :meth:`bulk_label`. In a
        multi-label workspace, give the ``action`` and ``label`` of the batch: the sample
        leaves out the items it would not change, and each item shows its set now."""
        change = bulk_sets.set_action(action, label, self.labels, self.multilabel)
        if n < 1:
            raise BadInput(f"audit sample size: expected at least 1, found {n}")
        found = bulk.count_targets(self, self._bulk_selection(query, item_ids), change)
        rng = random.Random(seed)
        chosen = sorted(rng.sample(found.targets, min(n, len(found.targets))))
        with self._read() as session:
            rows = dict(
                (int(i or 0), (external, text, stored))
                for i, external, text, stored in session.exec(
                    select(Item.id, Item.external_id, Item.text, Item.label).where(
                        col(Item.id).in_(chosen)
                    )
                ).all()
            )
            guesses = {i: suggestions.model_guess(self, session, i) for i in chosen}
        sample = []
        for item_id in chosen:
            guess, confidence, _round = guesses[item_id]
            external, text, stored = rows[item_id]
            if change is not None:  # sets as people write them
                guess, stored = labelsets.readable(guess), labelsets.readable(stored)
            sample.append(AuditItem(external, text, guess, confidence,
                                    stored if change is not None else None))  # fmt: skip
        rng.shuffle(sample)
        return sample

    def undo_bulk(self, batch: str, *, by: str | None) -> dict[str, Any]:
        """Undo a whole bulk batch: its answers go, the bulk labels they replaced come back, and
        the batch is recorded as undone by the person ``by`` (None: by the command line, when
        ``labelloop bulk-undo`` is not told who). Returns ``{"batch", "removed", "label"}``."""
        name = bulk.CLI_PERSON
        if by is not None:
            with self._read() as session:
                person = self._annotator(session, by, doing="undo a bulk batch")
            roles.require(person.role, roles.ENGINEER, action="undoing a bulk batch", name=by)
            name = person.name
        return bulk_writes.undo_batch(self, batch, by=name, overlap=self.config.overlap)

    def bulk_batches(self) -> list[bulk.BatchSummary]:
        """Every bulk batch, newest first: who applied it, the label, how many items, the audit
        in words, and its status."""
        return bulk.list_batches(self)
