"""What a signed-in person may do: the role-checked layer between the Streamlit pages and the
Python API.

A :class:`UserSession` is made by :meth:`UserSession.sign_in` from a token. Every call checks
the person's role as it is in the store now (:mod:`labeling.annotation.roles` holds the rules),
so a deactivated or demoted person loses access at their next click, whatever the page shows;
then it makes the same :class:`~labeling.workspace.Workspace` call the CLI makes. The Python API
itself is for whoever holds the workspace folder and is not role-checked.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

from labeling.annotation import roles
from labeling.annotation.api import AnnotatorStats
from labeling.annotation.assist_api import Hint
from labeling.annotation.bulk import AUDIT_SAMPLE, MIN_PRECISION, BatchSummary
from labeling.annotation.bulk_api import AuditItem
from labeling.annotation.guidelines import Guidelines
from labeling.annotation.leases import QueueItem
from labeling.annotation.progress import EmptyQueue, Progress
from labeling.annotation.queue_preview import QueuePreview
from labeling.annotation.suggestions import Suggestion
from labeling.data import importer, removal
from labeling.data.search import SearchQuery
from labeling.errors import BadInput, ExportFailed, UnknownAnnotator
from labeling.quality.api import AnswerRecord
from labeling.quality.confusion_pairs import ConfusedPair
from labeling.quality.corrections import FlagRecord
from labeling.quality.item_story import ItemStory
from labeling.rounds.promotion import RoundSummary
from labeling.rounds.similar import SimilarItem
from labeling.weak.votes import LFRow
from labeling.workspace import Workspace


class UserSession:
    """One signed-in person's view of a workspace."""

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name

    @classmethod
    def sign_in(cls, workspace: Workspace, token: str) -> UserSession:
        """Check a token; a wrong, expired or revoked one raises :class:`UnknownAnnotator`."""
        if not token or not token.strip():
            raise UnknownAnnotator("paste the sign-in token you were given")
        annotator = workspace.sign_in(token)
        return cls(workspace, annotator.name)

    # ------------------------------------------------------------------ who and what

    def role(self) -> str:
        """The person's role now (raises if they have been deactivated)."""
        return self.workspace.person(self.name).role

    def can(self, role: str) -> bool:
        try:
            return roles.at_least(self.role(), role)
        except UnknownAnnotator:
            return False

    def _require(self, needed: str, action: str) -> None:
        roles.require(self.role(), needed, action=action, name=self.name)

    def sign_out(self) -> int:
        """Hand back the items this person holds, so others get them at once."""
        return self.workspace.release(self.name)

    def release_items(self) -> int:
        """Hand back the items this person holds (stop labelling); returns how many."""
        return self.workspace.release(self.name)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.workspace.labels

    @property
    def multilabel(self) -> bool:
        """Whether an answer is a set of labels (``task = "multi-label"``)."""
        return self.workspace.multilabel

    @property
    def display_fields(self) -> tuple[str, ...]:
        return self.workspace.config.display_fields

    # ------------------------------------------------------------------ labelling

    def current_item(self) -> QueueItem | None:
        """The item in front of the annotator: the one they hold, or a newly leased one."""
        return self.workspace.next_item(self.name)

    def answer(
        self,
        item_id: int,
        label: str | Collection[str],
        *,
        duration_ms: int | None = None,
        suggestion: Suggestion | None = None,
    ) -> QueueItem | None:
        """Record ``label`` (a set of labels in a multi-label workspace) with the suggestion
        shown, and lease the next item in the same transaction (the pre-fetch)."""
        return self.workspace.answer_and_next(
            item_id, self.name, label, duration_ms=duration_ms, suggestion=suggestion
        )

    def skip(
        self,
        item_id: int,
        *,
        duration_ms: int | None = None,
        suggestion: Suggestion | None = None,
    ) -> QueueItem | None:
        """Pass on the item and lease the next one."""
        return self.workspace.answer_and_next(
            item_id, self.name, None, duration_ms=duration_ms, suggestion=suggestion
        )

    def suggestion(self, item_id: int) -> Suggestion:
        """The guess to pre-select with an item (labeling.annotation.suggestions)."""
        return self.workspace.suggestion(item_id, self.name)

    def undo(self) -> QueueItem:
        """Bring back the previous item; the next answer supersedes the earlier one."""
        return self.workspace.undo(self.name)

    def hint(self, item_id: int) -> Hint | None:
        """The promoted model's prediction for the item, if a model has scored it."""
        self.role()
        return self.workspace.hint(item_id)

    def progress(self) -> Progress:
        return self.workspace.progress(self.name)

    def why_empty(self) -> EmptyQueue:
        """Explain an empty queue: nothing imported, all done, or the rest held by others."""
        return self.workspace.why_empty(self.name)

    def my_stats(self, *, days: int = 14) -> AnnotatorStats:
        """The annotator's own numbers: counts, per label, per day, time per item."""
        return self.workspace.annotator_stats(self.name, days=days)

    # ------------------------------------------------------------------ guidelines

    def guidelines(self, version: int | None = None) -> Guidelines:
        """The guidelines (everyone reads them: ``?`` on the Label page)."""
        self.role()
        return self.workspace.guidelines(version)

    def example_texts(self, ids: list[str]) -> dict[str, str]:
        self.role()
        return self.workspace.example_texts(ids)

    def guidelines_history(self) -> list[dict[str, Any]]:
        self._require(roles.ENGINEER, "reading the guidelines' history")
        return self.workspace.guidelines_history()

    def edit_guidelines(self, changes: dict[str, Any], *, note: str = "") -> Guidelines:
        return self.workspace.edit_guidelines(changes, by=self.name, note=note)

    def pin_example(self, label: str, item: str) -> Guidelines:
        return self.workspace.pin_example(label, item, by=self.name)

    def unpin_example(self, label: str, item: str) -> Guidelines:
        return self.workspace.unpin_example(label, item, by=self.name)

    def confused_pairs(self, *, limit: int | None = 10) -> list[ConfusedPair]:
        """The label pairs people confuse most: where an exclude note would help."""
        self._require(roles.ENGINEER, "reading the confused label pairs")
        return self.workspace.confused_pairs(limit=limit)

    # ------------------------------------------------------------------ data (engineers)

    def preview_file(
        self, path: Path, *, fmt: str | None = None, rows: int = 20, source_name: str | None = None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        self._require(roles.ENGINEER, "previewing an import")
        return self.workspace.preview_file(path, fmt=fmt, rows=rows, source_name=source_name)

    def import_file(self, path: Path, **options: Any) -> importer.ImportReport:
        self._require(roles.ENGINEER, "importing data")
        return self.workspace.import_file(path, **options)

    def export_bytes(
        self, fmt: str, *, annotations: bool = False, origins: list[str] | None = None
    ) -> bytes:
        """The export file's bytes (written to a temporary file, as ``labelloop export``)."""
        self._require(roles.ENGINEER, "exporting labels")
        suffix = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}.get(fmt)
        if suffix is None:
            raise BadInput(f"export format: expected csv, jsonl or parquet, found {fmt!r}")
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / f"export{suffix}"
            try:
                self.workspace.export(out, format=fmt, annotations=annotations, origins=origins)
            except ExportFailed as exc:
                # The scratch file's path means nothing to the person (and is the server's).
                raise ExportFailed(str(exc).replace(str(out), f"the {fmt} export")) from exc
            return out.read_bytes()

    def remove_items(
        self, external_ids: list[str] | None = None, *, batch: int | None = None
    ) -> removal.RemovalReport:
        """Remove items (soft delete; see labeling.data.removal), recorded under this person."""
        self._require(roles.ENGINEER, "removing items")
        return self.workspace.remove_items(external_ids, batch=batch, by=self.name)

    def restore_items(
        self, external_ids: list[str] | None = None, *, batch: int | None = None
    ) -> removal.RemovalReport:
        self._require(roles.ENGINEER, "restoring items")
        return self.workspace.restore_items(external_ids, batch=batch)

    def import_batches(self) -> list[removal.BatchInfo]:
        self._require(roles.ENGINEER, "listing import batches")
        return self.workspace.import_batches()

    def status(self) -> dict[str, Any]:
        self._require(roles.ENGINEER, "reading the workspace status")
        return self.workspace.status()

    # ------------------------------------------------------------------ browse (engineers)

    def search(
        self, query: str = "", *, limit: int = 50, offset: int = 0, **filters: Any
    ) -> dict[str, Any]:
        """One page of the items a search finds, the exact total and the counts per label
        (:meth:`~labeling.workspace.Workspace.search`)."""
        self._require(roles.ENGINEER, "searching the data")
        return self.workspace.search(query, limit=limit, offset=offset, **filters)

    def similar(
        self, item_id: str | None = None, *, text: str | None = None, limit: int = 20
    ) -> list[SimilarItem]:
        """The items most like an item (external id) or a text, best first."""
        self._require(roles.ENGINEER, "finding similar items")
        return self.workspace.similar(item_id, text=text, limit=limit)["items"]

    # ------------------------------------------------------------------ quality

    def metrics(self) -> dict[str, Any]:
        """Every quality, coverage, model, drift, stopping and throughput number."""
        self._require(roles.ENGINEER, "reading the metrics")
        return self.workspace.metrics()

    def report_html(self, *, summary: dict[str, Any] | None = None) -> str:
        """The Metrics page as one HTML file (``summary``: :meth:`metrics`, when already read)."""
        self._require(roles.ENGINEER, "reading the metrics")
        return self.workspace.report_html(summary=summary)

    def review(self, *, limit: int = 200) -> dict[str, Any]:
        """The review lists (leads and admins)."""
        self._require(roles.LEAD, "reviewing labels")
        return self.workspace.review(limit=limit)

    def item_history(self, item_id: int) -> list[AnswerRecord]:
        """Every answer and decision on an item, oldest first, superseded ones included."""
        self._require(roles.LEAD, "reviewing labels")
        return self.workspace.item_history(item_id)

    def adjudicate(self, item_id: int, label: str | Collection[str]) -> None:
        """The lead's final label for an item (a set of labels in a multi-label workspace); it
        overrides the majority in rounds and export."""
        self._require(roles.LEAD, "adjudicating labels")
        self.workspace.adjudicate(item_id, label, lead=self.name)

    def correct(
        self, item_id: str, label: str | Collection[str], *, note: str = ""
    ) -> dict[str, Any]:
        """Correct an item's label (a set of labels in a multi-label workspace; engineers and
        up); it supersedes earlier decisions."""
        self._require(roles.ENGINEER, "correcting labels")
        return self.workspace.correct(item_id, label, by=self.name, note=note)

    def flag(self, item_id: str, note: str) -> FlagRecord:
        """Flag an item with a note for the leads' Review page (anyone signed in). An annotator
        gets the flag back without the item's text: they read items only through the queue."""
        role = self.role()
        raised = self.workspace.flag(item_id, note, by=self.name)
        return raised if roles.at_least(role, roles.ENGINEER) else {**raised, "text": ""}

    def flags(self, *, open_only: bool = True) -> list[FlagRecord]:
        self._require(roles.ENGINEER, "reading flags")
        return self.workspace.flags(open_only=open_only)

    def resolve_flag(self, flag_id: int) -> None:
        self._require(roles.LEAD, "resolving flags")
        self.workspace.resolve_flag(flag_id, by=self.name)

    def item(self, item_id: str) -> ItemStory:
        """Everything about one item, for the item page (engineers and up)."""
        self._require(roles.ENGINEER, "opening an item")
        return self.workspace.item(item_id)

    def stop_priority(self, batch_id: int) -> None:
        """End the queue priority a drifted import was given."""
        self._require(roles.LEAD, "changing the queue order")
        self.workspace.stop_priority(batch_id)

    def queue_preview(self, annotator: str, *, n: int = 50) -> QueuePreview:
        """The next ``n`` items ``annotator`` would be served, and why (the Queue page)."""
        self._require(roles.ENGINEER, "seeing an annotator's queue")
        return self.workspace.queue_preview(annotator, n=n)

    # ------------------------------------------------------------------ rounds (engineers)

    def rounds(self) -> list[RoundSummary]:
        """Every round, newest last, as ``labelloop rounds list --json`` shows them."""
        self._require(roles.ENGINEER, "reading the rounds")
        return self.workspace.round_summaries()

    def request_round(self, *, strategy: str | None = None) -> int:
        """Queue a round for the background worker; returns its number."""
        self._require(roles.ENGINEER, "starting a retraining round")
        queued = self.workspace.queue_round(trigger="button", strategy=strategy)
        assert queued.id is not None
        return queued.id

    def promote_round(self, round_id: int) -> None:
        self._require(roles.ENGINEER, "promoting a round")
        self.workspace.promote(round_id)

    def rollback_round(self) -> int:
        self._require(roles.ENGINEER, "rolling back a round")
        back = self.workspace.rollback()
        assert back.id is not None
        return back.id

    # ------------------------------------------------------------------ LFs (engineers)

    def lf_analysis(self) -> dict[str, Any]:
        self._require(roles.ENGINEER, "reading the LF analysis")
        return self.workspace.lf_analysis()

    def lf_list(self) -> list[LFRow]:
        self._require(roles.ENGINEER, "listing LFs")
        return self.workspace.list_lfs()

    def apply_lfs(self) -> dict[str, Any]:
        self._require(roles.ENGINEER, "applying LFs")
        # The page shows LF files that fail to load as warnings and applies the others; an
        # apply already running elsewhere is a message, not a page that hangs.
        return self.workspace.apply_lfs(skip_broken=True, wait=False).to_dict()

    def fit_weak_labels(self) -> dict[str, Any]:
        self._require(roles.ENGINEER, "fitting the label model")
        return self.workspace.fit_weak_labels()

    def preview_rule(self, spec: dict[str, Any]) -> dict[str, Any]:
        self._require(roles.ENGINEER, "trying rules")
        return self.workspace.preview_rule(spec)

    def add_rule(self, spec: dict[str, Any]) -> None:
        self._require(roles.ENGINEER, "adding rules")
        self.workspace.add_rule(spec)

    def rule_from_search(self, name: str, query: str, label: str) -> None:
        """Store a search as a keyword (or regex) rule voting ``label``."""
        self._require(roles.ENGINEER, "adding rules")
        self.workspace.rule_from_search(name, query, label)

    def set_rule_active(self, name: str, active: bool) -> None:
        self._require(roles.ENGINEER, "switching rules")
        self.workspace.set_rule_active(name, active)

    def edit_rule(self, name: str, spec: dict[str, Any]) -> None:
        self._require(roles.ENGINEER, "editing rules")
        self.workspace.edit_rule(name, spec)

    def delete_rule(self, name: str) -> int:
        self._require(roles.ENGINEER, "deleting rules")
        return self.workspace.delete_rule(name)

    def weak_labels_stale(self) -> bool:
        self._require(roles.ENGINEER, "reading the LF analysis")
        return self.workspace.weak_labels_stale()

    # ------------------------------------------------------------------ people (admins)

    def list_users(self) -> list[dict[str, Any]]:
        """Everyone who can sign in, with counts; never tokens (they are not stored)."""
        self._require(roles.ENGINEER, "listing annotators")
        return [dataclasses.asdict(person) for person in self.workspace.people()]

    def add_user(self, name: str, *, role: str = "annotator") -> tuple[str, str]:
        """Create a person; returns (name, token). The token is shown once, never stored."""
        self._require(roles.ADMIN, "adding annotators")
        annotator, token = self.workspace.add_user(name, role=role)
        return annotator.name, token

    def deactivate_user(self, name: str) -> None:
        self._require(roles.ADMIN, "deactivating annotators")
        if name == self.name:
            raise BadInput("you cannot deactivate yourself; ask another admin")
        # Their held items go back to the queue at once.
        self.workspace.deactivate_user(name)

    def set_user_role(self, name: str, role: str) -> None:
        self._require(roles.ADMIN, "changing roles")
        self.workspace.set_user_role(name, role)

    def reactivate_user(self, name: str) -> tuple[str, str, str]:
        """Switch a person back on with a new token; returns (name, token, link token)."""
        self._require(roles.ADMIN, "reactivating annotators")
        annotator, token = self.workspace.reactivate_user(name)
        return annotator.name, token, self.workspace.sign_in_link(annotator.name)

    def new_user_token(self, name: str) -> tuple[str, str, str]:
        """A new token for a person (the old one, their links and sessions end); returns
        (name, token, link token)."""
        self._require(roles.ADMIN, "issuing sign-in tokens")
        annotator, token = self.workspace.new_user_token(name)
        return annotator.name, token, self.workspace.sign_in_link(annotator.name)

    def sign_in_link(self, name: str) -> str:
        """A short-lived link token for a person (see ``users.LINK_HOURS``)."""
        self._require(roles.ADMIN, "issuing sign-in links")
        return self.workspace.sign_in_link(name)

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
        self._require(roles.ADMIN, "changing settings")
        self.workspace.update_settings(
            overlap=overlap, lease_seconds=lease_seconds, gold_rate=gold_rate, prefetch=prefetch
        )

    # ------------------------------------------------------------------ bulk labelling (engineers)

    def bulk_label(
        self,
        query: SearchQuery | None = None,
        *,
        item_ids: list[str] | None = None,
        label: str | Collection[str],
        action: str | None = None,
        audit: dict[str, Any] | None = None,
        min_precision: float = MIN_PRECISION,
        override: bool = False,
        dry_run: bool = False,
        expected: int | None = None,
    ) -> dict[str, Any]:
        """Label a search's or a list's items at once, as this person (see
        :meth:`~labeling.workspace.Workspace.bulk_label`; ``action``: multi-label only)."""
        self._require(roles.ENGINEER, "bulk labelling")
        return self.workspace.bulk_label(
            query, item_ids=item_ids, label=label, by=self.name, action=action, audit=audit,
            min_precision=min_precision, override=override, dry_run=dry_run, expected=expected,
        )  # fmt: skip

    def bulk_audit_sample(
        self,
        query: SearchQuery | None = None,
        *,
        item_ids: list[str] | None = None,
        n: int = AUDIT_SAMPLE,
        seed: int | None = None,
        action: str | None = None,
        label: str | Collection[str] | None = None,
    ) -> list[AuditItem]:
        self._require(roles.ENGINEER, "bulk labelling")
        return self.workspace.bulk_audit_sample(
            query, item_ids=item_ids, n=n, seed=seed, action=action, label=label
        )

    def undo_bulk(self, batch: str) -> dict[str, Any]:
        self._require(roles.ENGINEER, "undoing a bulk batch")
        return self.workspace.undo_bulk(batch, by=self.name)

    def bulk_batches(self) -> list[BatchSummary]:
        self._require(roles.ENGINEER, "listing bulk batches")
        return self.workspace.bulk_batches()
