"""Crash safety: SIGKILL an import mid-file, annotators mid-label, and ``labelloop serve``.

After each kill the store is consistent (``labelloop doctor`` passes): the import is all or
nothing, every answer an annotator was told was saved is there, the items they held come back
to the queue when their hold expires, and a killed server leaves no process behind (its
sign-in link, which it could not revoke, is revoked by the next server to start). A round
worker killed mid-round is covered by tests/test_rounds.py (failed round, old model kept).
Runs on SQLite and PostgreSQL (``--backend``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.annotation.session import UserSession
from labeling.cli.main import app
from labeling.config import write_config
from labeling.errors import UnknownAnnotator
from labeling.store.models import ImportBatch, Item, Lease, utcnow
from tests.browser import serve
from tests.test_stress import (
    REPO,
    LabellerLog,
    assert_doctor_clean,
    assert_store_matches,
    labeller_env,
    start_labeller,
)

runner = CliRunner()


def _db_args(ws: Workspace) -> list[str]:
    return [] if ws.db_url.startswith("sqlite") else ["--db", ws.db_url]


def _written_bytes(ws: Workspace) -> int:
    """Bytes the store has written for items, committed or not: the SQLite write-ahead log,
    or PostgreSQL's item table (rows of an open transaction take room in it too)."""
    if ws.db_url.startswith("sqlite"):
        wal = Path(f"{ws.engine.url.database}-wal")
        return wal.stat().st_size if wal.exists() else 0
    engine = create_engine(ws.engine.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_relation_size('item')")).scalar_one())
    finally:
        engine.dispose()


def _counts(ws: Workspace) -> tuple[int, int]:
    with Session(ws.engine) as session:
        items = session.exec(select(func.count()).select_from(Item)).one()
        batches = session.exec(select(func.count()).select_from(ImportBatch)).one()
    return items, batches


def test_an_import_killed_mid_file_changes_nothing_and_a_rerun_imports_it_all(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"], db_url=db_url)
    gold = tmp_path / "gold.csv"
    gold.write_text("id,text,label\n" + "".join(f"g{k},gold {k},a\n" for k in range(50)))
    ws.import_file(gold, id_field="id", label_field="label", split="gold")
    before = _counts(ws)
    rows = 200_000
    big = tmp_path / "big.csv"
    with big.open("w", encoding="utf-8") as out:
        out.write("id,text\n")
        for k in range(rows):
            out.write(f"r{k},row {k} of a large file with some words: w{k % 1013} v{k % 997}\n")
    written = _written_bytes(ws)
    command = [sys.executable, "-m", "labeling.cli", "import", str(big), "-w", str(ws.root)]
    process = subprocess.Popen(
        [*command, "--id-field", "id", *_db_args(ws)],
        cwd=REPO,
        env=labeller_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # Kill once rows are being written: the whole file has been checked, and several MB of
        # rows sit in the open transaction.
        deadline = time.monotonic() + 300
        while _written_bytes(ws) < written + 4_000_000:
            assert process.poll() is None, "the import finished before it could be killed"
            assert time.monotonic() < deadline, "the import never started writing"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    ws.close()
    ws = Workspace.open(ws.root, db_url=db_url)
    assert _counts(ws) == before  # no item and no import batch from the killed import
    assert_doctor_clean(ws)
    report = ws.import_file(big, id_field="id")
    assert report.imported == rows and report.duplicates == 0
    assert _counts(ws) == (before[0] + rows, before[1] + 1)
    assert_doctor_clean(ws)
    ws.close()


def _wait_until_ready(logs: dict[str, Path], processes: dict) -> None:
    deadline = time.monotonic() + 300
    while not all(LabellerLog.read(path).ready for path in logs.values()):
        for name, process in processes.items():
            assert process.poll() is None, f"{name} stopped: {LabellerLog.read(logs[name])}"
        assert time.monotonic() < deadline, "the labellers did not sign in"
        time.sleep(0.05)


def _wait_for_answers(logs: dict[str, Path], n: int, processes: dict) -> None:
    deadline = time.monotonic() + 300
    while not all(len(LabellerLog.read(path).answers) >= n for path in logs.values()):
        for name, process in processes.items():
            assert process.poll() is None, f"{name} stopped: {LabellerLog.read(logs[name])}"
        assert time.monotonic() < deadline, "the labellers did not get going"
        time.sleep(0.05)


def test_annotators_killed_mid_label_lose_no_saved_answer_and_their_holds_expire(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b", "c"], db_url=db_url)
    ws.config = replace(ws.config, gold_rate=0.0, lease_seconds=10)
    write_config(ws.root, ws.config)
    pool = 600
    path = tmp_path / "pool.csv"
    path.write_text("id,text\n" + "".join(f"p{k},pool item {k}\n" for k in range(pool)))
    ws.import_file(path, id_field="id")
    tokens = {f"ann{k}": ws.add_user(f"ann{k}")[1] for k in range(4)}
    logs = {name: tmp_path / f"{name}.log" for name in tokens}
    go = tmp_path / "go"  # all start together: on a busy machine one slow starter could find
    # the pool drained by the others before its 20th answer
    processes = {
        name: start_labeller(
            ws, token=token, labels=10_000, log=logs[name], seed=k, start_file=go
        )  # fmt: skip
        for k, (name, token) in enumerate(tokens.items())
    }
    try:
        _wait_until_ready(logs, processes)
        go.touch()
        _wait_for_answers(logs, 20, processes)
        for process in processes.values():
            os.kill(process.pid, signal.SIGKILL)  # mid-label: they never stop to wait
        for process in processes.values():
            process.wait(timeout=60)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    assert all(p.returncode == -signal.SIGKILL for p in processes.values())
    found = {name: LabellerLog.read(log) for name, log in logs.items()}
    assert not any(log.errors for log in found.values())
    assert_store_matches(ws, found, overlap=1, exact=False)
    assert_doctor_clean(ws)

    # Each killed annotator still holds the item in front of them, until the hold expires.
    with Session(ws.engine) as session:
        held = dict(session.exec(select(Lease.item_id, Lease.expires_at)).all())
    assert len(held) == len(tokens)
    expiry = max(held.values())
    sweeper = UserSession.sign_in(ws, ws.add_user("sweeper")[1])
    served: list[tuple[int, object]] = []

    def sweep() -> None:
        item = sweeper.current_item()
        while item is not None:
            served.append((item.item_id, utcnow()))
            item = sweeper.answer(item.item_id, "a")

    sweep()
    early = [(item, at) for item, at in served if item in held and at < held[item]]
    assert not early, f"held items served to another annotator before their hold expired: {early}"
    if utcnow() < min(held.values()):
        assert sweeper.why_empty().reason == "leased_to_others"
    while utcnow() <= expiry:
        time.sleep(0.2)
    sweep()
    assert set(held) <= {item for item, _at in served}, "expired holds did not come back"
    with Session(ws.engine) as session:
        assert session.exec(select(func.count()).where(col(Item.n_labels) == 0)).one() == 0
    sweeper.sign_out()
    assert_doctor_clean(ws)
    ws.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_killed_while_annotators_label_leaves_no_process_and_a_clean_store(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"], db_url=db_url)
    ws.config = replace(ws.config, gold_rate=0.0, lease_seconds=10, retrain_every=0)
    write_config(ws.root, ws.config)
    path = tmp_path / "pool.csv"
    path.write_text("id,text\n" + "".join(f"p{k},pool item {k}\n" for k in range(3000)))
    ws.import_file(path, id_field="id")
    tokens = {f"ann{k}": ws.add_user(f"ann{k}")[1] for k in range(3)}
    logs = {name: tmp_path / f"{name}.log" for name in tokens}
    with serve(ws.root, db_url=None if ws.db_url.startswith("sqlite") else ws.db_url) as server:
        process = server.process
        link = server.sign_in_url.split("token=", 1)[1]
        pgid = os.getpgid(process.pid)
        labellers = {
            name: start_labeller(
                ws, token=token, labels=10_000, log=logs[name], seed=k, start_file=None
            )  # fmt: skip
            for k, (name, token) in enumerate(tokens.items())
        }
        try:
            _wait_for_answers(logs, 20, labellers)
            # SIGKILL the server (its children get no chance to be stopped by it) and the
            # annotators at the same moment.
            os.kill(process.pid, signal.SIGKILL)
            for labeller in labellers.values():
                os.kill(labeller.pid, signal.SIGKILL)
            process.wait(timeout=30)
            # The UI and the round worker die with the server instead of lingering on.
            deadline = time.monotonic() + 30
            while _group_alive(pgid):
                assert time.monotonic() < deadline, (
                    "processes of the killed server are still running: "
                    + subprocess.run(
                        ["ps", "-o", "pid,args", "-g", str(pgid)], capture_output=True, text=True
                    ).stdout
                )
                time.sleep(0.2)
        finally:
            for labeller in labellers.values():
                if labeller.poll() is None:
                    labeller.kill()
                labeller.wait()
    found = {name: LabellerLog.read(log) for name, log in logs.items()}
    assert not any(log.errors for log in found.values())
    assert_store_matches(ws, found, overlap=1, exact=False)
    doctor = runner.invoke(app, ["doctor", "-w", str(ws.root), *_db_args(ws)])
    assert doctor.exit_code == 0, doctor.output
    assert ws.sign_in(link).role == "admin"  # the killed server could not revoke its link
    # A new server starts on the same store, and revokes the dead one's link first.
    with serve(ws.root, db_url=None if ws.db_url.startswith("sqlite") else ws.db_url) as again:
        assert "Revoked 1 sign-in link(s)" in "".join(again.output)
    with pytest.raises(UnknownAnnotator, match="wrong or has been revoked"):
        ws.sign_in(link)
    ws.close()
