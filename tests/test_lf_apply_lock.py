"""One `lf apply` at a time per workspace (issue 18, #9): two at once leave the store one leaves.

Two real processes run `labelloop lf apply` on one store (a SQLite file, a PostgreSQL
database). The second starts once the first is inside its LFs (a marker file its code LF
writes), so the two overlap for certain. Without the apply lock both computed the same votes
and the second added its fault count to the first's (620 stored as 1240).
"""

from __future__ import annotations

import csv
import json
import os
import selectors
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import Session, select

from labeling import Workspace
from labeling.config import write_config
from labeling.store.models import Item, LabelingFunction, LFVote, SchemaInfo
from labeling.weak.lock import ApplyRunning, apply_lock
from tests.conftest import REPO

LABELS = ["billing", "technical", "shipping", "account", "feedback"]

SLOW_LF = """
import os
import time

from weak_supervision import ABSTAIN, labeling_function

MARKER = {marker!r}
RELEASE = MARKER + ".release"


@labeling_function()
def slow_and_fragile(row):
    if not os.path.exists(MARKER):
        open(MARKER, "w").close()  # tells the test that this apply is inside its LFs
    while not os.path.exists(RELEASE):  # ... and holds it there until the test says go
        time.sleep(0.01)
    if " the " in row.text:
        raise ValueError("no 'the' here")
    return "billing" if "refund" in row.text.lower() else ABSTAIN
"""


def _workspace(root: Path, db_url: str | None, marker: Path) -> Workspace:
    rows = []
    with (REPO / "datasets" / "demo" / "pool.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows.append(row)
            if len(rows) == 150:
                break
    data = root.parent / f"{root.name}.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ws = Workspace.create(root, labels=LABELS, db_url=db_url)
    ws.import_file(data, text_field="text", id_field="id")
    (ws.lfs_dir / "slow.py").write_text(SLOW_LF.format(marker=str(marker)))
    ws.add_rule({"kind": "keyword", "name": "kw_order", "label": "shipping", "keywords": ["order"]})
    ws.config = replace(ws.config, lf_timeout=0.0)  # the first LF call waits for the test
    write_config(ws.root, ws.config)
    return ws


def _store(ws: Workspace) -> tuple[dict, list]:
    """Each LF's applied state and fault stats, and every vote by external id."""
    with Session(ws.engine) as session:
        state = {
            r.name: (
                r.applied_version == r.version,
                r.applied_through,
                {k: v for k, v in json.loads(r.stats).items() if k not in ("seconds",)},
            )
            for r in session.exec(select(LabelingFunction)).all()
        }
        votes = session.exec(
            select(LabelingFunction.name, Item.external_id, LFVote.label, LFVote.lf_version)
            .join(LabelingFunction, LabelingFunction.id == LFVote.lf_id)
            .join(Item, Item.id == LFVote.item_id)
        ).all()
    return state, sorted(tuple(v) for v in votes)


def _apply_command(ws: Workspace) -> list[str]:
    command = [sys.executable, "-m", "labeling.cli", "lf", "apply", "--json", "-w", str(ws.root)]
    return command + (["--db", ws.db_url] if "postgresql" in ws.db_url else [])


def test_two_applies_at_once_leave_the_store_one_apply_leaves(tmp_path, db_url, request):
    marker = tmp_path / "started"
    ws = _workspace(tmp_path / "ws", db_url, marker)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    first = subprocess.Popen(
        _apply_command(ws), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    second: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first apply never reached its LFs"
            time.sleep(0.02)
        second = subprocess.Popen(
            _apply_command(ws), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        # The second says it waits for the first; only then may the first go on.
        assert second.stderr is not None
        watch = selectors.DefaultSelector()
        watch.register(second.stderr, selectors.EVENT_READ)
        ready = watch.select(timeout=120)
        waiting = second.stderr.readline() if ready else "(nothing within 120 s)"
        assert "another `lf apply` is running on this workspace; waiting" in waiting
        Path(f"{marker}.release").touch()
        out1, err1 = first.communicate(timeout=300)
        out2, err2 = second.communicate(timeout=300)
        assert first.returncode == 0, err1
        assert second.returncode == 0, waiting + err2
        # ... and then found nothing left to do.
        assert {r["lf"] for r in json.loads(out1)["lfs"]} == {"slow_and_fragile", "kw_order"}
        assert json.loads(out2)["lfs"] == []
    finally:
        Path(f"{marker}.release").touch()  # never leave a process waiting behind
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    concurrent = _store(ws)
    faults = concurrent[0]["slow_and_fragile"][2]["faults"]
    assert faults > 0

    # The same workspace applied once, in this process.
    if db_url is None:
        single_url = None
    else:
        single_url = request.getfixturevalue("postgres_server").create_database("lockonce")
    once = _workspace(tmp_path / "once", single_url, marker)
    once.apply_lfs()
    assert _store(once) == concurrent
    with Session(once.engine) as session:
        texts = session.exec(select(Item.text)).all()
    assert faults == sum(" the " in t for t in texts)
    once.close()
    ws.close()


def test_an_apply_that_may_not_wait_says_one_is_running(workspace):
    running = pytest.raises(ApplyRunning, match="another `lf apply` is running")
    with apply_lock(workspace), running:
        workspace.apply_lfs(wait=False)
    assert workspace.apply_lfs(wait=False).lfs == []  # free again


def test_a_lock_left_by_a_dead_process_is_taken_over(workspace):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Session(workspace.engine) as session:
        owner = f"{dead.pid}@{socket.gethostname()} left-behind"
        session.add(SchemaInfo(key="lf_apply_lock", value=owner))
        session.commit()
    assert workspace.apply_lfs(wait=False).lfs == []
    with Session(workspace.engine) as session:
        assert session.get(SchemaInfo, "lf_apply_lock") is None
