"""The store: engine settings, schema version guard, workspace creation and URL precedence."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from labeling import Workspace
from labeling.errors import BadInput, SchemaTooNew, StoreError, WorkspaceExists, WorkspaceNotFound
from labeling.store import db
from labeling.store.models import SCHEMA_VERSION

TABLES = {
    "item",
    "annotator",
    "annotation",
    "lease",
    "labelingfunction",
    "lfvote",
    "round",
    "score",
    "schemainfo",
    "importbatch",
    "alembic_version",
}


def test_create_makes_files_and_tables(tmp_path):
    ws = Workspace.create(tmp_path / "w", labels=["x", "y"])
    ws.close()
    root = tmp_path / "w"
    assert (root / "labelloop.toml").is_file()
    assert (root / "lfs").is_dir()
    assert (root / "labelloop.db").is_file()
    with sqlite3.connect(root / "labelloop.db") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute(
            "SELECT value FROM schemainfo WHERE key='schema_version'"
        ).fetchone()[0]
    assert names >= TABLES
    assert int(version) == SCHEMA_VERSION


def test_sqlite_pragmas(tmp_path):
    ws = Workspace.create(tmp_path / "w", labels=["x", "y"])
    with ws.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS
    ws.close()


def test_foreign_keys_are_enforced(tmp_path):
    ws = Workspace.create(tmp_path / "w", labels=["x", "y"])
    with pytest.raises(Exception, match="FOREIGN KEY"), ws.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO annotation (item_id, annotator_id, skipped, origin, created_at) "
            "VALUES (999, 999, 0, 'human', '2026-01-01')"
        )
    ws.close()


def test_newer_schema_is_refused(tmp_path):
    ws = Workspace.create(tmp_path / "w", labels=["x", "y"])
    newer = f"{SCHEMA_VERSION + 1:04d}"
    with ws.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newer})
    ws.close()
    with pytest.raises(SchemaTooNew, match=f"schema revision '{newer}'.*Upgrade labelloop"):
        Workspace.open(tmp_path / "w")


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not a labelloop database"):
        db.open_store(db.sqlite_url(path), create=True)


def test_no_engine_at_import_time():
    import importlib

    import labeling.store.db as module

    importlib.reload(module)
    assert not any(name for name, value in vars(module).items() if type(value).__name__ == "Engine")


def test_bad_url(tmp_path):
    with pytest.raises(BadInput, match="not a valid SQLAlchemy URL"):
        db.make_engine("::nonsense::")
    with pytest.raises(BadInput, match="no driver"):
        db.make_engine("nosuchdialect://x/y")


def test_init_twice_is_refused(tmp_path):
    Workspace.create(tmp_path / "w", labels=["x", "y"]).close()
    with pytest.raises(WorkspaceExists):
        Workspace.create(tmp_path / "w", labels=["x", "y"])


def test_open_a_plain_folder(tmp_path):
    with pytest.raises(WorkspaceNotFound, match="not a labelloop workspace"):
        Workspace.open(tmp_path)


def test_failed_init_leaves_nothing(tmp_path):
    target = tmp_path / "w"
    with pytest.raises(StoreError):
        Workspace.create(target, labels=["x", "y"], db_url=f"sqlite:///{tmp_path}/no/such/dir.db")
    assert not target.exists()


def test_db_url_precedence(tmp_path, monkeypatch):
    root = tmp_path / "w"
    Workspace.create(root, labels=["x", "y"]).close()
    env_db = tmp_path / "env.db"
    flag_db = tmp_path / "flag.db"
    toml_db = tmp_path / "toml.db"
    # 4. the workspace's own SQLite file
    with Workspace.open(root) as ws:
        assert ws.db_url == db.sqlite_url(root / "labelloop.db")
    # 3. the toml
    text = (
        (root / "labelloop.toml")
        .read_text()
        .replace('database = ""', f'database = "{db.sqlite_url(toml_db)}"')
    )
    (root / "labelloop.toml").write_text(text)
    db.open_store(db.sqlite_url(toml_db), create=True).dispose()
    with Workspace.open(root) as ws:
        assert ws.db_url == db.sqlite_url(toml_db)
    # 2. LABELLOOP_DB beats the toml
    db.open_store(db.sqlite_url(env_db), create=True).dispose()
    monkeypatch.setenv("LABELLOOP_DB", db.sqlite_url(env_db))
    with Workspace.open(root) as ws:
        assert ws.db_url == db.sqlite_url(env_db)
    # 1. --db beats everything
    db.open_store(db.sqlite_url(flag_db), create=True).dispose()
    with Workspace.open(root, db_url=db.sqlite_url(flag_db)) as ws:
        assert ws.db_url == db.sqlite_url(flag_db)


def test_other_url_must_be_initialised(tmp_path):
    root = tmp_path / "w"
    Workspace.create(root, labels=["x", "y"]).close()
    with pytest.raises(StoreError, match="is empty"):
        Workspace.open(root, db_url=db.sqlite_url(tmp_path / "fresh.db"))


def test_missing_database_file_is_not_recreated_empty(tmp_path):
    root = tmp_path / "w"
    ws = Workspace.create(root, labels=["x", "y"])
    ws.close()
    for path in root.glob("labelloop.db*"):
        path.unlink()
    with pytest.raises(StoreError, match="labelloop.db is missing"):
        Workspace.open(root)
    assert not (root / "labelloop.db").exists()


def test_init_refuses_a_database_that_holds_another_workspace(tmp_path):
    shared = db.sqlite_url(tmp_path / "shared.db")
    Workspace.create(tmp_path / "first", labels=["x", "y"], db_url=shared).close()
    with pytest.raises(StoreError, match="already holds a labelloop store"):
        Workspace.create(tmp_path / "second", labels=["p", "q"], db_url=shared)
    assert not (tmp_path / "second").exists()


def test_init_where_no_folder_can_be(tmp_path):
    blocker = tmp_path / "file.csv"
    blocker.write_text("x")
    with pytest.raises(BadInput, match="cannot create the workspace there"):
        Workspace.create(blocker / "sub", labels=["x", "y"])


def test_a_version_2_store_is_upgraded_in_place(tmp_path):
    ws = Workspace.create(tmp_path / "w", labels=["x", "y"])
    ws.close()
    with sqlite3.connect(tmp_path / "w" / "labelloop.db") as conn:  # as version 2 left it
        conn.execute("ALTER TABLE importbatch DROP COLUMN drift")
        conn.execute("ALTER TABLE importbatch DROP COLUMN priority_left")
        conn.execute("DROP INDEX ix_score_round_open_score")
        conn.execute("ALTER TABLE score DROP COLUMN closed")
        conn.execute("CREATE INDEX ix_score_round_score ON score (round_id, score)")
        conn.execute("DROP INDEX ix_item_split_labels_rank")
        conn.execute("CREATE INDEX ix_item_split_labels ON item (split, n_labels)")
        for column in ("removed_from", "removed_at", "removed_by"):
            conn.execute(f"ALTER TABLE item DROP COLUMN {column}")
        for name in ("insert", "delete", "update"):  # revision 0007: search, flags, bulk
            conn.execute(f"DROP TRIGGER item_fts_{name}")
        conn.execute("DROP TABLE item_fts")
        conn.execute("DROP INDEX ix_item_split_label")
        conn.execute("DROP INDEX ix_item_id_split_label")  # revision 0009
        conn.execute("ALTER TABLE item DROP COLUMN label")
        conn.execute("DROP INDEX ix_annotation_batch")
        conn.execute("ALTER TABLE annotation DROP COLUMN batch")
        conn.execute("DROP TABLE flag")
        conn.execute("DROP TABLE bulkbatch")
        conn.execute("DROP INDEX ix_annotation_superseded_by")  # revision 0008
        for column in ("suggestion", "suggestion_source", "suggestion_withheld"):
            conn.execute(f"ALTER TABLE annotation DROP COLUMN {column}")  # revision 0010
        conn.execute("ALTER TABLE annotation DROP COLUMN guidelines_version")
        conn.execute("DROP TABLE guidelineversion")
        conn.execute("DROP TABLE llmanswer")
        conn.execute("ALTER TABLE lease DROP COLUMN tab")  # revision 0011
        conn.execute("DROP TABLE clientop")
        conn.execute("DROP INDEX ix_item_label_seq")  # revision 0012
        for column in ("label_seq", "label_changed_at"):
            conn.execute(f"ALTER TABLE item DROP COLUMN {column}")
        conn.execute("DROP TABLE counter")
        conn.execute("DROP TABLE outbox")
        conn.execute("UPDATE schemainfo SET value = '2' WHERE key = 'schema_version'")
        conn.execute("DROP TABLE alembic_version")  # labelloop used no Alembic then
    with Workspace.open(tmp_path / "w") as ws:
        path = tmp_path / "items.csv"
        path.write_text("text\none\ntwo\n")
        assert ws.import_file(path).imported == 2
    with sqlite3.connect(tmp_path / "w" / "labelloop.db") as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(importbatch)")}
        version = conn.execute("SELECT value FROM schemainfo WHERE key = 'schema_version'")
        assert {"drift", "priority_left"} <= columns
        assert "closed" in {row[1] for row in conn.execute("PRAGMA table_info(score)")}
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(score)")}
        assert "ix_score_round_open_score" in indexes and "ix_score_round_score" not in indexes
        assert version.fetchone()[0] == str(SCHEMA_VERSION)
        assert (
            conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            == f"{SCHEMA_VERSION:04d}"
        )
    assert not (tmp_path / "w" / "backups").exists()  # it held no rows: nothing to back up
