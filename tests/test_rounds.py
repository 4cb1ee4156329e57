"""Retraining rounds end to end on the YouTube data: CLI, queue order, rollback, a killed worker.

Runs on SQLite and PostgreSQL (``--backend``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.config import write_config
from labeling.rounds import jobs, pipeline, promotion
from labeling.store.models import Round, Score
from tests.conftest import YOUTUBE

FILES = sorted(YOUTUBE.glob("Youtube0*.csv"))
runner = CliRunner()


def _youtube(tmp_path, db_url, *, labelled: bool = True) -> Workspace:
    """Files 02-04 unlabelled pool, file 01 labelled pool (training), file 05 gold."""
    ws = Workspace.create(tmp_path / "yt", labels=["0", "1"], db_url=db_url)
    # These tests check the queue order: no hidden gold checks in between. They check rounds,
    # not representations: TF-IDF spares embedding every item with the sentence model (the
    # `auto` choice is tested in test_representations.py, the embedding pass on its own).
    ws.config = replace(ws.config, gold_rate=0.0, featurizer="tfidf")
    write_config(ws.root, ws.config)
    # The collection as published, repeated comments included.
    common = {"text_field": "CONTENT", "id_field": "COMMENT_ID", "allow_duplicate_texts": True}
    if labelled:
        ws.import_file(FILES[0], label_field="CLASS", **common)
    for path in FILES[1:4]:
        ws.import_file(path, **common)
    ws.import_file(FILES[4], label_field="CLASS", split="gold", **common)
    return ws


def _cli(ws: Workspace, *args: str):
    base = ["-w", str(ws.root)] + (["--db", ws.db_url] if "postgresql" in ws.db_url else [])
    return runner.invoke(app, [*args, *base])


def _top_open(ws: Workspace, round_id: int) -> int:
    """The item the round ranks first among open items."""
    from labeling.store.models import Item

    with Session(ws.engine) as session:
        return session.exec(
            select(Score.item_id)
            .join(Item, col(Item.id) == col(Score.item_id))
            .where(Score.round_id == round_id, Item.n_labels == 0)
            .order_by(col(Score.score).desc())
        ).first()


@pytest.fixture
def yt(tmp_path, db_url):
    ws = _youtube(tmp_path, db_url)
    ws.add_user("ann")
    yield ws
    ws.close()


def test_retrain_through_the_cli_reorders_the_queue(yt):
    done = _cli(yt, "retrain", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["round"] == 1 and report["status"] == "succeeded" and report["promoted"]
    metrics = report["metrics"]
    assert metrics["n_human"] == 350 and metrics["n_weak"] == 0
    assert metrics["gold_accuracy"] > 0.8 and metrics["gold_macro_f1"] > 0.8
    assert (yt.root / "models" / "round-0001" / "model.joblib").is_file()
    # The next item served is the one the new scores put first.
    item = yt.next_item("ann")
    assert item.item_id == _top_open(yt, 1)
    assert item.round_id == 1
    listed = json.loads(_cli(yt, "rounds", "list", "--json").stdout)
    assert [r["round"] for r in listed["rounds"]] == [1] and listed["rounds"][0]["promoted"]


def test_rollback_restores_the_previous_scores(yt):
    first = yt.retrain()
    assert first.promoted
    second = yt.retrain(strategy="random")
    assert second.status == "succeeded" and second.promoted
    assert json.loads(second.metrics)["strategy"] == "random"
    assert yt.next_item("ann").item_id == _top_open(yt, second.id)
    yt.release("ann")
    done = _cli(yt, "rounds", "rollback", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["round"] == first.id
    assert yt.next_item("ann").item_id == _top_open(yt, first.id)
    yt.release("ann")
    assert _cli(yt, "rounds", "promote", str(second.id)).exit_code == 0
    assert yt.next_item("ann").item_id == _top_open(yt, second.id)


def test_a_worse_round_is_not_promoted():
    current = Round(id=3, metrics=json.dumps({"gold_macro_f1": 0.9}))
    assert promotion.promotable({"gold_macro_f1": 0.895}, current, 0.01)[0]
    assert not promotion.promotable({"gold_macro_f1": 0.8}, current, 0.01)[0]
    assert not promotion.promotable({}, current, 0.01)[0]
    assert promotion.promotable({}, None, 0.01)[0]
    assert promotion.promotable({"gold_macro_f1": 0.1}, Round(id=1, metrics="{}"), 0.01)[0]


def test_cold_start_before_any_label(tmp_path, db_url):
    ws = _youtube(tmp_path, db_url, labelled=False)
    done = ws.retrain()
    metrics = json.loads(done.metrics)
    assert done.status == "succeeded" and done.promoted
    assert metrics["strategy"] == "cold_start" and metrics["evaluation"] == "none"
    ws.add_user("ann")
    assert ws.next_item("ann").item_id == _top_open(ws, done.id)
    ws.close()


def test_no_gold_means_cross_validation(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "cv", labels=["0", "1"], db_url=db_url)
    ws.config = replace(ws.config, featurizer="tfidf")  # as in _youtube
    write_config(ws.root, ws.config)
    ws.import_file(FILES[0], text_field="CONTENT", id_field="COMMENT_ID", label_field="CLASS")
    ws.import_file(FILES[1], text_field="CONTENT", id_field="COMMENT_ID")
    metrics = json.loads(ws.retrain().metrics)
    assert metrics["evaluation"] == "cross-validation"
    assert metrics["cv"]["folds"] == 5 and metrics["cv_macro_f1"] > 0.7
    ws.close()


def test_unknown_strategy_is_refused_with_the_known_names(yt):
    done = _cli(yt, "retrain", "--strategy", "nope")
    assert done.exit_code == 2
    assert "--strategy" in done.stderr and "random" in done.stderr
    assert yt.rounds() == []


def test_every_n_labels_queues_a_round(yt):
    from dataclasses import replace

    write_config(yt.root, replace(yt.config, retrain_every=3))
    yt.config = replace(yt.config, retrain_every=3)
    first = yt.retrain()
    assert jobs.maybe_trigger(yt) is None
    for _ in range(3):
        item = yt.next_item("ann")
        yt.annotate(item.item_id, "ann", "1")
    queued = jobs.maybe_trigger(yt)
    assert queued is not None and queued.status == "queued" and queued.id == first.id + 1
    assert jobs.maybe_trigger(yt) is None  # one queued round at a time


def test_a_killed_worker_leaves_the_round_failed_and_the_old_model_promoted(yt):
    first = yt.retrain()
    queued = yt.queue_round(trigger="test")
    worker = subprocess.Popen(
        [sys.executable, "-m", "labeling.rounds.worker", "-w", str(yt.root)]
        + (["--db", yt.db_url] if "postgresql" in yt.db_url else []),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while yt.get_round(queued.id).status != "running":
            assert time.monotonic() < deadline, "the worker never started the round"
            assert worker.poll() is None
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert yt.get_round(queued.id).status == "running"  # nobody updated it
    assert jobs.recover(yt) == [queued.id]
    failed = yt.get_round(queued.id)
    assert failed.status == "failed" and "stopped" in failed.error
    assert yt.get_round(first.id).promoted
    assert not (yt.root / "models" / f"round-{queued.id:04d}").exists()
    assert yt.next_item("ann").item_id == _top_open(yt, first.id)
    # The next round runs normally.
    assert yt.retrain().status == "succeeded"


def test_one_round_at_a_time(yt):
    queued = yt.queue_round(trigger="test")
    assert jobs.claim_queued(yt) == queued.id
    with pytest.raises(jobs.RoundError, match="one round runs at a time"):
        yt.retrain()


def test_rounds_run_at_a_lower_cpu_priority_in_every_thread():
    """The worker and `labelloop retrain` lower every thread of their process, numpy's pool
    threads included (they exist before the call), and never raise a priority back."""
    # Relative to where the process starts: the test run itself may already be lowered
    # (`labelloop retrain` through CliRunner runs in this process).
    script = """
