"""``labelloop backup`` and ``labelloop doctor`` on SQLite and PostgreSQL (``--backend``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from dataclasses import replace

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.config import write_config
from labeling.store.models import Annotation, Item, Round, utcnow

runner = CliRunner()


@pytest.fixture
def labelled(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "w", labels=["a", "b"], db_url=db_url)
    ws.config = replace(ws.config, gold_rate=0.0)
    write_config(ws.root, ws.config)
    path = tmp_path / "items.csv"
    path.write_text("id,text\n" + "".join(f"i{k},text number {k}\n" for k in range(200)))
    ws.import_file(path, id_field="id")
    ws.add_user("ann")
    for _ in range(40):
        item = ws.next_item("ann")
        ws.annotate(item.item_id, "ann", "a")
    yield ws
    ws.close()


def _args(ws: Workspace) -> list[str]:
    args = ["-w", str(ws.root)]
    if ws.db_url and not ws.db_url.startswith("sqlite"):
        args += ["--db", ws.db_url]
    return args


def test_backup_while_labelling_is_consistent(labelled, tmp_path):
    ws = labelled
    if not ws.db_url.startswith("sqlite") and shutil.which("pg_restore") is None:
        pytest.fail("pg_restore is needed to check a PostgreSQL backup (install postgresql)")
    stop = threading.Event()

    def keep_labelling() -> None:
        while not stop.is_set():
            item = ws.next_item("ann")
            if item is None:
                return
            ws.annotate(item.item_id, "ann", "b")

    worker = threading.Thread(target=keep_labelling)
    worker.start()
    try:
        out = tmp_path / "copy.db"
        result = runner.invoke(app, ["backup", str(out), *_args(ws), "--json"])
    finally:
        stop.set()
        worker.join()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["bytes"] > 0 and out.stat().st_size > 0
    again = runner.invoke(app, ["backup", str(out), *_args(ws)])
    assert again.exit_code == 2 and "already exists" in again.stderr
    if ws.db_url.startswith("sqlite"):
        copy_url = f"sqlite:///{out}"
    else:
        from tests.conftest import _database_names  # the PostgreSQL fixture's name source

        name = f"restored{next(_database_names)}"
        admin = ws.engine.url.set(database="postgres")
        from sqlalchemy import create_engine

        with create_engine(admin, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        target = ws.engine.url.set(database=name, drivername="postgresql")
        done = subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={target.render_as_string(False)}", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        copy_url = ws.engine.url.set(database=name).render_as_string(False)
    from labeling.store import db

    engine = db.make_engine(copy_url)
    with Session(engine) as session:
        answers = session.exec(select(Annotation)).all()
        items = session.exec(select(Item)).all()
    engine.dispose()
    # A consistent copy: every item's label count matches the answers it holds.
    current = {}
    for a in answers:
        if a.superseded_by is None and a.label is not None:
            current[a.item_id] = current.get(a.item_id, 0) + 1
    assert len(items) == 200 and len(answers) >= 40
    assert all(item.n_labels == current.get(item.id, 0) for item in items)


def test_doctor_passes_a_healthy_store_and_finds_and_fixes_damage(labelled):
    ws = labelled
    clean = runner.invoke(app, ["doctor", *_args(ws), "--json"])
    assert clean.exit_code == 0, clean.output
    assert all(check["ok"] for check in json.loads(clean.stdout)["checks"])
    with Session(ws.engine) as session:
        first, first_external = session.exec(
            select(Item.id, Item.external_id).where(Item.n_labels == 1)
        ).first()
        session.execute(update(Item).where(col(Item.id) == first).values(n_labels=3))
        stale = utcnow().replace(year=2020)
        session.add(Round(status="running", worker="12345678@nowhere", heartbeat=stale))
        session.commit()
    sick = runner.invoke(app, ["doctor", *_args(ws)])
    assert sick.exit_code == 1
    assert f"item {first_external!r}: stored 3, answers say 1" in sick.stdout
    assert "rounds left running by a dead worker: 1 problem(s)" in sick.stdout
    fixed = runner.invoke(app, ["doctor", *_args(ws), "--fix"])
    assert fixed.exit_code == 0, fixed.stdout
    assert "1 fixed" in fixed.stdout
    with Session(ws.engine) as session:
        assert session.get(Item, first).n_labels == 1
        assert session.exec(select(Round.status)).all() == ["failed"]
    assert runner.invoke(app, ["doctor", *_args(ws)]).exit_code == 0
