"""Pruning the tabs' operations and the webhooks' finished deliveries
(labeling.store.housekeeping), on both backends: rows past their retention go, young ones,
pending deliveries and a tab's last operations stay; a resend is acknowledged once while its
row is kept and refused, not applied again, once it is gone; a big prune goes in short batches;
``doctor`` reports what is due and ``--fix`` prunes it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, update
from sqlmodel import Session, col, func, select

from labeling import Workspace
from labeling.annotation.buffer import Op
from labeling.config import write_config
from labeling.store import housekeeping
from labeling.store.models import Annotation, Annotator, ClientOp, Flag, Outbox, utcnow
from labeling.ui import label_route

DAY = timedelta(days=1)
OPS = ClientOp.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]


@pytest.fixture
def ws(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "prune", labels=["a", "b"], db_url=db_url)
    path = tmp_path / "pool.csv"
    path.write_text("id,text\n" + "".join(f"i{k},text number {k}\n" for k in range(20)))
    ws.import_file(path, id_field="id")
    ws.add_user("ann")
    write_config(ws.root, replace(ws.config, prefetch=3, gold_rate=0.0))
    ws.close()
    ws = Workspace.open(tmp_path / "prune", db_url=db_url)
    yield ws
    ws.close()


def _answer(ws: Workspace, tab: str, cid: str) -> str:
    """Answer the first item the tab holds, with client id ``cid``; the item's id."""
    item = ws.label_batch("ann", tab=tab, ops=[], keep=[], want=1).items[0].item.external_id
    [ack] = ws.label_batch("ann", tab=tab, ops=[_op(cid, item)], keep=[], want=0).acks
    assert ack.ok and not ack.dup
    return item


def _op(cid: str, item: str) -> Op:
    return Op(cid=cid, kind="answer", item=item, label="a")


def _age(ws: Workspace, cid: str, at: datetime) -> None:
    with Session(ws.engine) as session:
        session.execute(update(OPS).where(OPS.c.cid == cid).values(created_at=at))
        session.commit()


def _cids(ws: Workspace) -> set[str]:
    with Session(ws.engine) as session:
        return set(session.exec(select(ClientOp.cid)).all())


def _delivery(ws: Workspace, state: str, due_at: datetime) -> int:
    with Session(ws.engine) as session:
        row = Outbox(event="e", hook="h", url="http://127.0.0.1:9/", body="{}", state=state,
                     created_at=due_at, due_at=due_at)  # fmt: skip
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def _human_answers(ws: Workspace) -> int:
    with Session(ws.engine) as session:
        return session.exec(select(func.count()).select_from(Annotation)).one()


def test_old_rows_go_and_young_pending_and_a_tabs_last_ones_stay(ws):
    now = utcnow()
    for cid in ("c-quiet-01", "c-quiet-02", "c-quiet-03", "c-young-01", "c-ancient-1"):
        _answer(ws, f"tab-{cid[2:7]}", cid)
    _age(ws, "c-quiet-01", now - 45 * DAY)
    _age(ws, "c-quiet-02", now - 44 * DAY)
    _age(ws, "c-quiet-03", now - 40 * DAY)  # the quiet tab's last: kept
    _age(ws, "c-young-01", now - 2 * DAY)
    _age(ws, "c-ancient-1", now - 200 * DAY)  # a tab's last, but past the most kept
    gone = {
        _delivery(ws, "delivered", now - 31 * DAY),
        _delivery(ws, "dead", now - 91 * DAY),
    }
    kept = {
        _delivery(ws, "delivered", now - 29 * DAY),
        _delivery(ws, "dead", now - 40 * DAY),
        _delivery(ws, "pending", now - 400 * DAY),
    }
    keep_one = housekeeping.Retention(tab_keeps=1)
    due = housekeeping.due(ws.engine, now=now, retention=keep_one)
    assert (due.clientops, due.delivered, due.dead) == (3, 1, 1)
    done = housekeeping.prune(ws.engine, now=now, retention=keep_one)
    assert (done.clientops, done.delivered, done.dead) == (3, 1, 1)
    assert done.kept_for_tabs == 1
    assert _cids(ws) == {"c-quiet-03", "c-young-01"}
    with Session(ws.engine) as session:
        assert set(session.exec(select(Outbox.id)).all()) == kept
    assert not gone & kept
    assert housekeeping.due(ws.engine, now=now, retention=keep_one).rows == 0
    assert housekeeping.prune(ws.engine, now=now, retention=keep_one).rows == 0


def test_a_resend_within_the_window_is_acknowledged_once(ws):
    item = _answer(ws, "tab-resend-1", "c-resend-01")
    _age(ws, "c-resend-01", utcnow() - 29 * DAY)
    assert housekeeping.prune(ws.engine).clientops == 0
    [ack] = ws.label_batch("ann", tab="tab-resend-1", ops=[_op("c-resend-01", item)], keep=[],
                           want=0).acks  # fmt: skip
    assert ack.ok and ack.dup
    assert _human_answers(ws) == 1


