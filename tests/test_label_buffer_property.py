"""The buffered Label page's incremental state always equals a from-scratch recomputation.

Hypothesis runs random sequences on a real store (a SQLite file, a PostgreSQL database): two
browser tabs of one person answering, skipping and undoing (acknowledged or not, with replies
lost and batches sent again), a reload that lost a tab's buffer, a new round's reorder, holds
that run out, a clock that moves past a tab's short hold (or not quite), a tab that closes
with a release (its reply lost, and the release sent again), and the one-item page of the
same person and of another person beside them.
After every step:

* each item's stored label count equals its current human labels, counted from the answers;
* nobody has two current answers to one item, and every operation the test saw acknowledged
  as applied recorded exactly one answer (a resend never a second);
* no pool item has more labels and live holds than ``overlap``;
* each tab holds in the store exactly the items the test's model of its buffer says; the only
  holds that leave a tab without its doing are lapsed ones, which the same person's claim in
  another tab (or on the one-item page) frees.
"""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.annotation.buffer import TAB_HOLD_SECONDS, Op
from labeling.config import write_config
from labeling.store.models import HUMAN, Annotation, ClientOp, Item, Lease, utcnow

TABS = ("tab-aaaa-1", "tab-bbbb-2")
_cids = itertools.count()
_databases = itertools.count()

steps = st.one_of(
    st.tuples(st.just("answer"), st.sampled_from(TABS), st.sampled_from(["a", "b", None])),
    st.tuples(st.just("undo"), st.sampled_from(TABS), st.booleans()),
    st.tuples(st.just("lost"), st.sampled_from(TABS), st.sampled_from(["a", "b"])),
    st.tuples(st.just("reload"), st.sampled_from(TABS), st.none()),
    st.tuples(st.just("reorder"), st.sampled_from(TABS), st.none()),
    st.tuples(st.just("expire"), st.none(), st.none()),
    st.tuples(st.just("clock"), st.none(), st.sampled_from([60, TAB_HOLD_SECONDS + 1])),
    st.tuples(st.just("release"), st.sampled_from(TABS), st.booleans()),
    st.tuples(st.just("page"), st.sampled_from(["ann", "bob"]), st.sampled_from(["a", None])),
)


