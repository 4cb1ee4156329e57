"""A workspace: one labelling project in one folder, and the Python API over it.

``Workspace`` is what notebooks, the CLI and (later) the Streamlit pages call. Each method opens
its own short transaction, so a workspace object can be shared by threads.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from labeling.annotation import queue, users
from labeling.config import (
    CONFIG_FILE,
    WorkspaceConfig,
    load_config,
    validate_labels,
    write_config,
)
from labeling.context import BACKUPS_DIR, DB_FILE, LFS_DIR, MODELS_DIR, Context
from labeling.data import exporter, importer, removal
from labeling.errors import (
    BadInput,
    StoreError,
    UnknownAnnotator,
    UnknownItem,
    WorkspaceExists,
    WorkspaceNotFound,
)
from labeling.quality import report
from labeling.rounds import core as rounds
from labeling.store import backup, db, doctor
from labeling.store.models import (
    ADJUDICATION,
    REMOVED,
    ROLES,
    SYSTEM_ROLE,
    Annotation,
    Annotator,
    Item,
    Lease,
    Round,
    utcnow,
)

DB_ENV = "LABELLOOP_DB"

_LFS_README = """\
Put labelling functions here, one or more per *.py file. labelloop loads LF code only from
this folder. Example:

    from weak_supervision import ABSTAIN, labeling_function

    @labeling_function()
    def mentions_refund(row):
        return "billing" if "refund" in row.text.lower() else ABSTAIN
"""


def resolve_db_url(root: Path, config: WorkspaceConfig | None, flag: str | None) -> str:
    """Database URL precedence: ``--db``, then ``LABELLOOP_DB``, then the toml, then SQLite."""
    for candidate, where in (
        (flag, "--db"),
        (os.environ.get(DB_ENV), DB_ENV),
        (config.database if config else None, f"database in {CONFIG_FILE}"),
    ):
        if candidate:
            _refuse_postgres_scheme(candidate, where)
            return candidate
    return db.sqlite_url(root / DB_FILE)


def _refuse_postgres_scheme(url: str, where: str) -> None:
    """``postgres://`` (Heroku's and libpq's spelling) is no SQLAlchemy scheme: say what is."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower().split("+")[0] == "postgres":
        shown = db.display_url("postgresql://" + rest)
        raise BadInput(
            f"database URL ({where}): expected the scheme postgresql:// (or "
            f"postgresql+psycopg://), found {scheme}://; write {shown}"
        )


AnnotatorRef = str | Annotator


def _remove(made: list[Path], root: Path | None) -> None:
    """Undo a failed init: it leaves nothing behind."""
    for path in reversed(made):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


