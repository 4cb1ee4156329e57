"""What the layers below the facade take: a workspace's folder, settings and store.

:class:`labeling.workspace.Workspace` is a :class:`Context` with the whole Python API on top.
Modules under ``labeling.store``, ``labeling.data``, ``labeling.annotation``, ``labeling.rounds``,
``labeling.weak`` and ``labeling.quality`` take a ``Context`` (any ``Workspace`` is one), so
they never import the facade that calls them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from labeling.config import MULTI_LABEL, WorkspaceConfig
from labeling.errors import BadInput
from labeling.store import db

# What long operations (import, LF apply) report as they go: (stage, done, total).
ProgressCallback = Callable[[str, int, int], None]

DB_FILE = "labelloop.db"
LFS_DIR = "lfs"
MODELS_DIR = "models"
# Where a store is backed up before labelloop upgrades its schema.
BACKUPS_DIR = "backups"


class Context:
    """A workspace's folder, settings (``labelloop.toml``) and store engine."""

    def __init__(self, root: Path, config: WorkspaceConfig, engine: Engine, db_url: str) -> None:
        self.root = root
        self.config = config
        self.engine = engine
        self.db_url = db_url

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    @property
    def multilabel(self) -> bool:
        """Whether an answer is a set of labels (``task = "multi-label"``)."""
        return self.config.task == MULTI_LABEL

    def require_single_label(self, what: str) -> None:
        """Refuse ``what`` in a multi-label workspace, for the parts not built for sets yet."""
        if self.multilabel:
            raise BadInput(
                f"{what} is not available in multi-label workspaces yet; see docs/multilabel.md "
                "for what is"
            )

    @property
    def lfs_dir(self) -> Path:
        return self.root / LFS_DIR

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS_DIR

    @property
    def backups_dir(self) -> Path:
        return self.root / BACKUPS_DIR

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with db.read_session(self.engine) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with db.write_session(self.engine) as session:
            yield session