class Tab:
    """The test's model of one tab: its buffer, its unacknowledged operations, its history."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.keep: list[str] = []
        self.outbox: list[Op] = []
        self.history: list[str] = []  # cids of this tab's acknowledged answers and skips

    def send(self, ws: Workspace, applied: set[str], *, reorder: bool = False):
        reply = ws.label_batch(
            "ann", tab=self.name, ops=self.outbox, keep=self.keep, want=4, reorder=reorder
        )
        if reorder:  # the items after the one on screen come again, in the new order
            self.keep = self.keep[:1]
        self.absorb(reply, applied)
        return reply

    def absorb(self, reply, applied: set[str]) -> None:
        for ack in reply.acks:
            op = next(op for op in self.outbox if op.cid == ack.cid)
            if ack.ok and op.kind in ("answer", "skip"):
                if not ack.dup:
                    applied.add(op.cid)
                self.history.append(op.cid)
            if ack.ok and op.kind == "undo" and op.of in self.history:
                self.history.remove(op.of)
        self.outbox = []
        gone = {name for name, _why in reply.dropped}
        back = [shown.item.external_id for shown in reply.undone.values()]
        self.keep = [*back, *(k for k in self.keep if k not in gone and k not in back)]
        self.keep += [
            s.item.external_id for s in reply.items if s.item.external_id not in self.keep
        ]


def _workspace(directory: Path, db_url: str | None, overlap: int) -> Workspace:
    ws = Workspace.create(directory / "ws", labels=["a", "b"], db_url=db_url)
    path = directory / "pool.csv"
    path.write_text("id,text\n" + "".join(f"p{k},text {k}\n" for k in range(14)))
    ws.import_file(path, id_field="id")
    for name in ("ann", "bob"):
        ws.add_user(name)
    write_config(ws.root, replace(ws.config, prefetch=3, gold_rate=0.0, overlap=overlap))
    ws.close()
    return Workspace.open(directory / "ws", db_url=db_url)


def _step(ws: Workspace, tabs: dict[str, Tab], applied: set[str], step) -> None:
    kind, who, what = step
    if kind == "expire":
        with Session(ws.engine) as session:
            session.exec(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
            session.commit()
        return
    if kind == "clock":  # time passes for every hold: the stored times move back
        with Session(ws.engine) as session:
            for lease in session.exec(select(Lease)).all():
                lease.expires_at -= timedelta(seconds=what)
                lease.served_at -= timedelta(seconds=what)
                session.add(lease)
            session.commit()
        return
    if kind == "page":
        item = ws.next_item(who)
        if item is not None:
            if what is None:
                ws.skip(item.item_id, who)
            else:
                ws.annotate(item.item_id, who, what)
        return
    tab = tabs[who]
    if kind in ("answer", "lost") and tab.keep:
        label = what
        cid = f"cid-{next(_cids):06d}"
        front = tab.keep.pop(0)
        tab.outbox.append(Op(cid, "skip" if label is None else "answer", front, label))
        if kind == "lost":  # applied, but the reply never arrives: sent again next time
            ws.label_batch("ann", tab=tab.name, ops=tab.outbox, keep=tab.keep, want=4)
            return
    elif kind == "undo":
        of = tab.history[-1] if tab.history and what else None
        tab.outbox.append(Op(f"cid-{next(_cids):06d}", "undo", of=of))
    elif kind == "reload":
        tab.keep = []
    elif kind == "release":  # the page closes: what it has not sent, then a release
        tab.outbox.append(Op(f"cid-{next(_cids):06d}", "release"))
        tab.keep = []  # the page after it (a reload) lists nothing held, and resends the rest
        if what:  # applied, but the reply never arrives
            ws.label_batch("ann", tab=tab.name, ops=tab.outbox, keep=[], want=0)
            return
        reply = ws.label_batch("ann", tab=tab.name, ops=tab.outbox, keep=[], want=0)
        tab.absorb(reply, applied)
        return
    tab.send(ws, applied, reorder=kind == "reorder")


def _check(ws: Workspace, tabs: dict[str, Tab], applied: set[str], overlap: int) -> None:
    with Session(ws.engine) as session:
        answers = session.exec(
            select(Annotation).where(col(Annotation.superseded_by).is_(None))
        ).all()
        labels = Counter(a.item_id for a in answers if a.label is not None and a.origin == HUMAN)
        for item in session.exec(select(Item)).all():
            assert item.n_labels == labels[item.id], item.external_id
        per_person = Counter((a.item_id, a.annotator_id) for a in answers)
        assert max(per_person.values(), default=1) == 1
        recorded = session.exec(
            select(ClientOp).where(col(ClientOp.op).in_(["answer", "skip"]))
        ).all()
        assert {op.cid for op in recorded} >= applied
        assert len({op.annotation_id for op in recorded}) == len(recorded)
        now = utcnow()
        holds = Counter(
            lease.item_id
            for lease in session.exec(select(Lease)).all()
            if lease.holds and lease.expires_at.replace(tzinfo=now.tzinfo) > now
        )
        for item in session.exec(select(Item).where(Item.split == "pool")).all():
            assert item.n_labels + holds[item.id] <= max(overlap, item.n_labels), item.external_id
        for tab in tabs.values():
            stored = session.exec(
                select(Item.external_id)
                .join(Lease, col(Lease.item_id) == col(Item.id))
                .where(Lease.tab == tab.name)
            ).all()
            if not tab.outbox:
                assert sorted(stored) == sorted(tab.keep), tab.name


def _tab_holds(ws: Workspace) -> dict[str, dict[str, bool]]:
    """Each tab's held items, and whether the hold has lapsed."""
    now = utcnow()
    found: dict[str, dict[str, bool]] = {name: {} for name in TABS}
    with Session(ws.engine) as session:
        rows = session.exec(
            select(Lease.tab, Item.external_id, Lease.expires_at).join(
                Item, col(Item.id) == col(Lease.item_id)
            )
        ).all()
    for tab, name, expires in rows:
        if tab is not None:
            found[tab][name] = expires.replace(tzinfo=now.tzinfo) <= now
    return found


def _forget_freed(tabs: dict[str, Tab], before, after, acting: str | None) -> None:
    """The holds another tab's step freed: only lapsed ones, which leave the model's buffer."""
    for tab in tabs.values():
        if tab.name == acting:
            continue
        freed = {k for k in tab.keep if k in before[tab.name] and k not in after[tab.name]}
        assert all(before[tab.name][k] for k in freed), (tab.name, freed, before[tab.name])
        tab.keep = [k for k in tab.keep if k not in freed]


def _run(db_url: str | None, directory: Path, overlap: int, sequence) -> None:
    ws = _workspace(directory, db_url, overlap)
    tabs = {name: Tab(name) for name in TABS}
    applied: set[str] = set()
    try:
        for tab in tabs.values():
            tab.send(ws, applied)
        for step in sequence:
            before = _tab_holds(ws)
            _step(ws, tabs, applied, step)
            acting = step[1] if step[1] in tabs else None
            _forget_freed(tabs, before, _tab_holds(ws), acting)
            _check(ws, tabs, applied, overlap)
    finally:
        ws.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(overlap=st.sampled_from([1, 2]), sequence=st.lists(steps, min_size=4, max_size=25))
def test_buffered_labelling_always_equals_a_recount(backend, request, overlap, sequence):
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    db_url = None if server is None else server.create_database(f"buf{next(_databases)}")
    with tempfile.TemporaryDirectory() as directory:
        _run(db_url, Path(directory), overlap, sequence)
