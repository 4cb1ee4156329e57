"""The queue preview lists what claims then serve, in their order, and writes nothing.

Runs on SQLite and PostgreSQL (``--backend``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlmodel import Session, SQLModel, col
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.annotation.queue_reasons import reason
from labeling.annotation.session import UserSession
from labeling.cli.main import app
from labeling.config import write_config
from labeling.errors import BadInput, Forbidden, UnknownAnnotator
from labeling.store.models import ImportBatch, Round, Score, utcnow

WORDS = {
    "billing": ["invoice", "charge", "refund", "payment"],
    "account": ["password", "login", "profile", "email"],
    "other": ["weather", "music", "lunch", "holiday"],
}


def _tickets(start: int, count: int, *, labelled: int = 0, seed: int = 0) -> str:
    """CSV rows of tickets mixing two topics' words, the first ``labelled`` with a label."""
    rng = random.Random(seed)
    lines = []
    for k in range(start, start + count):
        a, b = rng.sample(sorted(WORDS), 2)
        label = a if k - start < labelled else ""
        lines.append(f"t{k},{rng.choice(WORDS[a])} {rng.choice(WORDS[b])} ticket {k},{label}\n")
    return "id,text,label\n" + "".join(lines)


def _workspace(tmp_path, db_url, *, overlap: int = 1, strategy: str = "margin") -> Workspace:
    """60 tickets (24 labelled), a promoted tfidf round, then 4 tickets imported after it."""
    ws = Workspace.create(tmp_path / "w", labels=list(WORDS), db_url=db_url)
    ws.config = replace(
        ws.config, overlap=overlap, gold_rate=0.0, featurizer="tfidf", strategy=strategy
    )
    write_config(ws.root, ws.config)
    first = tmp_path / "first.csv"
    first.write_text(_tickets(0, 60, labelled=24))
    ws.import_file(first, id_field="id", label_field="label")
    done = ws.retrain()
    assert done.status == "succeeded" and done.promoted, done.error
    later = tmp_path / "later.csv"
    later.write_text(_tickets(60, 4, seed=1))
    ws.import_file(later, id_field="id", label_field="label")
    for name in ("ann", "bob"):
        ws.add_user(name)
    return ws


def _fingerprint(ws: Workspace) -> str:
    """Every row of every table, and the workspace's files: equal means nothing was written."""
    digest = hashlib.sha256()
    with ws.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            digest.update(repr((table.name, sorted(map(repr, rows)))).encode())
    for path in sorted(ws.root.rglob("*")):
        if path.is_file() and not path.name.startswith("labelloop.db"):
            digest.update(f"{path.relative_to(ws.root)}:{path.stat().st_mtime_ns}".encode())
    return digest.hexdigest()


def _label_through(ws: Workspace, name: str, n: int) -> list[str]:
    """Claim and label ``n`` items as ``name``; the external ids in the order served."""
    served = []
    for _ in range(n):
        item = ws.next_item(name)
        if item is None:
            break
        served.append(item.external_id)
        ws.annotate(item.item_id, name, "billing")
    return served


@pytest.fixture
def ws(tmp_path, db_url):
    workspace = _workspace(tmp_path, db_url)
    yield workspace
    workspace.close()


def test_claims_serve_exactly_the_previewed_order_and_the_preview_writes_nothing(ws):
    before = _fingerprint(ws)
    preview = ws.queue_preview("ann", n=40)
    assert _fingerprint(ws) == before
    items = preview["items"]
    assert preview["round"] == 1 and preview["strategy"] == "margin"
    assert [row["position"] for row in items] == list(range(1, 41))
    # 36 open items the round scored, then the 4 imported after it in the seeded order.
    assert [row["strategy"] for row in items] == ["margin"] * 36 + [None] * 4
    scores = [row["score"] for row in items[:36]]
    assert scores == sorted(scores, reverse=True)
    for row in items[:36]:  # the margin in words is the one the round scored
        margin = float(row["reason"].split()[1])
        assert abs((1 - row["score"]) - margin) <= 0.006, row
        assert row["reason"].startswith("margin ") and row["prediction"] in row["reason"]
    assert {row["reason"] for row in items[36:]} == {
        "seeded order, imported after round 1 ranked the pool"
    }
    assert _label_through(ws, "ann", 41) == [row["id"] for row in items]


def test_leases_held_by_others_and_the_persons_own_hold_are_respected(ws):
    held_by_bob = [ws.next_item("bob").external_id]  # bob holds the top item
    mine = ws.next_item("ann")  # ann holds the second
    preview = ws.queue_preview("ann", n=10)
    ids = [row["id"] for row in preview["items"]]
    assert ids[0] == mine.external_id
    assert preview["items"][0]["reason"] == "you hold it now: your next claim serves it again"
    assert held_by_bob[0] not in ids
    assert _label_through(ws, "ann", 10) == ids