class Workspace(Context):
    """A labelling project: settings, store, and the annotation, import and export calls."""

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def create(
        cls,
        directory: str | Path,
        *,
        labels: list[str] | tuple[str, ...],
        name: str | None = None,
        db_url: str | None = None,
        text_field: str = "text",
    ) -> Workspace:
        """Make ``directory`` a workspace: ``labelloop.toml``, ``lfs/``, ``models/``, the store."""
        root = Path(directory)
        labels = validate_labels(list(labels), where="labels")
        if (root / CONFIG_FILE).exists():
            raise WorkspaceExists(f"{root}: already a labelloop workspace ({CONFIG_FILE} exists)")
        if root.exists() and not root.is_dir():
            raise BadInput(f"{root}: exists and is not a folder")
        created_root = not root.exists()
        config = WorkspaceConfig(
            name=name or root.resolve().name or "labelloop",
            labels=labels,
            text_field=text_field,
            database=db_url or "",
        )
        made: list[Path] = []
        try:
            root.mkdir(parents=True, exist_ok=True)
            for sub in (LFS_DIR, MODELS_DIR):
                path = root / sub
                if not path.exists():
                    path.mkdir()
                    made.append(path)
            readme = root / LFS_DIR / "README.txt"
            if not readme.exists():
                readme.write_text(_LFS_README, encoding="utf-8")
            write_config(root, config)
            made.append(root / CONFIG_FILE)
            url = resolve_db_url(root, config, db_url)
            engine = db.open_store(url, create=True)
        except OSError as exc:
            _remove(made, root if created_root else None)
            raise BadInput(f"{root}: cannot create the workspace there ({exc.strerror})") from exc
        except BaseException:
            _remove(made, root if created_root else None)
            raise
        return cls(root, config, engine, url)

    @classmethod
    def open(cls, directory: str | Path = ".", *, db_url: str | None = None) -> Workspace:
        """Open an existing workspace (validating its toml and the store's schema)."""
        root = Path(directory)
        if not (root / CONFIG_FILE).is_file():
            raise WorkspaceNotFound(
                f"{root}: not a labelloop workspace (no {CONFIG_FILE}); create one with "
                f"`labelloop init {root} --labels a,b`"
            )
        config = load_config(root)
        url = resolve_db_url(root, config, db_url)
        own_file = root / DB_FILE
        if url == db.sqlite_url(own_file) and not own_file.exists():
            # Connecting would create an empty file and hide the loss of the real one.
            raise StoreError(
                f"{root}: the database file {DB_FILE} is missing; restore it from a backup, "
                "or point --db / LABELLOOP_DB at the workspace's database"
            )
        engine = db.open_store(url, create=False, backup_dir=root / BACKUPS_DIR)
        return cls(root, config, engine, url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r}, labels={list(self.labels)!r})"

    # ------------------------------------------------------------------ properties

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with db.write_session(self.engine) as session:
            yield session

    # ------------------------------------------------------------------ data in and out

    def import_file(
        self,
        path: str | Path,
        *,
        text_field: str | None = None,
        id_field: str | None = None,
        label_field: str | None = None,
        split: str = "pool",
        format: str | None = None,
        progress: importer.ProgressCallback | None = None,
        allow_duplicate_texts: bool = False,
        source_name: str | None = None,
    ) -> importer.ImportReport:
        """Import a CSV/TSV, JSONL or Parquet file; all of it or, on any fault, nothing.

        Rows whose text is already in the workspace (or earlier in the file) under another id
        are skipped and counted, unless ``allow_duplicate_texts``. ``source_name``: what
        messages call the file (an upload's own name; default: the path).

        A pool import is then checked for drift against the labelled items (labeling.data.drift);
        the result is on the report and stored with the import batch.
        """
        report = importer.run_import(
            self.engine,
            Path(path),
            labels=self.labels,
            text_field=text_field or self.config.text_field,
            id_field=id_field,
            label_field=label_field,
            split=split,
            fmt=format,
            queue_seed=self.config.queue_seed,
            progress=progress,
            allow_duplicate_texts=allow_duplicate_texts,
            source_name=source_name,
        )
        if split == "pool" and report.imported and report.batch_id is not None:
            from labeling.data import drift

            report.drift = drift.check_batch(self, report.batch_id)
        return report

    def export(
        self,
        out: str | Path,
        *,
        format: str | None = None,
        annotations: bool = False,
        origins: list[str] | tuple[str, ...] | None = None,
    ) -> exporter.ExportReport:
        """Write one row per item (or the annotation log) as CSV, JSONL or Parquet.

        ``origins`` (``human``, ``import``, ``adjudication``): only the annotations of those
        origins, or the items whose final label they decided.
        """
        from labeling.rounds import predictions

        return exporter.run_export(
            self.engine,
            Path(out),
            labels=self.labels,
            fmt=format,
            annotations=annotations,
            round_predictions=lambda round_id: predictions.load(self, round_id),
            origins=origins,
        )

    def remove_items(
        self,
        external_ids: Sequence[str] | None = None,
        *,
        batch: int | None = None,
        by: str | None = None,
    ) -> removal.RemovalReport:
        """Remove items (by external id, or a whole import batch) from the queue, rounds,
        metrics and export; their answers stay, and :meth:`restore_items` brings them back."""
        with self._write() as session:
            return removal.remove_items(session, external_ids=external_ids, batch_id=batch, by=by)

    def restore_items(
        self, external_ids: Sequence[str] | None = None, *, batch: int | None = None
    ) -> removal.RemovalReport:
        """Put removed items back where they were (pool or gold), answers and all."""
        with self._write() as session:
            return removal.restore_items(session, external_ids=external_ids, batch_id=batch)

    def import_batches(self) -> list[removal.BatchInfo]:
        """Every import batch, with how many of its items are removed."""
        with db.read_session(self.engine) as session:
            return removal.list_batches(session)

    # ------------------------------------------------------------------ users

    def add_user(self, name: str, *, role: str = "annotator") -> tuple[Annotator, str]:
        """Create an annotator; returns it and its sign-in token, which is not stored."""
        with self._write() as session:
            return users.add_annotator(session, name=name, role=role)

    def deactivate_user(self, name: str) -> Annotator:
        with self._write() as session:
            return users.deactivate(session, name=name)

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

    def revoke_sign_in_links(self) -> int:
        """Revoke every launch link ``serve`` printed, of every server on this store; returns
        how many there were. Running servers keep serving; their links stop signing in."""
        with self._write() as session:
            return users.revoke_sign_in_links(session)

    def list_users(self) -> list[Annotator]:
        with db.read_session(self.engine) as session:
            return users.list_annotators(session)

    def sign_in(self, token: str) -> Annotator:
        with db.read_session(self.engine) as session:
            return users.authenticate(session, token)

    def _annotator(self, session: Session, ref: AnnotatorRef) -> Annotator:
        name = ref.name if isinstance(ref, Annotator) else ref
        annotator = users.get_annotator(session, name)
        if annotator.role == SYSTEM_ROLE:
            raise UnknownAnnotator(f"{name!r} is not a person and cannot label")
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

    # ------------------------------------------------------------------ annotation

    def next_item(self, annotator: AnnotatorRef) -> queue.QueueItem | None:
        """The item this annotator should label now (leased to them), or None when done."""
        with self._write() as session:
            return queue.claim_next_item(
                session,
                annotator=self._annotator(session, annotator),
                overlap=self.config.overlap,
                lease_seconds=self.config.lease_seconds,
                gold_rate=self.config.gold_rate,
            )

    def annotate(
        self,
        item_id: int | str,
        annotator: AnnotatorRef,
        label: str,
        *,
        duration_ms: int | None = None,
    ) -> Annotation:
        """Label an item the annotator holds. ``item_id``: the internal id or the external id."""
        with self._write() as session:
            return queue.annotate(
                session,
                annotator=self._annotator(session, annotator),
                item_id=self._item_id(session, item_id),
                label=label,
                labels=self.labels,
                overlap=self.config.overlap,
                duration_ms=duration_ms,
            )

    def skip(
        self, item_id: int | str, annotator: AnnotatorRef, *, duration_ms: int | None = None
    ) -> Annotation:
        with self._write() as session:
            return queue.skip(
                session,
                annotator=self._annotator(session, annotator),
                item_id=self._item_id(session, item_id),
                overlap=self.config.overlap,
                duration_ms=duration_ms,
            )

    def undo(self, annotator: AnnotatorRef) -> queue.QueueItem:
        """Bring back the annotator's previous item so they can change their answer."""
        with self._write() as session:
            return queue.undo(
                session,
                annotator=self._annotator(session, annotator),
                overlap=self.config.overlap,
                lease_seconds=self.config.lease_seconds,
            )

    def release(self, annotator: AnnotatorRef) -> int:
        with self._write() as session:
            return queue.release(session, annotator=self._annotator(session, annotator))

    # ------------------------------------------------------------------ status

    def status(self, *, metrics: bool = False) -> dict[str, Any]:
        """Counts for ``labelloop status``; the keys of DESIGN.md's JSON shape, and more.

        With ``metrics``, also every quality, coverage, model, drift, stopping and throughput
        number (labeling.quality.core.summary; docs/status.md documents the keys).
        """
        with db.read_session(self.engine) as session:
            by_split = dict(
                session.exec(select(Item.split, func.count()).group_by(col(Item.split))).all()
            )
            labelled = session.exec(
                select(func.count()).where(Item.split == "pool", Item.n_labels > 0)
            ).one()
            current = (
                select(Annotation.label, func.count())
                .where(col(Annotation.superseded_by).is_(None), Annotation.origin != ADJUDICATION)
                .group_by(col(Annotation.label))
            )
            adjudications = session.exec(
                select(func.count()).where(
                    col(Annotation.superseded_by).is_(None), Annotation.origin == ADJUDICATION
                )
            ).one()
            by_label: dict[str, int] = {}
            skips = 0
            for label, n in session.exec(current).all():
                if label is None:
                    skips = n
                else:
                    by_label[label] = n
            log_rows = session.exec(select(func.count()).select_from(Annotation)).one()
            active_by_role = dict(
                session.exec(
                    select(Annotator.role, func.count())
                    .where(Annotator.role != SYSTEM_ROLE, col(Annotator.active).is_(True))
                    .group_by(col(Annotator.role))
                ).all()
            )
            rounds = session.exec(select(func.count()).select_from(Round)).one()
            leased = session.exec(select(func.count()).where(Lease.expires_at > utcnow())).one()
        pool = int(by_split.get("pool", 0))
        gold = int(by_split.get("gold", 0))
        removed = int(by_split.get(REMOVED, 0))
        info = {
            "workspace": self.config.name,
            "labels": list(self.labels),
            "database": db.display_url(self.db_url),
            "items": {
                "total": pool + gold,
                "pool": pool,
                "gold": gold,
                "labelled": labelled,
                "removed": removed,
            },
            "annotations": sum(by_label.values()),
            "annotations_by_label": {label: by_label.get(label, 0) for label in self.labels},
            "skips": skips,
            "annotation_log_rows": log_rows,
            "annotators": sum(active_by_role.values()),
            # Active people per role: "3 annotators" counts people who label, not leads.
            "people_by_role": {role: int(active_by_role.get(role, 0)) for role in ROLES},
            "rounds": rounds,
            "leases_active": leased,
            "adjudications": adjudications,
            "coverage": {"human": round(labelled / pool, 6) if pool else 0.0},
            "quality": {},
        }
        if metrics:
            from labeling.quality import core as quality

            info.update(quality.summary(self))
        return info

    def metrics(self) -> dict[str, Any]:
        """Every quality, coverage and model number; ``status(metrics=True)`` minus the counts."""
        from labeling.quality import core as quality

        return quality.summary(self)

    def report_html(self, *, summary: dict[str, Any] | None = None) -> str:
        """The Metrics page as one self-contained HTML page (``summary``: :meth:`metrics`, when
        already computed)."""
        return report.render_html(self.status(), summary if summary is not None else self.metrics())

    def write_report(self, out: str | Path) -> Path:
        """Write :meth:`report_html` to ``out`` (``.html``), whole or not at all."""
        return report.write_report(Path(out), self.report_html)

    # ------------------------------------------------------------------ operations

    def backup(self, out: str | Path) -> dict[str, Any]:
        """Write a consistent copy of the store to ``out`` (SQLite file, or ``pg_dump`` custom
        format), while people keep labelling."""
        return backup.backup_store(self.engine, Path(out))

    def doctor(self, *, fix: bool = False) -> dict[str, Any]:
        """Check the store and the rounds (labeling.store.doctor, labeling.rounds.core); with
        ``fix``, repair label counts and fail rounds left running by a dead worker."""
        schema, checks = doctor.check_store(self.engine, fix=fix)
        checks += rounds.round_checks(self, fix=fix)
        return {
            "ok": all(c["ok"] or c["fixed"] == c["count"] for c in checks),
            "schema": schema,
            "checks": checks,
        }
