"""Shared fixtures: real workspaces on real SQLite files in tmp_path."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest

from labeling import Workspace
from tests import pgserver

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"
YOUTUBE = SHARED_DATASETS / "youtube"
TREC = SHARED_DATASETS / "trec"


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Streamlit's AppTest runs scripts as ``__main__`` and leaves its module behind; a later
    process started with the spawn method (Dask's workers) would re-run that script. Put the
    real ``__main__`` back after every test."""
    import sys

    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


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


# ---------------------------------------------------------------- backends: SQLite and PostgreSQL

BACKENDS = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("all", *BACKENDS),
        default="all",
        help="database backends for the store, queue and import tests (default: all; "
        "postgresql needs the server binaries, e.g. `apt-get install -y postgresql`)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend")
        metafunc.parametrize("backend", BACKENDS if chosen == "all" else (chosen,))


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the whole run; each test gets a database of its own."""
    try:
        server = pgserver.start()
    except pgserver.PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


_database_names = itertools.count()


@pytest.fixture
def db_url(backend, request) -> str | None:
    """None for the workspace's own SQLite file, or the URL of a fresh PostgreSQL database."""
    if backend == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"t{next(_database_names)}")