def test_a_resend_of_a_pruned_answer_is_refused_not_applied_twice(ws):
    first = _answer(ws, "tab-pruned-1", "c-pruned-01")
    _answer(ws, "tab-pruned-1", "c-pruned-02")
    _age(ws, "c-pruned-01", utcnow() - 45 * DAY)
    _age(ws, "c-pruned-02", utcnow() - 44 * DAY)  # the tab's last, kept
    keep_one = housekeeping.Retention(tab_keeps=1)
    assert housekeeping.prune(ws.engine, retention=keep_one).clientops == 1
    assert _cids(ws) == {"c-pruned-02"}
    # Without its row the resend is a new answer: refused, as the person no longer holds it.
    [ack] = ws.label_batch("ann", tab="tab-pruned-1", ops=[_op("c-pruned-01", first)], keep=[],
                           want=0).acks  # fmt: skip
    assert not ack.ok and "Not saved" in (ack.error or "") and ack.item == first
    assert _human_answers(ws) == 2
    # An undo of it: refused too.
    undo = Op(cid="c-pruned-03", kind="undo", of="c-pruned-01")
    [ack] = ws.label_batch("ann", tab="tab-pruned-1", ops=[undo], keep=[], want=0).acks
    assert not ack.ok and "not on record" in (ack.error or "") and "30 days old" in ack.error


def test_a_sleeping_tabs_last_batch_is_kept_so_its_resend_is_not_applied_twice(ws):
    """A flag needs no hold: its resend without a row would raise a second flag. A tab's
    newest operations (a batch's worth) are kept however old, so a tab that wakes after weeks
    is acknowledged once."""
    item = _answer(ws, "tab-sleepy-1", "c-sleepy-01")
    flag = Op(cid="c-sleepy-02", kind="flag", item=item, note="two questions in one")
    assert ws.label_batch("ann", tab="tab-sleepy-1", ops=[flag], keep=[], want=0).acks[0].ok
    _age(ws, "c-sleepy-01", utcnow() - 100 * DAY)
    _age(ws, "c-sleepy-02", utcnow() - 100 * DAY + timedelta(minutes=1))
    assert (
        housekeeping.prune(ws.engine, retention=housekeeping.Retention(tab_keeps=1)).clientops == 1
    )
    assert _cids(ws) == {"c-sleepy-02"}
    [ack] = ws.label_batch("ann", tab="tab-sleepy-1", ops=[flag], keep=[], want=0).acks
    assert ack.ok and ack.dup
    with Session(ws.engine) as session:
        assert session.exec(select(func.count()).select_from(Flag)).one() == 1


def test_a_big_prune_goes_in_several_short_batches(ws):
    with Session(ws.engine) as session:
        ann = session.exec(select(Annotator.id).where(Annotator.name == "ann")).one()
        old = utcnow() - 60 * DAY
        rows = [
            {"cid": f"c-bulk-{k:06d}", "annotator_id": ann, "tab": f"tab-bulk-{k % 50:03d}",
             "op": "answer", "created_at": old + timedelta(minutes=2 * k)}
            for k in range(12_000)
        ]  # fmt: skip
        session.execute(insert(OPS), rows)
        deliveries = [
            {"event": "e", "hook": "h", "url": "u", "body": "{}", "created_at": old,
             "state": "delivered", "due_at": old, "attempts": 1}
            for _ in range(2_500)
        ]  # fmt: skip
        session.execute(insert(OUTBOX), deliveries)
        session.commit()
    keep = housekeeping.Retention(tab_keeps=1)
    assert housekeeping.due(ws.engine, retention=keep, batch=1_000).rows == 11_950 + 2_500
    done = housekeeping.prune(ws.engine, retention=keep, batch=1_000, pause=0.0)
    # Each of the 50 tabs keeps its newest operation.
    assert (done.clientops, done.delivered, done.kept_for_tabs) == (11_950, 2_500, 50)
    assert done.batches >= 12 + 3
    with Session(ws.engine) as session:
        kept = session.exec(select(ClientOp.cid).order_by(col(ClientOp.cid))).all()
    assert kept == [f"c-bulk-{k:06d}" for k in range(11_950, 12_000)]


def test_a_tab_keeps_at_least_the_operations_one_batch_may_carry(ws):
    assert housekeeping.TAB_KEEPS >= label_route.MAX_OPS
    for k in range(3):
        _answer(ws, "tab-recent-1", f"c-recent-{k:02d}")
        _age(ws, f"c-recent-{k:02d}", utcnow() - (50 - k) * DAY)
    assert housekeeping.prune(ws.engine).clientops == 0  # fewer than 200: all kept
    assert housekeeping.prune(ws.engine, now=utcnow() + 200 * DAY).clientops == 3


def test_doctor_reports_rows_past_their_retention_and_fix_prunes_them(ws):
    _answer(ws, "tab-doctor-1", "c-doctor-01")
    _answer(ws, "tab-doctor-1", "c-doctor-02")
    _age(ws, "c-doctor-01", utcnow() - 200 * DAY)  # past the most a tab keeps
    _delivery(ws, "delivered", utcnow() - 40 * DAY)
    found = {c["check"]: c for c in ws.doctor()["checks"]}["old rows pruned"]
    assert not found["ok"] and found["count"] == 2
    assert any("1 client operation(s)" in p for p in found["problems"])
    report = ws.doctor(fix=True)
    assert report["ok"], report
    assert {c["check"]: c for c in ws.doctor()["checks"]}["old rows pruned"]["ok"]
    assert _cids(ws) == {"c-doctor-02"}


def test_the_pruner_prunes_at_most_every_few_minutes(ws):
    pruner = housekeeping.Pruner(every=3600)
    assert pruner.maybe_prune(ws.engine) is not None
    assert pruner.maybe_prune(ws.engine) is None
