"""Webhooks: the ``[[webhooks]]`` settings, and each event written to the outbox in the
transaction of the event itself (both backends). The sender: tests/test_webhooks_sender.py."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from labeling import Workspace
from labeling.config import config_from_mapping, load_config, render_config, write_config
from labeling.data.search import SearchQuery
from labeling.errors import ConfigError, ImportFailed
from labeling.store import outbox
from labeling.store.models import Outbox

SECRET_ENV = "LABELLOOP_TEST_HOOK_SECRET"
SECRET = "whsec-3f9a1c0d-never-shown"


# ---------------------------------------------------------------- helpers shared with the sender


class Receiver:
    """A webhook endpoint on loopback: records each request; answers the statuses given in
    turn (then 200); with ``hold``, keeps each request open until :attr:`release` is set."""

    def __init__(self, statuses: tuple[int, ...] = (), *, hold: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses)
        self.arrived = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.requests.append(
                    {"headers": dict(self.headers), "body": body, "at": time.monotonic()}
                )
                receiver.arrived.set()
                receiver.release.wait(20)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"try later")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def hooks_toml(*hooks: dict[str, Any]) -> str:
    """``[[webhooks]]`` tables for labelloop.toml."""
    lines = []
    for hook in hooks:
        lines += ["", "[[webhooks]]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in hook.items()]
    return "\n".join(lines) + "\n"


def hook(url: str, **settings: Any) -> dict[str, Any]:
    return {"name": "rx", "url": url, "events": ["*"], "secret_env": SECRET_ENV} | settings


def hooked_workspace(
    root: Path, db_url: str | None, *hooks: dict[str, Any], labels: tuple[str, ...] = ("a", "b")
) -> Workspace:
    """A workspace whose labelloop.toml has these webhooks, attached for its importer."""
    ws = Workspace.create(root, labels=list(labels), db_url=db_url)
    ws.config = replace(ws.config, gold_rate=0.0, featurizer="tfidf")
    write_config(ws.root, ws.config)
    with (ws.root / "labelloop.toml").open("a") as toml:
        toml.write(hooks_toml(*hooks))
    ws.config = load_config(ws.root)
    outbox.attach(ws.engine, ws.config.webhooks, workspace=ws.config.name)
    return ws


def rows(ws: Workspace, event: str | None = None) -> list[Outbox]:
    with ws._read() as session:
        query = select(Outbox).order_by(col(Outbox.id))
        if event is not None:
            query = query.where(Outbox.event == event)
        return list(session.exec(query).all())


def data_of(row: Outbox) -> dict[str, Any]:
    return json.loads(row.body)["data"]


def write_items(path: Path, n: int, *, start: int = 0, labelled: bool = True) -> Path:
    """Two kinds of text a model tells apart at once: a is spam, b is music."""
    lines = ["id,text,label"]
    for i in range(start, start + n):
        label = "a" if i % 2 else "b"
        text = (
            f"cheap pills offer number {i} click this link now"
            if label == "a"
            else f"great song {i} and I love this music video"
        )
        lines.append(f"i{i},{text},{label if labelled else ''}")
    path.write_text("\n".join(lines) + "\n")
    return path


def trainable(tmp_path: Path, db_url: str | None, *hooks: dict[str, Any]) -> Workspace:
    """60 labelled pool items, 40 open ones and 20 gold: enough for a real round in a second."""
    ws = hooked_workspace(tmp_path / "ws", db_url, *hooks)
    ws.import_file(write_items(tmp_path / "lab.csv", 60), id_field="id", label_field="label")
    ws.import_file(write_items(tmp_path / "open.csv", 40, start=100, labelled=False), id_field="id")
    gold = write_items(tmp_path / "gold.csv", 20, start=200)
    ws.import_file(gold, id_field="id", label_field="label", split="gold")
    return ws


# ---------------------------------------------------------------- settings


def _config(*hooks: dict[str, Any]) -> Any:
    return config_from_mapping({"name": "w", "labels": ["a", "b"], "webhooks": list(hooks)})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"url": "ftp://example.org/x", "events": ["*"], "secret_env": "S"},
            "[[webhooks]] entry 1: key 'url': expected an http:// or https:// address",
        ),
        (
            {"url": "https://example.org/x", "events": ["round.done"], "secret_env": "S"},
            "[[webhooks]] entry 1 ('example.org'): key 'events': unknown event 'round.done'; "
            "known events are round.promoted, round.failed, drift.flagged",
        ),
        (
            {"name": "ci", "events": ["*"], "secret_env": "S"},
            "[[webhooks]] entry 1: key 'url' is missing",
        ),
        (
            {"url": "https://example.org/x", "events": ["*"], "secret_env": "not a name!"},
            "key 'secret_env': expected the name of an environment variable",
        ),
        (
            {"url": "https://u:pw@example.org/x", "events": ["*"], "secret_env": "S"},
            "key 'url': holds credentials",
        ),
        (
            {"url": "https://example.org", "events": ["*"], "secret_env": "S", "retries": 3},
            "[[webhooks]] entry 1: unknown key 'retries'",
        ),
        (
            {"url": "https://example.org", "events": ["*"], "secret_env": "S", "max_attempts": 0},
            "key 'max_attempts': expected an integer from 1 to 100",
        ),
    ],
)
def test_bad_webhook_settings_name_the_entry_and_the_key(entry, message):
    with pytest.raises(ConfigError) as raised:
        _config(entry)
    assert message in str(raised.value)
    assert str(raised.value).startswith("labelloop.toml: [[webhooks]]")


def test_names_default_to_the_host_must_be_unique_and_survive_a_rewrite():
    first = {"url": "https://hooks.example.org/a", "events": ["*"], "secret_env": "S"}
    config = _config(first, first | {"name": "second", "timeout_seconds": 3})
    assert [h.name for h in config.webhooks] == ["hooks.example.org", "second"]
    assert config.webhooks[1].timeout_seconds == 3.0 and config.webhooks[0].max_attempts == 8
    import tomllib

    again = config_from_mapping(tomllib.loads(render_config(config)))
    assert again.webhooks == config.webhooks
    with pytest.raises(ConfigError, match=r"entry 2: key 'name': 'hooks.example.org' is entry 1"):
        _config(first, first)


# ---------------------------------------------------------------- events, in their transactions


def test_an_import_writes_import_done_and_a_failed_import_writes_nothing(tmp_path, db_url):
    ws = hooked_workspace(tmp_path / "ws", db_url, hook("http://127.0.0.1:9/x"))
    report = ws.import_file(write_items(tmp_path / "a.csv", 10), id_field="id", label_field="label")
    (done,) = rows(ws, "import.done")
    assert data_of(done) | {"batch": report.batch_id} == data_of(done)
    assert data_of(done)["imported"] == 10 and data_of(done)["source"] == "a.csv"
    assert json.loads(done.body)["workspace"] == ws.config.name
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text,label\nz1,fine,a\nz2,not fine,nosuchlabel\n")
    with pytest.raises(ImportFailed):
        ws.import_file(bad, id_field="id", label_field="label")
    assert len(rows(ws)) == 1
    pushed = ws.push_items([{"id": "p1", "text": "pushed from production"}], drift_check=False)
    assert data_of(rows(ws, "import.done")[-1]) | {"source": "items", "imported": 1} == data_of(
        rows(ws, "import.done")[-1]
    )
    assert pushed.imported == 1
    ws.close()


def test_no_hook_that_asked_means_no_row(tmp_path, db_url):
    only_rounds = hook("http://127.0.0.1:9/x", events=["round.failed"])
    ws = hooked_workspace(tmp_path / "ws", db_url, only_rounds)
    ws.import_file(write_items(tmp_path / "a.csv", 10), id_field="id", label_field="label")
    assert rows(ws) == []
    ws.close()


def test_a_promoted_round_writes_round_promoted_with_its_id(tmp_path, db_url):
    promoted = hook("http://127.0.0.1:9/p", name="promoted", events=["round.promoted"])
    failed = hook("http://127.0.0.1:9/f", name="failed", events=["round.failed"])
    ws = trainable(tmp_path, db_url, promoted, failed)
    done = ws.retrain()
    assert done.status == "succeeded" and done.promoted
    (row,) = rows(ws)
    assert (row.event, row.hook) == ("round.promoted", "promoted")
    told = data_of(row)
    assert told["round"] == done.id and told["previous"] is None
    assert told["metrics"]["gold_macro_f1"] is not None and told["metrics"]["n_human"] == 60
    ws.promote(done.id)  # by hand: told too
    assert data_of(rows(ws)[-1])["reason"] == "promoted by hand"
    ws.close()


def test_a_failed_round_writes_round_failed_and_no_promotion(tmp_path, db_url):
    ws = hooked_workspace(tmp_path / "ws", db_url, hook("http://127.0.0.1:9/x"))
    done = ws.retrain()  # an empty pool: the round fails
    assert done.status == "failed"
    (row,) = rows(ws)
    assert row.event == "round.failed"
    assert data_of(row)["round"] == done.id and "the pool is empty" in data_of(row)["error"]
    ws.close()


def test_stopping_reached_is_told_once_when_the_hint_turns_to_stop(tmp_path, db_url):
    ws = trainable(tmp_path, db_url, hook("http://127.0.0.1:9/x", events=["stopping.reached"]))
    for n in range(1, 6):
        ws.retrain()
        told = rows(ws, "stopping.reached")
        # Rounds 2-4 agree with the round before (kappa 1): the hint says stop at round 4.
        assert len(told) == (0 if n < 4 else 1), n
    assert data_of(told[0])["round"] == 4 and data_of(told[0])["stable_runs"] == 3
    assert len(data_of(told[0])["kappas"]) == 3
    ws.close()


def test_a_bulk_batch_writes_bulk_applied(tmp_path, db_url):
    ws = hooked_workspace(tmp_path / "ws", db_url, hook("http://127.0.0.1:9/x"))
    ws.import_file(write_items(tmp_path / "o.csv", 20, labelled=False), id_field="id")
    ws.add_user("eng", role="engineer")
    done = ws.bulk_label(SearchQuery(text="pills"), label="a", by="eng", override=True)
    (row,) = rows(ws, "bulk.applied")
    assert data_of(row) | {"batch": done["batch"], "label": "a", "count": 10} == data_of(row)
    ws.close()


def test_a_drifted_import_writes_drift_flagged(tmp_path, db_url):
    ws = hooked_workspace(tmp_path / "ws", db_url, hook("http://127.0.0.1:9/x"))
    ws.config = replace(ws.config, drift_threshold=0.6)
    ws.import_file(write_items(tmp_path / "a.csv", 60), id_field="id", label_field="label")
    other = tmp_path / "other.csv"
    lines = [f"q{i},invoice {i} overdue payment reminder account {i * 7}" for i in range(40)]
    other.write_text("id,text\n" + "\n".join(lines) + "\n")
    report = ws.import_file(other, id_field="id")
    assert report.drift is not None and report.drift["drifted"]
    (row,) = rows(ws, "drift.flagged")
    told = data_of(row)
    assert told["batch"] == report.batch_id and told["auc"] >= 0.6 and told["items"] == 40
    ws.close()
