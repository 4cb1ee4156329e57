"""The Workspace calls of audited bulk labelling (labeling.annotation.bulk): a batch over a
search or a list of ids, its audit sample, its undo and the list of batches."""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from labeling.annotation import bulk, bulk_sets, bulk_writes, roles, suggestions, users
from labeling.annotation.bulk import Selection
from labeling.annotation.leases import require_active
from labeling.context import Context
from labeling.data.search import SearchQuery, matching_ids
from labeling.data.search import check as check_query
from labeling.errors import BadInput, UnknownItem, UnknownLabel
from labeling.store import labelsets
from labeling.store.models import Annotator, Item


@dataclass(frozen=True)
class AuditItem:
    """One item of a bulk action's audit sample, for the person to check."""

    id: str  # external id
    text: str
    prediction: str | None  # the promoted model's, if a model has scored the item
    confidence: float | None
    current: str | None = None  # multi-label: the item's set now (``a|b``, ``[]``), if any


class BulkAPI(Context):
    """Bulk labelling, by an engineer or above; see :mod:`labeling.annotation.bulk`."""

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
            person = users.get_annotator(session, by)
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
                person = users.get_annotator(session, by)
            roles.require(person.role, roles.ENGINEER, action="undoing a bulk batch", name=by)
            name = person.name
        return bulk_writes.undo_batch(self, batch, by=name, overlap=self.config.overlap)

    def bulk_batches(self) -> list[bulk.BatchSummary]:
        """Every bulk batch, newest first: who applied it, the label, how many items, the audit
        in words, and its status."""
        return bulk.list_batches(self)
