"""Closed items leave the claim's score walk, so claims stay fast however much is labelled.

Runs on SQLite and PostgreSQL (``--backend``).
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from sqlalchemy import text
from sqlmodel import Session, select

from labeling import Workspace
from labeling.config import write_config
from labeling.store.models import Item, Round, Score, utcnow


def _scored(tmp_path, db_url, *, overlap: int = 1) -> tuple[Workspace, dict[str, int]]:
    ws = Workspace.create(tmp_path / "w", labels=["a", "b"], db_url=db_url)
    ws.config = replace(ws.config, overlap=overlap, gold_rate=0.0)
    write_config(ws.root, ws.config)
    path = tmp_path / "items.csv"
    path.write_text("id,text\n" + "".join(f"i{k},text {k}\n" for k in range(5)))
    ws.import_file(path, id_field="id")
    with Session(ws.engine) as session:
        ids = dict(session.exec(select(Item.external_id, Item.id)).all())
        round_ = Round(status="succeeded", promoted=True, promoted_at=utcnow())
        session.add(round_)
        session.flush()
        for k in range(5):  # i4 first, then i3, ...
            session.add(Score(round_id=round_.id, item_id=ids[f"i{k}"], score=0.1 * k))
        session.commit()
    for name in ("ann", "bob"):
        ws.add_user(name)
    return ws, ids


def _score(ws: Workspace, item_id: int) -> tuple[float, bool]:
    with Session(ws.engine) as session:
        found = session.exec(select(Score.score, Score.closed).where(Score.item_id == item_id))
        score, closed = found.one()
        return round(score, 6), closed


def test_a_closed_item_leaves_the_walk_and_comes_back_when_reopened(tmp_path, db_url):
    ws, ids = _scored(tmp_path, db_url)
    item = ws.next_item("ann")
    assert item.external_id == "i4"
    ws.annotate(item.item_id, "ann", "a")
    assert _score(ws, ids["i4"]) == (0.4, True)
    assert ws.next_item("bob").external_id == "i3"  # order among the open ones unchanged
    back = ws.undo("ann")
    assert back.external_id == "i4"
    ws.skip(back.item_id, "ann")  # the label is replaced by a skip: open again
    assert _score(ws, ids["i4"]) == (0.4, False)
    ws.release("bob")
    assert ws.next_item("bob").external_id == "i4"  # back in its place at the top
    ws.close()


def test_with_overlap_two_an_item_closes_at_its_second_label(tmp_path, db_url):
    ws, ids = _scored(tmp_path, db_url, overlap=2)
    first = ws.next_item("ann")
    ws.annotate(first.item_id, "ann", "a")
    assert _score(ws, ids["i4"]) == (0.4, False)  # one label of two: still open
    second = ws.next_item("bob")
    assert second.external_id == "i4"
    ws.annotate(second.item_id, "bob", "b")
    assert _score(ws, ids["i4"]) == (0.4, True)
    ws.close()


def _planner_rows(ws: Workspace, table: str) -> float:
    with ws.engine.connect() as conn:
        found = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = :t AND relkind = 'r'"),
            {"t": table},
        )
        return float(found.scalar_one())


def _rows(ws: Workspace, table: str) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_postgresql_statistics_are_fresh_after_an_import_and_a_round(tmp_path, postgres_server):
    """After bulk writes the planner knows the tables' sizes at once, not when autovacuum runs.

    With the counts it saw while the tables were empty, PostgreSQL read and sorted every open
    score on each claim (90-180 ms a claim on a 4,000-item pool) instead of stepping down the
    score index.
    """
    url = postgres_server.create_database(f"stats{uuid.uuid4().hex}")
    ws = Workspace.create(tmp_path / "w", labels=["a", "b"], db_url=url)
    path = tmp_path / "items.csv"
    path.write_text(
        "id,text,label\n"
        + "".join(
            f"i{k},text {k} word{k % 7},{'a' if k < 10 else 'b' if k < 20 else ''}\n"
            for k in range(600)
        )
    )
    ws.import_file(path, id_field="id", label_field="label")
    assert _planner_rows(ws, "item") == _rows(ws, "item") == 600
    assert _planner_rows(ws, "annotation") == _rows(ws, "annotation") == 20
    assert ws.retrain().promoted
    assert _planner_rows(ws, "score") == _rows(ws, "score") > 500
    with ws.engine.connect() as conn:
        plan = "\n".join(
            conn.execute(
                text(
                    "EXPLAIN SELECT item.id FROM item JOIN score ON score.item_id = item.id "
                    "AND score.round_id = 1 AND score.closed IS false WHERE item.n_labels + 0 < 1 "
                    "ORDER BY score.score DESC LIMIT 1 FOR UPDATE OF item SKIP LOCKED"
                )
            ).scalars()
        )
    assert "ix_score_round_open_score" in plan and "Sort" not in plan, plan
    ws.close()
