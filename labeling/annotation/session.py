"""What a signed-in person may do: the service layer behind the Streamlit pages.

A :class:`UserSession` is made by :meth:`UserSession.sign_in` from a token. Every call reads the
person's row again and checks the role there, so a deactivated or demoted person loses access
at their next click, whatever the page shows. Roles rank ``annotator`` < ``engineer`` <
``admin``: annotators label and see their own numbers; engineers also import, export and see
the team; admins also manage people and settings. The Python API (:class:`Workspace`) is for
whoever holds the workspace folder and is not role-checked.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from labeling.annotation import queue, users
from labeling.config import config_from_mapping, render_config, write_config
from labeling.data import importer, removal
from labeling.errors import BadInput, ExportFailed, Forbidden, UnknownAnnotator
from labeling.quality import core as quality
from labeling.store import db
from labeling.store.models import SYSTEM_ROLE, Annotation, Annotator, Item, Lease, Score, utcnow
from labeling.workspace import Workspace

ROLE_LEVEL = {"annotator": 0, "engineer": 1, "lead": 2, "admin": 3}
# Pool-wide counts on the Label page are shared by everyone and refreshed this often.
POOL_COUNTS_TTL = 5.0


@dataclass(frozen=True)
class Progress:
    """The numbers an annotator sees beside the item."""

    today: int  # my labels since local midnight
    mine: int  # my current labels in total
    labelled: int  # pool items with at least one label (anyone's)
    pool: int  # pool items
    queue_left: int  # pool items that still need a label


@dataclass(frozen=True)
class EmptyQueue:
    """Why there is nothing to label: ``reason`` is a stable key, ``message`` is for people."""

    reason: str  # empty_pool | all_labelled | leased_to_others | seen_all
    message: str
    open_items: int
    leased_to_others: int


@dataclass(frozen=True)
class Hint:
    prediction: str
    confidence: float | None
    round_id: int


class _PoolCounts:
    """Pool size, labelled and open counts, cached for a few seconds per store."""

    _lock = threading.Lock()
    _cache: dict[tuple[str, int], tuple[float, tuple[int, int, int]]] = {}

    @classmethod
    def get(cls, workspace: Workspace) -> tuple[int, int, int]:
        key = (workspace.db_url, workspace.config.overlap)
        now = time.monotonic()
        with cls._lock:
            hit = cls._cache.get(key)
        if hit is not None and now - hit[0] < POOL_COUNTS_TTL:
            return hit[1]
        overlap = workspace.config.overlap
        with db.read_session(workspace.engine) as session:
            row = session.exec(
                select(
                    func.count(),
                    func.sum(case((col(Item.n_labels) > 0, 1), else_=0)),
                    func.sum(case((col(Item.n_labels) < overlap, 1), else_=0)),
                ).where(Item.split == "pool")
            ).one()
        counts = (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))
        with cls._lock:
            cls._cache[key] = (now, counts)
        return counts

    @classmethod
    def forget(cls) -> None:
        with cls._lock:
            cls._cache.clear()


def _local_midnight_utc() -> datetime:
    local = datetime.now().astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


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

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with db.read_session(self.workspace.engine) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with db.write_session(self.workspace.engine) as session:
            yield session

    def _me(self, session: Session) -> Annotator:
        me = users.get_annotator(session, self.name)  # raises when deactivated
        if me.role == SYSTEM_ROLE:
            raise UnknownAnnotator(f"{self.name!r} is not a person and cannot sign in")
        return me

    def _require(self, session: Session, role: str, action: str) -> Annotator:
        me = self._me(session)
        if ROLE_LEVEL.get(me.role, -1) < ROLE_LEVEL[role]:
            raise Forbidden(
                f"{action} needs the {role} role; {self.name!r} is {_article(me.role)} {me.role}"
            )
        return me

    def role(self) -> str:
        """The person's role now (raises if they have been deactivated)."""
        with self._read() as session:
            return self._me(session).role

    def can(self, role: str) -> bool:
        try:
            return ROLE_LEVEL[self.role()] >= ROLE_LEVEL[role]
        except UnknownAnnotator:
            return False

    def sign_out(self) -> int:
        """Hand back the items this person holds, so others get them at once."""
        with self._write() as session:
            return queue.release(session, annotator=self._me(session))

    def release_items(self) -> int:
        """Hand back the items this person holds (stop labelling); returns how many."""
        with self._write() as session:
            return queue.release(session, annotator=self._me(session))

    @property
    def labels(self) -> tuple[str, ...]:
        return self.workspace.labels

    @property
    def display_fields(self) -> tuple[str, ...]:
        return self.workspace.config.display_fields

    # ------------------------------------------------------------------ labelling

    def current_item(self) -> queue.QueueItem | None:
        """The item in front of the annotator: the one they hold, or a newly leased one."""
        with self._write() as session:
            return self._claim(session, self._me(session))

    def _claim(self, session: Session, me: Annotator) -> queue.QueueItem | None:
        config = self.workspace.config
        return queue.claim_next_item(
            session,
            annotator=me,
            overlap=config.overlap,
            lease_seconds=config.lease_seconds,
            gold_rate=config.gold_rate,
        )

    def answer(
        self, item_id: int, label: str, *, duration_ms: int | None = None
    ) -> queue.QueueItem | None:
        """Record ``label`` and lease the next item in the same transaction (the pre-fetch)."""
        config = self.workspace.config
        with self._write() as session:
            me = self._me(session)
            queue.annotate(
                session,
                annotator=me,
                item_id=item_id,
                label=label,
                labels=self.labels,
                overlap=config.overlap,
                duration_ms=duration_ms,
            )
            return self._claim(session, me)

    def skip(self, item_id: int, *, duration_ms: int | None = None) -> queue.QueueItem | None:
        """Pass on the item and lease the next one."""
        with self._write() as session:
            me = self._me(session)
            queue.skip(
                session,
                annotator=me,
                item_id=item_id,
                overlap=self.workspace.config.overlap,
                duration_ms=duration_ms,
            )
            return self._claim(session, me)

    def undo(self) -> queue.QueueItem:
        """Bring back the previous item; the next answer supersedes the earlier one."""
        config = self.workspace.config
        with self._write() as session:
            return queue.undo(
                session,
                annotator=self._me(session),
                overlap=config.overlap,
                lease_seconds=config.lease_seconds,
            )

    def hint(self, item_id: int) -> Hint | None:
        """The promoted model's prediction for the item, if a model has scored it."""
        with self._read() as session:
            self._me(session)
            promoted = queue.promoted_round(session)
            if promoted is None:
                return None
            row = session.exec(
                select(Score.prediction, Score.confidence).where(
                    Score.round_id == promoted, Score.item_id == item_id
                )
            ).first()
        if row is None:
            # Big pools store queue scores for the top of the queue only; every item's
            # prediction is in the round's predictions file.
            from labeling.rounds import predictions

            table = predictions.load(self.workspace, promoted)
            row = table.get(item_id) if table is not None else None
        if row is None or row[0] is None:
            return None
        return Hint(prediction=row[0], confidence=row[1], round_id=promoted)

    def progress(self) -> Progress:
        pool, labelled, open_items = _PoolCounts.get(self.workspace)
        with self._read() as session:
            me = self._me(session)
            mine_today = session.exec(
                select(
                    func.count(),
                    func.sum(
                        case((col(Annotation.created_at) >= _local_midnight_utc(), 1), else_=0)
                    ),
                )
                .select_from(Annotation)
                .where(
                    Annotation.annotator_id == me.id,
                    col(Annotation.superseded_by).is_(None),
                    col(Annotation.label).is_not(None),
                    Annotation.origin == "human",
                )
            ).one()
        return Progress(
            today=int(mine_today[1] or 0),
            mine=int(mine_today[0] or 0),
            labelled=labelled,
            pool=pool,
            queue_left=open_items,
        )

    def why_empty(self) -> EmptyQueue:
        """Explain an empty queue: nothing imported, all done, or the rest held by others."""
        overlap = self.workspace.config.overlap
        now = utcnow()
        with self._read() as session:
            me = self._me(session)
            pool = session.exec(select(func.count()).where(Item.split == "pool")).one()
            open_items = session.exec(
                select(func.count()).where(Item.split == "pool", Item.n_labels < overlap)
            ).one()
            seen = session.exec(
                select(func.count(func.distinct(Annotation.item_id)))
                .join(Item, col(Item.id) == col(Annotation.item_id))
                .where(
                    Annotation.annotator_id == me.id,
                    Item.split == "pool",
                    Item.n_labels < overlap,
                )
            ).one()
            held = session.exec(
                select(func.count(func.distinct(Lease.item_id))).where(
                    Lease.annotator_id != me.id, Lease.expires_at > now
                )
            ).one()
        if pool == 0:
            return EmptyQueue(
                "empty_pool", "Nothing has been imported to label yet.", open_items, held
            )
        if open_items == 0:
            return EmptyQueue(
                "all_labelled",
                f"All {pool:,} items are labelled"
                + (f" {overlap} times each." if overlap > 1 else "."),
                open_items,
                held,
            )
        if open_items <= seen:
            return EmptyQueue(
                "seen_all",
                f"You have answered every item still open ({open_items:,}); they wait for "
                "other annotators.",
                open_items,
                held,
            )
        return EmptyQueue(
            "leased_to_others",
            f"The {open_items - seen:,} items still open are being labelled by others right now. "
            "Items left unanswered come back when their hold expires; try again in a minute.",
            open_items,
            held,
        )

    def my_stats(self, *, days: int = 14) -> dict[str, Any]:
        """The annotator's own numbers: counts, per label, per day, time per item."""
        since = utcnow() - timedelta(days=days)
        with self._read() as session:
            me = self._me(session)
            rows = session.exec(
                select(Annotation.label, Annotation.duration_ms, Annotation.created_at).where(
                    Annotation.annotator_id == me.id,
                    col(Annotation.superseded_by).is_(None),
                    Annotation.origin == "human",
                )
            ).all()
            # The same numbers as the Metrics page's row for this person (one definition).
            mine = quality.throughput(session, annotator_id=me.id).get(me.name, {})
        labels = [r[0] for r in rows if r[0] is not None]
        per_day: dict[str, int] = {}
        for label, _duration, created in rows:
            if label is None or created is None:
                continue
            created = created if created.tzinfo else created.replace(tzinfo=UTC)
            if created >= since:
                day = created.astimezone().date().isoformat()
                per_day[day] = per_day.get(day, 0) + 1
        return {
            "name": me.name,
            "role": me.role,
            "labels": mine.get("current_labels", 0),
            "skips": mine.get("current_skips", 0),
            "by_label": {label: labels.count(label) for label in self.labels},
            "median_seconds": mine.get("median_seconds"),
            "per_day": dict(sorted(per_day.items())),
        }

    # ------------------------------------------------------------------ data (engineers)

    def preview_file(
        self, path: Path, *, fmt: str | None = None, rows: int = 20, source_name: str | None = None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        with self._read() as session:
            self._require(session, "engineer", "previewing an import")
        return importer.preview(path, fmt=fmt, rows=rows, source_name=source_name)

    def import_file(self, path: Path, **options: Any) -> importer.ImportReport:
        with self._read() as session:
            self._require(session, "engineer", "importing data")
        report = self.workspace.import_file(path, **options)
        _PoolCounts.forget()
        return report

    def export_bytes(
        self, fmt: str, *, annotations: bool = False, origins: list[str] | None = None
    ) -> bytes:
        """The export file's bytes (written to a temporary file, as ``labelloop export``)."""
        with self._read() as session:
            self._require(session, "engineer", "exporting labels")
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
        with self._read() as session:
            self._require(session, "engineer", "removing items")
        report = self.workspace.remove_items(external_ids, batch=batch, by=self.name)
        _PoolCounts.forget()
        return report

    def restore_items(
        self, external_ids: list[str] | None = None, *, batch: int | None = None
    ) -> removal.RemovalReport:
        with self._read() as session:
            self._require(session, "engineer", "restoring items")
        report = self.workspace.restore_items(external_ids, batch=batch)
        _PoolCounts.forget()
        return report

    def import_batches(self) -> list[removal.BatchInfo]:
        with self._read() as session:
            self._require(session, "engineer", "listing import batches")
        return self.workspace.import_batches()

    def status(self) -> dict[str, Any]:
        with self._read() as session:
            self._require(session, "engineer", "reading the workspace status")
        return self.workspace.status()

    # ------------------------------------------------------------------ quality

    def metrics(self) -> dict[str, Any]:
        """Every quality, coverage, model, drift, stopping and throughput number."""
        with self._read() as session:
            self._require(session, "engineer", "reading the metrics")
        return quality.summary(self.workspace)

    def review(self, *, limit: int = 200) -> dict[str, Any]:
        """The review lists (leads and admins)."""
        with self._read() as session:
            self._require(session, "lead", "reviewing labels")
        return quality.review_items(self.workspace, limit=limit)

    def item_history(self, item_id: int) -> list[dict[str, Any]]:
        """Every answer and decision on an item, oldest first, superseded ones included."""
        with self._read() as session:
            self._require(session, "lead", "reviewing labels")
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

    def adjudicate(self, item_id: int, label: str) -> None:
        """The lead's final label for an item; it overrides the majority in rounds and export."""
        with self._write() as session:
            me = self._require(session, "lead", "adjudicating labels")
            quality.adjudicate(
                session, lead=me, item_id=item_id, label=label, labels=self.workspace.labels
            )

    def stop_priority(self, batch_id: int) -> None:
        """End the queue priority a drifted import was given."""
        from labeling.store.models import ImportBatch

        with self._write() as session:
            self._require(session, "lead", "changing the queue order")
            batch = session.get(ImportBatch, batch_id)
            if batch is None:
                raise BadInput(f"import batch {batch_id} does not exist")
            batch.priority_left = 0
            session.add(batch)

    # ------------------------------------------------------------------ rounds (engineers)

    def rounds(self) -> list[dict[str, Any]]:
        """Every round, newest last, as ``labelloop rounds list --json`` shows them."""
        from labeling.rounds import core as rounds

        with self._read() as session:
            self._require(session, "engineer", "reading the rounds")
        return [rounds.round_summary(r) for r in rounds.list_rounds(self.workspace)]

    def request_round(self, *, strategy: str | None = None) -> int:
        """Queue a round for the background worker; returns its number."""
        from labeling.rounds import core as rounds

        with self._read() as session:
            self._require(session, "engineer", "starting a retraining round")
        queued = rounds.queue_round(self.workspace, trigger="button", strategy=strategy)
        assert queued.id is not None
        return queued.id

    def promote_round(self, round_id: int) -> None:
        from labeling.rounds import core as rounds

        with self._read() as session:
            self._require(session, "engineer", "promoting a round")
        rounds.promote(self.workspace, round_id)

    def rollback_round(self) -> int:
        from labeling.rounds import core as rounds

        with self._read() as session:
            self._require(session, "engineer", "rolling back a round")
        back = rounds.rollback(self.workspace)
        assert back.id is not None
        return back.id

    # ------------------------------------------------------------------ LFs (engineers)

    def _engineer(self, action: str) -> None:
        with self._read() as session:
            self._require(session, "engineer", action)

    def lf_analysis(self) -> dict[str, Any]:
        from labeling.weak import lfs

        self._engineer("reading the LF analysis")
        return lfs.analyze(self.workspace)

    def lf_list(self) -> list[dict[str, Any]]:
        from labeling.weak import lfs

        self._engineer("listing LFs")
        return lfs.list_lfs(self.workspace)

    def apply_lfs(self) -> dict[str, Any]:
        from labeling.weak import lfs

        self._engineer("applying LFs")
        # The page shows LF files that fail to load as warnings and applies the others; an
        # apply already running elsewhere is a message, not a page that hangs.
        return lfs.apply(self.workspace, skip_broken=True, wait=False).to_dict()

    def fit_weak_labels(self) -> dict[str, Any]:
        from labeling.weak import lfs

        self._engineer("fitting the label model")
        return lfs.fit_weak_labels(self.workspace)

    def preview_rule(self, spec: dict[str, Any]) -> dict[str, Any]:
        from labeling.weak import lfs

        self._engineer("trying rules")
        return lfs.preview_rule(self.workspace, spec)

    def add_rule(self, spec: dict[str, Any]) -> None:
        from labeling.weak import lfs

        self._engineer("adding rules")
        lfs.add_rule(self.workspace, spec)

    def set_rule_active(self, name: str, active: bool) -> None:
        from labeling.weak import lfs

        self._engineer("switching rules")
        lfs.set_active(self.workspace, name, active)

    def edit_rule(self, name: str, spec: dict[str, Any]) -> None:
        from labeling.weak import lfs

        self._engineer("editing rules")
        lfs.edit_rule(self.workspace, name, spec)

    def delete_rule(self, name: str) -> int:
        from labeling.weak import lfs

        self._engineer("deleting rules")
        return lfs.delete_rule(self.workspace, name)

    def weak_labels_stale(self) -> bool:
        from labeling.weak import lfs

        self._engineer("reading the LF analysis")
        return lfs.weak_labels_stale(self.workspace)

    # ------------------------------------------------------------------ people (admins)

    def list_users(self) -> list[dict[str, Any]]:
        """Everyone who can sign in, with counts; never tokens (they are not stored)."""
        with self._read() as session:
            self._require(session, "engineer", "listing annotators")
            people = users.list_annotators(session)
            # "labels": current labels, as on My stats and the Metrics page.
            counts = quality.current_answer_counts(session)
        return [
            {
                "name": p.name,
                "role": p.role,
                "active": p.active,
                "labels": counts.get(p.id or 0, (0, 0))[0],
                "created": p.created_at,
            }
            for p in people
        ]

    def add_user(self, name: str, *, role: str = "annotator") -> tuple[str, str]:
        """Create a person; returns (name, token). The token is shown once, never stored."""
        with self._write() as session:
            self._require(session, "admin", "adding annotators")
            annotator, token = users.add_annotator(session, name=name, role=role)
            return annotator.name, token

    def deactivate_user(self, name: str) -> None:
        with self._write() as session:
            me = self._require(session, "admin", "deactivating annotators")
            if name == me.name:
                raise BadInput("you cannot deactivate yourself; ask another admin")
            target = users.get_annotator(session, name, active_only=False)
            users.deactivate(session, name=name)
            # Their held items go back to the queue at once.
            queue.release(session, annotator=target)

    def set_user_role(self, name: str, role: str) -> None:
        with self._write() as session:
            self._require(session, "admin", "changing roles")
            users.set_role(session, name=name, role=role)

    def reactivate_user(self, name: str) -> tuple[str, str, str]:
        """Switch a person back on with a new token; returns (name, token, link token)."""
        with self._write() as session:
            self._require(session, "admin", "reactivating annotators")
            annotator, token = users.reactivate(session, name=name)
            return annotator.name, token, users.issue_sign_in_link(session, annotator=annotator)

    def new_user_token(self, name: str) -> tuple[str, str, str]:
        """A new token for a person (the old one, their links and sessions end); returns
        (name, token, link token)."""
        with self._write() as session:
            self._require(session, "admin", "issuing sign-in tokens")
            annotator, token = users.new_token(session, name=name)
            return annotator.name, token, users.issue_sign_in_link(session, annotator=annotator)

    def sign_in_link(self, name: str) -> str:
        """A short-lived link token for a person (see ``users.LINK_HOURS``)."""
        with self._write() as session:
            self._require(session, "admin", "issuing sign-in links")
            annotator = users.get_annotator(session, name)
            return users.issue_sign_in_link(session, annotator=annotator)

    def update_settings(
        self, *, overlap: int, lease_seconds: int, gold_rate: float | None = None
    ) -> None:
        """Change overlap, lease time and the gold-check rate (written to ``labelloop.toml``)."""
        with self._read() as session:
            self._require(session, "admin", "changing settings")
        candidate = dataclasses.replace(
            self.workspace.config,
            overlap=overlap,
            lease_seconds=lease_seconds,
            gold_rate=self.workspace.config.gold_rate if gold_rate is None else gold_rate,
        )
        # Validate through the same checks as a hand-edited toml.
        config_from_mapping(tomllib.loads(render_config(candidate)), source="settings")
        write_config(self.workspace.root, candidate)
        self.workspace.config = candidate
        _PoolCounts.forget()


def _article(role: str) -> str:
    return "an" if role[:1] in "aeiou" else "a"