def test_with_overlap_two_items_others_hold_or_labelled_are_still_served(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url, overlap=2)
    try:
        bob = _label_through(ws, "bob", 3)
        bob_holds = ws.next_item("bob").external_id
        ws.next_item("ann")
        _label_through(ws, "ann", 1)  # ann has answered one item already
        preview = ws.queue_preview("ann", n=12)
        ids = [row["id"] for row in preview["items"]]
        assert bob_holds in ids and set(bob[1:]) <= set(ids)
        assert _label_through(ws, "ann", 12) == ids
    finally:
        ws.close()


def test_a_prioritised_import_comes_first_until_its_priority_is_used_up(ws):
    with ws.engine.begin() as conn:  # as the drift check does for a flagged import
        conn.execute(update(ImportBatch).where(ImportBatch.id == 2).values(priority_left=2))
    preview = ws.queue_preview("ann", n=6)
    reasons = [row["reason"] for row in preview["items"]]
    assert all(r.startswith("priority import batch 'later.csv'; seeded order") for r in reasons[:2])
    assert all(r.startswith("margin ") for r in reasons[2:])
    assert _label_through(ws, "ann", 6) == [row["id"] for row in preview["items"]]


def test_before_any_round_the_order_is_the_seeded_one(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "w", labels=list(WORDS), db_url=db_url)
    try:
        ws.config = replace(ws.config, gold_rate=0.25)
        write_config(ws.root, ws.config)
        path = tmp_path / "t.csv"
        path.write_text(_tickets(0, 8))
        ws.import_file(path, id_field="id", label_field="label")
        ws.add_user("ann")
        preview = ws.queue_preview("ann", n=5)
        assert preview["round"] is None and preview["gold_rate"] == 0.25
        assert {row["reason"] for row in preview["items"]} == {"random order (no model yet)"}
        assert [row["score"] for row in preview["items"]] == [None] * 5
    finally:
        ws.close()


def test_an_unknown_annotator_or_length_is_refused_by_name(ws):
    with pytest.raises(UnknownAnnotator, match="'nobody'"):
        ws.queue_preview("nobody")
    with pytest.raises(BadInput, match="from 1 to 500, found 0"):
        ws.queue_preview("ann", n=0)


def _cli(ws: Workspace, *args: str):
    base = ["-w", str(ws.root)] + (["--db", ws.db_url] if "postgresql" in ws.db_url else [])
    return CliRunner().invoke(app, ["queue", *args, *base])


def test_the_queue_command_prints_a_table_or_json_and_names_mistakes(ws):
    shown = _cli(ws, "ann", "--limit", "3")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == "Queue of 'ann': round 1 (margin), overlap 1."
    first = ws.queue_preview("ann", n=1)["items"][0]
    assert first["id"] in lines[2] and first["reason"] in lines[2] and len(lines) == 5
    as_json = _cli(ws, "ann", "--limit", "2", "--json")
    assert json.loads(as_json.stdout) == ws.queue_preview("ann", n=2)
    unknown = _cli(ws, "nobody")
    assert unknown.exit_code == 2 and unknown.stderr == "error: no annotator named 'nobody'\n"
    too_many = _cli(ws, "ann", "--limit", "501")
    assert too_many.exit_code == 2
    assert too_many.stderr == "error: option '--limit': expected 1 to 500, found 501\n"


def _page(user: str) -> AppTest:
    script = "from labeling.ui.views import common, queue\ncommon.apply_style()\nqueue.render()\n"
    at = AppTest.from_string(script, default_timeout=30)
    at.session_state["ll_user"] = user
    return at.run()


def test_the_queue_page_shows_the_preview_to_engineers_and_refuses_annotators(
    tmp_path, monkeypatch
):
    ws = _workspace(tmp_path, None)
    try:
        ws.add_user("eve", role="engineer")
        monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
        monkeypatch.delenv("LABELLOOP_DB", raising=False)
        at = _page("ann")
        assert not at.exception and "engineers and admins" in at.error[0].value
        before = _fingerprint(ws)
        at = _page("eve")
        assert not at.exception
        assert at.selectbox(key="ll_queue_annotator").value == "ann"  # annotators first
        shown = at.dataframe[0].value
        expected = ws.queue_preview("ann")["items"]
        assert list(shown["id"]) == [row["id"] for row in expected]
        assert list(shown["reason"]) == [row["reason"] for row in expected]
        at.selectbox(key="ll_queue_length").set_value(20).run()
        at.selectbox(key="ll_queue_annotator").set_value("bob").run()
        assert not at.exception and len(at.dataframe[0].value) == 20
        assert _fingerprint(ws) == before
        with pytest.raises(Forbidden, match="needs the engineer role; 'ann' is an annotator"):
            UserSession(ws, "ann").queue_preview("bob")
    finally:
        ws.close()