import os, threading, numpy
from labeling.rounds import jobs
base = os.getpriority(os.PRIO_PROCESS, 0)
target = min(19, base + 3)
stop = threading.Event()
worker = threading.Thread(target=stop.wait)
worker.start()
print(target, jobs.lower_priority(target), jobs.lower_priority(base))
tids = [int(t) for t in os.listdir("/proc/self/task")]
print(min(os.getpriority(os.PRIO_PROCESS, t) for t in tids), len(tids))
stop.set()
worker.join()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    first, second = done.stdout.split("\n")[:2]
    target, lowered, kept = first.split()
    assert lowered == kept == target
    lowest, threads = (int(v) for v in second.split())
    assert lowest == int(target) and threads >= 2


def test_round_nice_is_a_setting_with_a_range(tmp_path):
    from labeling.config import load_config

    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"])
    assert ws.config.round_nice == 10
    ws.close()
    path = tmp_path / "ws" / "labelloop.toml"
    path.write_text(path.read_text().replace("round_nice = 10", "round_nice = 25"))
    with pytest.raises(Exception, match="round_nice"):
        load_config(tmp_path / "ws")


def test_a_round_whose_store_goes_away_is_marked_failed_with_the_reason_once_it_is_back(
    tmp_path, request
):
    """PostgreSQL stops mid-round (as in a restart): the round's own process records the real
    reason as soon as the server is back, instead of leaving the round `running` until a
    later check finds its heartbeat stale."""
    if request.config.getoption("--backend") == "sqlite":
        pytest.skip("needs a PostgreSQL server to stop and start (run with --backend all)")
    from tests import pgserver

    server = pgserver.start()  # its own server: the shared one must not stop
    try:
        ws = Workspace.create(tmp_path / "yt", labels=["0", "1"], db_url=server.url("postgres"))
        ws.config = replace(ws.config, featurizer="tfidf")  # as in _youtube
        write_config(ws.root, ws.config)
        common = {"text_field": "CONTENT", "id_field": "COMMENT_ID"}
        ws.import_file(FILES[0], label_field="CLASS", **common)
        ws.import_file(FILES[4], label_field="CLASS", split="gold", **common)
        queued = ws.queue_round(trigger="test")
        assert jobs.claim_queued(ws) == queued.id
        restarted: list[threading.Thread] = []

        def stage(text: str) -> None:
            if text == "reading labels" and not restarted:
                server.halt()
                back = threading.Thread(target=lambda: (time.sleep(3), server.resume()))
                back.start()
                restarted.append(back)

        done = pipeline.run_round(ws, queued.id, progress=stage)
        restarted[0].join()
        assert done.status == "failed"
        assert "OperationalError" in done.error
        assert done.finished_at is not None and done.stage is None
        assert jobs.recover(ws) == []  # nothing left for a later check to find
        assert ws.retrain().status == "succeeded"  # and the next round runs
        ws.close()
    finally:
        server.stop()
