"""Messages a person sees name items by their external id and say the numbers they mean: the
queue's refusals, the Review page's confirmation, the drift warning, the database URL hint."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.data import drift
from labeling.errors import NotLeased
from labeling.store.models import Item

runner = CliRunner()


def _pool(path: Path, texts: list[str], prefix: str = "t") -> Path:
    lines = [f"{prefix}{k:05},{text}" for k, text in enumerate(texts, start=1)]
    path.write_text("id,text\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def ws(tmp_path):
    with Workspace.create(tmp_path / "ws", labels=["a", "b"]) as workspace:
        workspace.import_file(_pool(tmp_path / "pool.csv", ["one", "two", "three"]), id_field="id")
        yield workspace


def _row_id(ws: Workspace, external_id: str) -> int:
    with Session(ws.engine) as session:
        return session.exec(select(Item.id).where(Item.external_id == external_id)).one()


def test_an_answer_on_an_item_not_held_names_the_external_id(ws):
    ws.add_user("alice")
    held = ws.next_item("alice")
    assert held is not None
    other = next(e for e in ("t00001", "t00002") if e != held.external_id)
    with pytest.raises(NotLeased) as caught:
        ws.annotate(_row_id(ws, other), "alice", "a")
    assert str(caught.value) == (
        f"item {other!r} is not assigned to annotator 'alice'; ask for the next item first"
    )


def test_the_review_page_confirms_a_decision_by_external_id(ws, monkeypatch):
    ws.config = replace(ws.config, overlap=2)
    for person, label in (("x", "a"), ("y", "b")):
        ws.add_user(person)
        while (item := ws.next_item(person)) is not None:
            ws.annotate(item.item_id, person, label)
    ws.add_user("lead", role="lead")
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    script = "from labeling.ui.views import review\nreview.render()\n"
    at = AppTest.from_string(script, default_timeout=30)
    at.session_state["ll_user"] = "lead"
    at.run()
    assert not at.exception
    [picker] = [s for s in at.selectbox if str(s.key).startswith("ll_review_pick_")]
    picked = picker.value
    external = next(e for e in ("t00001", "t00002", "t00003") if _row_id(ws, e) == picked)
    at.button(key=f"ll_decide_{picked}_b").click().run()
    assert not at.exception
    shown = [c.value.replace("\\", "") for c in at.caption]
    assert f"Decided item {external}: b." in shown
    assert not any(f"Decided item {picked}:" in c for c in shown)


def test_the_drift_warning_says_how_many_came_in_and_how_many_were_compared(tmp_path, monkeypatch):
    """14 and 19: the warning names the import's size and the sample's, and `import --json`
    prints it on stderr as docs/cli.md says."""
    monkeypatch.setattr(drift, "MAX_PER_SIDE", 40)
    ws_dir = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws_dir), "--labels", "a,b"]).exit_code == 0
    words = ["river", "mountain", "forest", "meadow", "valley", "lake"]
    first = [f"the {words[k % 6]} walk number {k} was quiet and green" for k in range(60)]
    second = [f"ERROR 0x{k:04x} kernel panic in module drv{k % 7} at boot" for k in range(100)]
    assert runner.invoke(
        app, ["import", str(_pool(tmp_path / "a.csv", first, "a")), "-w", str(ws_dir)]
    )
    result = runner.invoke(
        app,
        ["import", str(_pool(tmp_path / "b.csv", second, "b")), "-w", str(ws_dir), "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    found = report["drift"]
    assert found["drifted"] is True
    assert (found["items"], found["sampled_items"], found["reference_items"]) == (100, 40, 40)
    assert found["message"].startswith(
        "The 100 new items differ from the pool items (a sample of 40 of them against 40 pool "
        "items, told apart with AUC "
    )
    assert f"warning: drift: {found['message']}" in result.stderr.splitlines()


@pytest.mark.parametrize("scheme", ["postgres", "postgres+psycopg2"])
def test_a_postgres_scheme_gets_the_spelling_sqlalchemy_knows(tmp_path, monkeypatch, scheme):
    ws_dir = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws_dir), "--labels", "a,b"]).exit_code == 0
    url = f"{scheme}://alice:s3cret@db.example/labels"
    result = runner.invoke(app, ["status", "-w", str(ws_dir), "--db", url])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: database URL (--db): expected the scheme postgresql:// (or "
        f"postgresql+psycopg://), found {scheme}://; write postgresql://alice:***@db.example/labels"
    )
    monkeypatch.setenv("LABELLOOP_DB", url)
    result = runner.invoke(app, ["status", "-w", str(ws_dir)])
    assert result.exit_code == 2
    assert "database URL (LABELLOOP_DB): expected the scheme postgresql://" in result.stderr
    assert "s3cret" not in result.output