def test_reasons_in_words_follow_the_strategy():
    def said(strategy: str | None, how: str = "scored", **given) -> str:
        options = {
            "how": how,
            "round_row": None if strategy is None else Round(id=3, strategy=strategy),
            "score": 0.9,
            "ranked": [("billing", 0.41), ("account", 0.38), ("other", 0.21)],
            "has_model": True,
            "scored_when_ranked": True,
            "imported_after": False,
        }
        return reason(**{**options, **given})

    assert said("margin") == "margin 0.03 between billing and account"
    assert (
        said("least_confidence") == "margin 0.03 between billing and account; billing at only 0.41"
    )
    assert said("diverse_uncertainty", score=12.0).endswith("; in the round's diverse batch")
    assert said("diverse_uncertainty") == "margin 0.03 between billing and account"
    assert said("entropy") == "entropy 1.06 of at most 1.10 (billing 0.41, account 0.38)"
    assert said("density_weighted").endswith(", weighted by how typical of the pool it is")
    assert said("qbc").endswith("; the committee disagrees")
    assert said("random") == "random order (the round's strategy is random)"
    assert said("cold_start", has_model=False).startswith("cold start (no model yet)")
    assert said("margin", ranked=None) == "margin score 0.900"
    assert said(None, how="seeded") == "random order (no model yet)"
    assert said("margin", how="seeded", scored_when_ranked=False) == (
        "seeded order, beyond the stored top of the queue"
    )
    assert said("margin", how="seeded").startswith("seeded order, it had no open place")
    assert said("margin", how="undo").startswith("brought back by undo")


# ---------------------------------------------------------------- the promise, over many states

_property_databases = itertools.count()
_others = st.lists(
    st.tuples(st.sampled_from(["bob", "cy"]), st.sampled_from(["label", "skip", "hold"])),
    max_size=8,
)


def _scenario(ws: Workspace, root: Path, plan: dict[str, Any]) -> None:
    """Two imports (the second prioritised for ``priority`` labels), scores for some items in
    a promoted round (or no round), then what others and ann did before the preview."""
    first, later = root / "first.csv", root / "later.csv"
    first.write_text(_tickets(0, 14))
    later.write_text(_tickets(14, 5, seed=1))
    ws.import_file(first, id_field="id", label_field="label")
    ws.import_file(later, id_field="id", label_field="label")
    with Session(ws.engine) as session:
        session.exec(update(ImportBatch).where(col(ImportBatch.id) == 2).values(
            priority_left=plan["priority"]))  # fmt: skip
        if plan["scored"]:
            round_ = Round(status="succeeded", promoted=True, promoted_at=utcnow(), strategy="x")
            session.add(round_)
            session.flush()
            for item_id, score in zip(plan["scored"], plan["scores"], strict=False):
                session.add(Score(round_id=round_.id, item_id=item_id, score=score))
        session.commit()
    for name in ("ann", "bob", "cy"):
        ws.add_user(name)
    for name, action in [*plan["others"], *(("ann", a) for a in plan["mine"])]:
        item = ws.next_item(name)
        if item is not None and action == "label":
            ws.annotate(item.item_id, name, "billing")
        elif item is not None and action == "skip":
            ws.skip(item.item_id, name)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plan=st.fixed_dictionaries(
        {
            "overlap": st.integers(1, 3),
            "priority": st.integers(0, 3),
            "scored": st.lists(st.integers(1, 19), unique=True, max_size=12),
            "scores": st.lists(st.floats(0, 1), unique=True, min_size=12, max_size=12),
            "others": _others,
            "mine": st.lists(st.sampled_from(["label", "skip", "hold"]), max_size=3),
        }
    )
)
def test_claims_serve_the_previewed_order_whatever_came_before(backend, request, plan):
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    db_url = None if server is None else server.create_database(f"qp{next(_property_databases)}")
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        ws = Workspace.create(root / "w", labels=list(WORDS), db_url=db_url)
        try:
            ws.config = replace(ws.config, overlap=plan["overlap"], gold_rate=0.0)
            write_config(ws.root, ws.config)
            _scenario(ws, root, plan)
            preview = [row["id"] for row in ws.queue_preview("ann", n=25)["items"]]
            assert _label_through(ws, "ann", 26) == preview
        finally:
            ws.close()
