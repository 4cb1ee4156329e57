"""A workspace: one labelling project in one folder, and the Python API over it.

``Workspace`` is what notebooks, the CLI and (later) the Streamlit pages call. Each method opens
its own short transaction, so a workspace object can be shared by threads.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from labeling.annotation.api import AnnotationAPI
from labeling.annotation.assist_api import AssistAPI
from labeling.annotation.buffer_api import BufferAPI
from labeling.annotation.bulk_api import BulkAPI
from labeling.config import (
    CONFIG_FILE,
    SINGLE_LABEL,
    WorkspaceConfig,
    load_config,
    parse_task_option,
    validate_labels,
    write_config,
)
from labeling.context import BACKUPS_DIR, DB_FILE, LFS_DIR, MODELS_DIR
from labeling.data.api import DataAPI
from labeling.data.service_api import ServiceAPI
from labeling.errors import (
    BadInput,
    StoreError,
    WorkspaceExists,
    WorkspaceNotFound,
)
from labeling.quality.api import QualityAPI
from labeling.rounds.api import RoundsAPI
from labeling.rounds.jobs import round_checks
from labeling.store import answers, backup, db, doctor, labelsets, outbox
from labeling.weak.api import WeakAPI

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


def _remove(made: list[Path], root: Path | None) -> None:
    """Undo a failed init: it leaves nothing behind."""
    for path in reversed(made):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


class Workspace(
    DataAPI,
    ServiceAPI,
    AnnotationAPI,
    BufferAPI,
    BulkAPI,
    AssistAPI,
    WeakAPI,
    RoundsAPI,
    QualityAPI,
):
    """A labelling project: its folder, settings and store, and every call the UI and the CLI
    make. The calls live beside the code they drive, one class per area (``labeling.data.api``,
    ``labeling.annotation.api`` with ``labeling.annotation.assist_api``,
    ``labeling.annotation.buffer_api`` and ``labeling.annotation.bulk_api``,
    ``labeling.weak.api``, ``labeling.rounds.api``, ``labeling.quality.api``); this class adds
    the life cycle and the store's operations."""

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
        task: str = SINGLE_LABEL,
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
            task=parse_task_option(task),
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
        labelsets.record_task(engine, config.task)
        answers.sync_item_labels(engine, tuple(config.labels))
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
        try:
            labelsets.check_task(engine, config.task, str(root / CONFIG_FILE))
        except BaseException:
            engine.dispose()
            raise
        answers.sync_item_labels(engine, tuple(config.labels))
        # Code that holds only the engine (an import's transaction) writes webhook events too.
        outbox.attach(engine, config.webhooks, workspace=config.name)
        return cls(root, config, engine, url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r}, labels={list(self.labels)!r})"

    # ------------------------------------------------------------------ operations

    def backup(self, out: str | Path) -> dict[str, Any]:
        """Write a consistent copy of the store to ``out`` (SQLite file, or ``pg_dump`` custom
        format), while people keep labelling."""
        return backup.backup_store(self.engine, Path(out))

    def doctor(self, *, fix: bool = False) -> dict[str, Any]:
        """Check the store and the rounds (labeling.store.doctor, labeling.rounds.jobs); with
        ``fix``, repair label counts, item labels and the search index, and fail rounds left
        running by a dead worker."""
        schema, checks = doctor.check_store(self.engine, fix=fix)
        checks += doctor.derived_checks(self.engine, self.labels, fix=fix)
        checks += round_checks(self, fix=fix)
        return {
            "ok": all(c["ok"] or c["fixed"] == c["count"] for c in checks),
            "schema": schema,
            "checks": checks,
        }
