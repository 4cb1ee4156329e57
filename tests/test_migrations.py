"""Schema migrations with Alembic, on SQLite and PostgreSQL (``--backend``).

A store made by the first schema (revision 0001, or schema_version 1 from before Alembic) is
backed up and upgraded when it is opened, keeps its rows, and ends equal to the models; a
store from a newer labelloop is refused untouched; two opens at once upgrade once.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.errors import SchemaTooNew, StoreError
from labeling.store import db, migrations, models, search_index
from labeling.store.models import Annotation, ImportBatch, Item, LabelingFunction, Round, Score

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PROMOTED = datetime(2026, 1, 3, 12, 0, 0, tzinfo=UTC)


def _url(ws_root: Path, db_url: str | None) -> str:
    return db_url or db.sqlite_url(ws_root / "labelloop.db")


def _wipe(url: str) -> None:
    """Leave the database empty (the workspace's files stay)."""
    engine = db.make_engine(url)
    with engine.begin() as conn:
        search_index.drop(conn)
        SQLModel.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()


def _schema_1_rows(conn: sa.Connection) -> None:
    """A row or more in every table of schema 1, written with schema 1's columns only."""

    def t(name: str, *columns: str) -> sa.TableClause:
        types = {"created_at": sa.DateTime(timezone=True), "expires_at": sa.DateTime(True),
                 "served_at": sa.DateTime(True), "updated_at": sa.DateTime(True),
                 "heartbeat": sa.DateTime(True), "finished_at": sa.DateTime(True),
                 "started_at": sa.DateTime(True), "active": sa.Boolean(), "holds": sa.Boolean(),
                 "skipped": sa.Boolean(), "promoted": sa.Boolean()}  # fmt: skip
        return sa.table(name, *(sa.column(c, types.get(c)) for c in columns))

    def insert(name: str, rows: list[dict]) -> None:
        conn.execute(t(name, *rows[0]).insert(), rows)

    insert("importbatch", [dict(id=1, source_name="a.csv", format="csv", split="pool",
           text_field="text", id_field="id", label_field=None, fields='["id", "text"]',
           rows_read=3, imported=3, duplicates=0, created_at=T0)])  # fmt: skip
    insert("item", [dict(id=k, external_id=f"e{k}", text=f"text {k}", source="{}",
           content_hash=f"h{k}", split="gold" if k == 3 else "pool",
           gold_label="a" if k == 3 else None, n_labels=1 if k == 1 else 0, rank=2**62 + k,
           batch_id=1, created_at=T0) for k in (1, 2, 3)])  # fmt: skip
    insert("annotator", [
        dict(id=1, name="ann", role="annotator", token_id="t1", token_hash="scrypt$x",
             active=True, created_at=T0),
        dict(id=2, name="import", role="system", token_id=None, token_hash=None, active=True,
             created_at=T0),
    ])  # fmt: skip
    insert("signinlink", [dict(id=1, token_id="s1", token_hash="scrypt$y", annotator_id=1,
           expires_at=T0, created_at=T0)])  # fmt: skip
    insert("round", [dict(id=1, status="succeeded", trigger="manual", strategy="entropy",
           n_human=1, n_weak=0, model_path="models/round-0001", metrics='{"f1": 0.5}',
           promoted=True, error=None, heartbeat=T0, created_at=T0, started_at=T0,
           finished_at=T0)])  # fmt: skip
    insert("annotation", [
        dict(id=1, item_id=1, annotator_id=1, label="b", skipped=False, duration_ms=900,
             round_id=1, superseded_by=None, origin="human", created_at=T0),
        dict(id=2, item_id=1, annotator_id=1, label="a", skipped=False, duration_ms=800,
             round_id=1, superseded_by=None, origin="human", created_at=T0),
    ])  # fmt: skip
    conn.execute(sa.text("UPDATE annotation SET superseded_by = 2 WHERE id = 1"))
    insert("lease", [dict(id=1, item_id=2, annotator_id=1, served_at=T0, expires_at=T0,
           round_id=1, undo_of=None, holds=True)])  # fmt: skip
    insert("labelingfunction", [dict(id=1, name="kw_refund", kind="keyword",
           spec='{"keywords": ["refund"]}', label="a", version="v1", active=True,
           created_at=T0, updated_at=T0)])  # fmt: skip
    insert("lfvote", [dict(lf_id=1, item_id=2, lf_version="v1", label="a")])
    # Item 1 is labelled: its round pushed it to the bottom (the marker schema 3 reads as closed).
    insert("score", [
        dict(round_id=1, item_id=1, score=-1.0e30, prediction="a", confidence=0.9),
        dict(round_id=1, item_id=2, score=0.7, prediction="b", confidence=0.6),
    ])  # fmt: skip
    if conn.dialect.name == "postgresql":  # the rows above gave their ids; move the counters on
        for name in ("importbatch", "item", "annotator", "signinlink", "round", "annotation",
                     "lease", "labelingfunction"):  # fmt: skip
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) FROM {name}"
            )


