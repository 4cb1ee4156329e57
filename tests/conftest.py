"""Shared fixtures: real workspaces on real SQLite files in tmp_path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from labeling import Workspace

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"
YOUTUBE = SHARED_DATASETS / "youtube"
TREC = SHARED_DATASETS / "trec"


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh workspace with labels a, b, c."""
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b", "c"])
    yield ws
    ws.close()


def db_fingerprint(ws: Workspace) -> str:
    """A digest of every row of every table: equal before and after means unchanged."""
    digest = hashlib.sha256()
    with ws.engine.connect() as conn:
        tables = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
            )
        ]
        for table in tables:
            digest.update(table.encode())
            for row in conn.exec_driver_sql(f'SELECT * FROM "{table}" ORDER BY 1'):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()
