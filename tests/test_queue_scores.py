"""Closed items leave the claim's score walk, so claims stay fast however much is labelled.

Runs on SQLite and PostgreSQL (``--backend``).
"""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import Session, select

from labeling import Workspace
from labeling.config import write_config
from labeling.models import Item, Round, Score, utcnow


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