def _old_workspace(tmp_path: Path, db_url: str | None, revision: str, *, stamped: bool) -> Path:
    """A workspace whose store was made by ``revision``, with rows; without ``stamped``, as
    labelloop left it before Alembic (schemainfo only)."""
    root = tmp_path / "old"
    Workspace.create(root, labels=["a", "b"], db_url=db_url).close()
    url = _url(root, db_url)
    _wipe(url)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        migrations.upgrade(conn, revision)
        _schema_1_rows(conn)
        if not stamped:
            conn.exec_driver_sql("DROP TABLE alembic_version")
    engine.dispose()
    return root


def _revision_and_version(engine: sa.Engine) -> tuple[str | None, str]:
    with engine.connect() as conn:
        legacy = conn.exec_driver_sql(
            "SELECT value FROM schemainfo WHERE key = 'schema_version'"
        ).scalar()
        return migrations.current_revision(conn), legacy


@pytest.mark.parametrize("stamped", [True, False], ids=["revision-0001", "schema_version-1"])
def test_a_schema_1_workspace_is_backed_up_and_upgraded_on_open(tmp_path, db_url, stamped, capsys):
    root = _old_workspace(tmp_path, db_url, "0001", stamped=stamped)
    capsys.readouterr()
    with Workspace.open(root, db_url=db_url) as ws:
        notes = capsys.readouterr().err
        backups = sorted((root / "backups").iterdir())
        assert len(backups) == 1
        assert str(backups[0]) in notes and "0001" in notes and migrations.head() in notes
        assert _revision_and_version(ws.engine) == (migrations.head(), str(models.SCHEMA_VERSION))
        with ws.engine.connect() as conn:
            assert migrations.schema_differences(conn) == []
        with Session(ws.engine) as session:
            items = session.exec(select(Item).order_by(Item.id)).all()
            assert [(i.external_id, i.split, i.n_labels, i.rank) for i in items] == [
                ("e1", "pool", 1, 2**62 + 1), ("e2", "pool", 0, 2**62 + 2),
                ("e3", "gold", 0, 2**62 + 3),
            ]  # fmt: skip
            answers = session.exec(select(Annotation).order_by(Annotation.id)).all()
            assert [(a.label, a.superseded_by) for a in answers] == [("b", 2), ("a", None)]
            assert answers[0].created_at == T0
            # revision 0007: the search index covers the old items; the first open filled in
            # each item's label from its answers
            assert [i.label for i in items] == ["a", None, None]
        assert ws.search("text")["total"] == 3
        assert [i["id"] for i in ws.search('"text 2"')["items"]] == ["e2"]
        with Session(ws.engine) as session:
            round_ = session.get(Round, 1)
            assert round_.promoted and round_.promoted_at is None and round_.worker is None
            lf = session.get(LabelingFunction, 1)
            assert (lf.applied_version, lf.applied_through, lf.stats) == (None, 0, "{}")
            batch = session.get(ImportBatch, 1)
            assert (batch.drift, batch.priority_left, batch.imported) == ("{}", 0, 3)
            closed = {s.item_id: s.closed for s in session.exec(select(Score)).all()}
            assert closed == {1: True, 2: False}
            assert session.exec(select(sa.func.count()).select_from(models.Lease)).one() == 1
            assert session.exec(select(sa.func.count()).select_from(models.LFVote)).one() == 1
            assert session.exec(select(sa.func.count()).select_from(models.SignInLink)).one() == 1
        # The upgraded store works: the promoted round's scores serve the next item.
        ws.add_user("bea")
        served = ws.next_item("bea")
        # Item 2 is the open pool item; item 3 can come as a hidden gold check.
        assert served is not None and served.item_id in (2, 3) and served.round_id == 1
        ws.annotate(served.item_id, "bea", "b")
        with db.write_session(ws.engine) as session:  # the new column takes aware times
            round_ = session.get(Round, 1)
            round_.promoted_at = PROMOTED
            session.add(round_)
        with Session(ws.engine) as session:
            assert session.get(Round, 1).promoted_at == PROMOTED
    # A second open finds it current: no backup, no notice.
    with Workspace.open(root, db_url=db_url):
        pass
    assert capsys.readouterr().err == ""
    assert len(list((root / "backups").iterdir())) == 1
    _check_backup(backups[0], db_url, tmp_path, stamped=stamped)


def _check_backup(path: Path, db_url: str | None, tmp_path: Path, *, stamped: bool) -> None:
    """The backup is a whole copy of the store as it was before the upgrade."""
    if db_url is None:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            assert ("alembic_version" in tables) == stamped
            assert "weaklabel" not in tables  # schema 1 had none
            assert conn.execute("SELECT count(*) FROM item").fetchone()[0] == 3
            assert conn.execute("SELECT value FROM schemainfo").fetchone()[0] == "1"
        return
    tool = shutil.which("pg_restore")
    if tool is None:
        pytest.fail("pg_restore is needed to check a PostgreSQL backup (install postgresql)")
    listed = subprocess.run([tool, "--list", str(path)], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "TABLE DATA public item" in listed.stdout
    assert ("TABLE DATA public alembic_version" in listed.stdout) == stamped
    assert "TABLE public weaklabel" not in listed.stdout


@pytest.mark.parametrize("revision", ["0002", "0003"])
def test_stores_of_schema_2_and_3_from_before_alembic_are_upgraded(tmp_path, db_url, revision):
    root = _old_workspace(tmp_path, db_url, revision, stamped=False)
    with Workspace.open(root, db_url=db_url) as ws:
        assert _revision_and_version(ws.engine)[0] == migrations.head()
        with ws.engine.connect() as conn:
            assert migrations.schema_differences(conn) == []
        with Session(ws.engine) as session:
            assert len(session.exec(select(Annotation)).all()) == 2
            closed = {s.item_id: s.closed for s in session.exec(select(Score)).all()}
    # Schema 3 already had the flag: rows written after it keep what they were given.
    assert closed == ({1: True, 2: False} if revision == "0002" else {1: False, 2: False})


def test_a_new_store_equals_the_models_and_the_revisions(tmp_path, db_url):
    """create_all + stamp (the fast path for new stores) and running every revision agree."""
    with Workspace.create(tmp_path / "new", labels=["a", "b"], db_url=db_url) as ws:
        assert _revision_and_version(ws.engine) == (migrations.head(), str(models.SCHEMA_VERSION))
        with ws.engine.connect() as conn:
            assert migrations.schema_differences(conn) == []
        url = ws.db_url
    _wipe(url)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        migrations.upgrade(conn, "head")
    with engine.connect() as conn:
        assert migrations.schema_differences(conn) == []
    assert _revision_and_version(engine) == (migrations.head(), str(models.SCHEMA_VERSION))
    # Every revision can be undone (for development; labelloop itself never downgrades).
    with engine.begin() as conn:
        migrations.downgrade(conn, "base")
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    with engine.begin() as conn:
        migrations.upgrade(conn, "head")
    with engine.connect() as conn:
        assert migrations.schema_differences(conn) == []
    engine.dispose()


def test_legacy_revisions_and_schema_version_follow_the_scripts():
    assert migrations.head() == f"{models.SCHEMA_VERSION:04d}"
    script = migrations.script_directory()
    for version, revision in migrations.LEGACY_REVISIONS.items():
        assert script.get_revision(revision).doc.startswith(f"Schema {version}:")
    assert [r.revision for r in script.walk_revisions("base", "heads")][::-1] == [
        f"{n:04d}" for n in range(1, models.SCHEMA_VERSION + 1)
    ]


def test_a_store_from_a_newer_labelloop_is_refused_and_left_alone(tmp_path, db_url):
    root = tmp_path / "w"
    with Workspace.create(root, labels=["a", "b"], db_url=db_url) as ws:
        with ws.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
        before = _dump(ws.engine)
        url = ws.db_url
    with pytest.raises(SchemaTooNew) as raised:
        Workspace.open(root, db_url=db_url)
    message = str(raised.value)
    assert db.display_url(url) in message
    assert "'0099'" in message and f"'{migrations.head()}'" in message
    assert "upgrade labelloop" in message.lower() and "not changed" in message
    assert not (root / "backups").exists()
    engine = db.make_engine(url)
    assert _dump(engine) == before
    # The CLI says it in one line on stderr, exit 1.
    args = ["status", "-w", str(root)] + (["--db", db_url] if db_url else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "error: database" in result.stderr
    assert "upgrade labelloop" in result.stderr.lower()
    # A store from before Alembic with a schema_version past the last one is refused as well.
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.exec_driver_sql("UPDATE schemainfo SET value = '7' WHERE key = 'schema_version'")
    engine.dispose()
    with pytest.raises(SchemaTooNew, match="schema version 7.*up to 3.*upgrade labelloop"):
        Workspace.open(root, db_url=db_url)


def _dump(engine: sa.Engine) -> list:
    """Every row of every table, and the index names: equal means unchanged."""
    out = []
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name in sorted(inspector.get_table_names()):
            out.append((name, sorted(ix["name"] for ix in inspector.get_indexes(name))))
            out.append(sorted(map(repr, conn.execute(sa.text(f'SELECT * FROM "{name}"')))))
    return out


def test_a_failed_upgrade_or_backup_changes_nothing(tmp_path, db_url, monkeypatch):
    root = _old_workspace(tmp_path, db_url, "0001", stamped=False)
    url = _url(root, db_url)
    engine = db.make_engine(url)
    before = _dump(engine)
    real_upgrade = migrations.upgrade

    def upgrade_then_fail(conn, revision="head"):
        real_upgrade(conn, revision)
        raise RuntimeError("power cut after the last migration")

    monkeypatch.setattr(migrations, "upgrade", upgrade_then_fail)
    with pytest.raises(RuntimeError, match="power cut"):
        Workspace.open(root, db_url=db_url)
    assert _dump(engine) == before  # no alembic_version, no new columns: all rolled back
    monkeypatch.setattr(migrations, "upgrade", real_upgrade)

    from labeling.store import backup

    def no_backup(_engine, _out):
        raise backup.BackupFailed("disk full")

    monkeypatch.setattr(backup, "backup_store", no_backup)
    with pytest.raises(StoreError, match="backup before it failed, so nothing was changed"):
        Workspace.open(root, db_url=db_url)
    assert _dump(engine) == before
    engine.dispose()


def test_two_opens_at_once_upgrade_once(tmp_path, db_url):
    root = _old_workspace(tmp_path, db_url, "0001", stamped=True)
    url = _url(root, db_url)
    notes: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def open_it() -> None:
        try:
            barrier.wait()
            engine = db.open_store(url, create=False, backup_dir=root / "b", notify=notes.append)
            engine.dispose()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(list((root / "b").iterdir())) == 1
    assert sum("upgraded from schema revision 0001" in note for note in notes) == 1
    engine = db.make_engine(url)
    assert _revision_and_version(engine)[0] == migrations.head()
    engine.dispose()


def test_an_empty_old_store_is_upgraded_without_a_backup(tmp_path, db_url):
    root = tmp_path / "w"
    Workspace.create(root, labels=["a", "b"], db_url=db_url).close()
    url = _url(root, db_url)
    _wipe(url)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        migrations.upgrade(conn, "0001")
    engine.dispose()
    notes: list[str] = []
    db.open_store(url, create=False, backup_dir=root / "backups", notify=notes.append).dispose()
    assert not (root / "backups").exists()
    assert notes == [f"database {db.display_url(url)} upgraded from schema revision 0001 to "
                     f"{migrations.head()}"]  # fmt: skip


def test_doctor_reports_the_revision_and_schema_drift(tmp_path, db_url):
    root = tmp_path / "w"
    args = ["doctor", "-w", str(root)] + (["--db", db_url] if db_url else [])
    with Workspace.create(root, labels=["a", "b"], db_url=db_url) as ws:
        runner = CliRunner()
        healthy = runner.invoke(app, args)
        assert healthy.exit_code == 0, healthy.output
        head = migrations.head()
        assert f"schema revision: {head} (newest known: {head})" in healthy.stdout
        assert "schema matches the models: ok" in healthy.stdout
        with ws.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_item_split_labels_rank")
        sick = runner.invoke(app, [*args, "--json"])
        assert sick.exit_code == 1
        import json

        found = json.loads(sick.stdout)
        assert found["schema"] == {"revision": head, "head": head, "schema_version": str(int(head))}
        check = next(c for c in found["checks"] if c["check"] == "schema matches the models")
        assert check["problems"] == ["missing index: ix_item_split_labels_rank"]


def test_promotion_times_written_by_schema_2_keep_their_instant(tmp_path, db_url):
    """Schema 2's ``round.promoted_at`` was TIMESTAMP: on PostgreSQL the server's time zone
    crept into it. Revision 0004 converts it back to the instant that was written."""
    root = _old_workspace(tmp_path, db_url, "0003", stamped=False)
    url = _url(root, db_url)
    engine = db.make_engine(url)
    if db_url is not None:  # a server not set to UTC, as many are
        with engine.begin() as conn:
            name = conn.exec_driver_sql("SELECT current_database()").scalar()
            conn.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Kolkata'")
        engine.dispose()
    promoted = sa.table("round", sa.column("id"), sa.column("promoted_at", sa.DateTime(True)))
    with engine.begin() as conn:
        conn.execute(promoted.update().where(promoted.c.id == 1).values(promoted_at=PROMOTED))
    engine.dispose()
    with Workspace.open(root, db_url=db_url) as ws, Session(ws.engine) as session:
        assert session.get(Round, 1).promoted_at == PROMOTED
