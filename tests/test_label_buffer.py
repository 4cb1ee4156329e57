"""The buffered Label page's store side (labeling.annotation.buffer), through the Python API on
both backends: a tab's batches apply each operation once, its buffer is leased to it, two tabs
and the one-item page never share an item, undo walks back through a tab's answers and beyond,
and a hold that ran out is refused with a message that names the item."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from labeling import Workspace
from labeling.annotation.buffer import TAB_HOLD_SECONDS, Op
from labeling.config import write_config
from labeling.store.models import Annotation, ClientOp, Flag, Item, Lease, utcnow


def _open(tmp_path, db_url, *, n: int = 20, labels=("a", "b"), **settings) -> Workspace:
    ws = Workspace.create(tmp_path / "buf", labels=list(labels), db_url=db_url)
    path = tmp_path / "pool.csv"
    path.write_text("id,text\n" + "".join(f"i{k},text number {k}\n" for k in range(n)))
    ws.import_file(path, id_field="id")
    for name in ("ann", "bob"):
        ws.add_user(name)
    write_config(ws.root, replace(ws.config, prefetch=3, gold_rate=0.0, **settings))
    ws.close()
    return Workspace.open(tmp_path / "buf", db_url=db_url)


@pytest.fixture
def ws(tmp_path, db_url):
    ws = _open(tmp_path, db_url)
    yield ws
    ws.close()


def _ids(reply) -> list[str]:
    return [shown.item.external_id for shown in reply.items]


def _answers(ws: Workspace) -> dict[str, list[str | None]]:
    """Current human answers by item external id (a list, to catch a doubled answer)."""
    with Session(ws.engine) as session:
        rows = session.exec(
            select(Item.external_id, Annotation.label)
            .join(Annotation, col(Annotation.item_id) == col(Item.id))
            .where(col(Annotation.superseded_by).is_(None))
        ).all()
    found: dict[str, list[str | None]] = {}
    for name, label in rows:
        found.setdefault(name, []).append(label)
    return found


def test_a_tab_holds_its_buffer_and_each_answer_lands_once(ws):
    first = ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4)
    held = _ids(first)
    assert len(held) == 4 and len(set(held)) == 4 and not first.done
    ops = [Op("cid-00001", "answer", held[0], "a"), Op("cid-00002", "skip", held[1])]
    reply = ws.label_batch("ann", tab="tab-one-1", ops=ops, keep=held[2:], want=4, counts=True)
    assert [(a.cid, a.ok, a.dup) for a in reply.acks] == [
        ("cid-00001", True, False),
        ("cid-00002", True, False),
    ]
    assert len(reply.items) == 2 and not set(_ids(reply)) & set(held)
    assert reply.progress is not None and reply.progress.today == 1
    # The reply was lost: the same operations come again, with the next one.
    again = ws.label_batch(
        "ann",
        tab="tab-one-1",
        ops=[*ops, Op("cid-00003", "answer", held[2], "b")],
        keep=[*held[3:], *_ids(reply)],
        want=4,
    )
    assert [(a.ok, a.dup) for a in again.acks] == [(True, True), (True, True), (True, False)]
    answers = _answers(ws)
    assert answers[held[0]] == ["a"] and answers[held[1]] == [None] and answers[held[2]] == ["b"]
    with Session(ws.engine) as session:
        assert session.exec(select(func.count()).select_from(ClientOp)).one() == 3
        assert session.exec(select(Item.n_labels).where(Item.external_id == held[0])).one() == 1


def test_two_tabs_and_the_one_item_page_never_share_an_item(ws):
    one = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    two = _ids(ws.label_batch("ann", tab="tab-two-2", ops=[], keep=[], want=4))
    page = ws.next_item("ann")
    assert page is not None
    assert len({*one, *two, page.external_id}) == 9
    # An answer from one tab takes the item; the other tab's answer to it is refused, named.
    ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-a0001", "answer", one[0], "a")], keep=one[1:], want=4
    )
    refused = ws.label_batch(
        "ann", tab="tab-two-2", ops=[Op("cid-b0001", "answer", one[0], "b")], keep=two, want=4
    )
    assert not refused.acks[0].ok and one[0] in (refused.acks[0].error or "")
    assert refused.acks[0].error.startswith("Not saved:")
    assert _answers(ws)[one[0]] == ["a"]
    # The one-item page's reload keeps its own item, not a tab's.
    assert ws.next_item("ann").item_id == page.item_id


def test_another_person_never_gets_a_buffered_item(ws):
    held = set(_ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4)))
    others = []
    for _ in range(16):
        item = ws.next_item("bob")
        if item is None:
            break
        others.append(item.external_id)
        ws.annotate(item.item_id, "bob", "a")
    assert len(others) == 16 and not held & set(others)


def test_undo_walks_back_through_the_tab_then_the_persons_history(ws):
    older = ws.next_item("ann")  # answered on the one-item page before the tab existed
    ws.annotate(older.item_id, "ann", "b")
    held = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    ops = [Op("cid-00001", "answer", held[0], "a"), Op("cid-00002", "skip", held[1])]
    ws.label_batch("ann", tab="tab-one-1", ops=ops, keep=held[2:], want=4)
    # Undo the skip (acknowledged), then the label, then past the tab into older history.
    back = ws.label_batch(
        "ann",
        tab="tab-one-1",
        ops=[Op("cid-00003", "undo", of="cid-00002"), Op("cid-00004", "undo", of="cid-00001")],
        keep=[held[0], held[1], *held[2:]],
        want=4,
    )
    assert [a.ok for a in back.acks] == [True, True] and not back.dropped
    assert back.undone["cid-00003"].item.external_id == held[1]
    assert (
        back.undone["cid-00003"].item.is_undo
        and back.undone["cid-00003"].item.previous_label is None
    )
    assert back.undone["cid-00004"].item.previous_label == "a"
    further = ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-00005", "undo")], keep=[held[0], *held[1:]], want=4
    )
    assert further.undone["cid-00005"].item.external_id == older.external_id
    assert (
        ws.label_batch("ann", tab="tab-one-1", ops=[Op("cid-00006", "undo")], keep=[], want=4)
        .acks[0]
        .error
        == "There is no earlier answer to go back to"
    )
    # Answering again changes the answer: one current answer per item, the new one.
    ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-00007", "answer", held[0], "b")], keep=held[1:], want=4
    )
    assert _answers(ws)[held[0]] == ["b"]
    with Session(ws.engine) as session:
        assert session.exec(select(Item.n_labels).where(Item.external_id == held[0])).one() == 1
    # An undo of an answer changed since is refused, saying so.
    late = ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-00008", "undo", of="cid-00001")], keep=[], want=4
    )
    assert "changed since" in (late.acks[0].error or "")


def test_a_reload_gets_the_tabs_items_back_undo_first(ws):
    held = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-00001", "answer", held[0], "a")], keep=held[1:], want=4
    )
    ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-00002", "undo", of="cid-00001")], keep=held[1:], want=4
    )
    reload = ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4)
    assert _ids(reload)[0] == held[0] and reload.items[0].item.is_undo
    assert set(_ids(reload)) >= set(held)


def test_a_hold_that_ran_out_and_was_taken_is_refused_and_dropped(tmp_path, db_url):
    ws = _open(tmp_path, db_url, n=5)
    held = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    with Session(ws.engine) as session:
        session.exec(update(Lease).values(expires_at=utcnow() - timedelta(seconds=5)))
        session.commit()
    taken = []
    for _ in range(5):
        item = ws.next_item("bob")
        if item is None:
            break
        taken.append(item.external_id)
        ws.annotate(item.item_id, "bob", "b")
    assert set(held) <= set(taken)
    reply = ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-00001", "answer", held[0], "a")], keep=held[1:], want=4
    )
    assert not reply.acks[0].ok and "expired" in (reply.acks[0].error or "")
    assert {name for name, _why in reply.dropped} == set(held[1:])
    assert all("went to someone else" in why for _name, why in reply.dropped)
    assert reply.done and reply.empty is not None
    assert _answers(ws)[held[0]] == ["b"]


def _pass(ws: Workspace, seconds: float) -> None:
    """The clock moves on by ``seconds`` for every hold (the store's times move back)."""
    moved = timedelta(seconds=seconds)
    with Session(ws.engine) as session:
        for lease in session.exec(select(Lease)).all():
            lease.expires_at -= moved
            lease.served_at -= moved
            session.add(lease)
        session.commit()


def _held(ws: Workspace, tab: str | None) -> dict[str, float]:
    """The items held for ``tab`` (None: the one-item page), with the seconds left on each."""
    now = utcnow()
    with Session(ws.engine) as session:
        rows = session.exec(
            select(Item.external_id, Lease.expires_at)
            .join(Lease, col(Lease.item_id) == col(Item.id))
            .where(Lease.tab == tab if tab is not None else col(Lease.tab).is_(None))
        ).all()
    return {name: (at.replace(tzinfo=now.tzinfo) - now).total_seconds() for name, at in rows}


def test_a_closed_tabs_holds_lapse_after_the_short_tab_hold(ws):
    held = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    page = ws.next_item("bob")  # the one-item page keeps lease_seconds
    assert page is not None
    left = _held(ws, "tab-one-1")
    assert sorted(left) == sorted(held)
    assert all(TAB_HOLD_SECONDS - 5 < s <= TAB_HOLD_SECONDS for s in left.values())
    assert 1800 - 5 < _held(ws, None)[page.external_id] <= 1800
    # The tab closed without a word: nothing renews its holds. Within the short hold they stay.
    _pass(ws, TAB_HOLD_SECONDS - 30)
    ws.annotate(page.item_id, "bob", "a")
    assert ws.next_item("bob").external_id not in held
    # Past it, the items go to the next person who asks, in queue order.
    _pass(ws, 31)
    taken = []
    for _ in range(8):
        item = ws.next_item("bob")
        taken.append(item.external_id)
        ws.annotate(item.item_id, "bob", "b")
    assert set(held) <= set(taken)


def test_a_crashed_tabs_lapsed_holds_go_to_the_same_person_in_another_tab(ws):
    # Tabs that crashed sent no release: their holds lapse, and the same person's next tab
    # gets those items again (first in the queue's order) instead of never seeing them.
    held = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    other = _ids(ws.label_batch("ann", tab="tab-two-2", ops=[], keep=[], want=4))
    assert not set(held) & set(other)  # within the hold, never the same item twice
    _pass(ws, TAB_HOLD_SECONDS + 1)
    again = _ids(ws.label_batch("ann", tab="tab-three-3", ops=[], keep=[], want=4))
    assert again == held
    assert not _held(ws, "tab-one-1") and not _held(ws, "tab-two-2")
    # The one-item page too: the next item is the first of the other crashed tab's.
    first = ws.next_item("ann")
    assert first is not None and first.external_id == other[0]
    # A tab's own lapsed holds are left for that tab to keep (nobody took them).
    _pass(ws, TAB_HOLD_SECONDS + 1)
    beat = ws.label_batch("ann", tab="tab-three-3", ops=[], keep=again, want=4)
    assert not beat.dropped and sorted(_held(ws, "tab-three-3")) == sorted(again)


def test_each_batch_and_heartbeat_renews_a_tabs_holds(ws):
    held = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    # Someone reads one long item for ten minutes: the heartbeat (a batch with nothing in it)
    # every minute or two keeps every hold of the tab.
    for _ in range(5):
        _pass(ws, TAB_HOLD_SECONDS - 60)
        beat = ws.label_batch("ann", tab="tab-one-1", ops=[], keep=held, want=4)
        assert not beat.dropped and not beat.items
        assert all(s > TAB_HOLD_SECONDS - 5 for s in _held(ws, "tab-one-1").values())
    for _ in range(12):
        item = ws.next_item("bob")
        assert item.external_id not in held
        ws.annotate(item.item_id, "bob", "a")
    reply = ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-00001", "answer", held[0], "a")], keep=held[1:], want=4
    )
    assert reply.acks[0].ok and _answers(ws)[held[0]] == ["a"]


def test_a_release_frees_the_tabs_unanswered_holds_once(ws):
    one = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    two = _ids(ws.label_batch("ann", tab="tab-two-2", ops=[], keep=[], want=4))
    # The tab closes: its pending answer, then a release of the rest, in one batch.
    closing = [Op("cid-00001", "answer", one[0], "a"), Op("cid-00002", "release")]
    reply = ws.label_batch("ann", tab="tab-one-1", ops=closing, keep=[], want=0)
    assert [(a.ok, a.dup) for a in reply.acks] == [(True, False), (True, False)]
    assert not reply.items and _held(ws, "tab-one-1") == {}
    assert sorted(_held(ws, "tab-two-2")) == sorted(two)  # the other tab keeps its own
    assert _answers(ws)[one[0]] == ["a"]
    # Freed: bob gets them now, in queue order, where the other tab's stay out of his reach.
    taken = []
    for _ in range(3):
        item = ws.next_item("bob")
        taken.append(item.external_id)
        ws.annotate(item.item_id, "bob", "b")
    assert set(taken) == set(one[1:]) and not set(taken) & set(two)
    # The page was a reload: the same tab asks again, then its release comes once more (the
    # reloaded page resends what it did not see acknowledged). Applied once: nothing is freed.
    back = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    again = ws.label_batch("ann", tab="tab-one-1", ops=closing, keep=back, want=4)
    assert [(a.ok, a.dup) for a in again.acks] == [(True, True), (True, True)]
    assert not again.dropped and sorted(_held(ws, "tab-one-1")) == sorted(back)
    assert _answers(ws)[one[0]] == ["a"]
    with Session(ws.engine) as session:
        ops = session.exec(select(ClientOp.op).where(ClientOp.tab == "tab-one-1")).all()
    assert sorted(ops) == ["answer", "release"]


def test_answers_bring_fresh_progress_counts(ws):
    held = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    assert ws.label_batch("ann", tab="tab-one-1", ops=[], keep=held, want=4).progress is None
    for at, name in enumerate(held[:3], start=1):
        op = Op(f"cid-0000{at}", "answer", name, "a")
        reply = ws.label_batch("ann", tab="tab-one-1", ops=[op], keep=held[at:], want=4)
        assert reply.progress is not None and reply.progress.today == at
        assert reply.progress == ws.progress("ann")  # the one-item page's figures
    skip = ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-00009", "skip", held[3])], keep=[], want=4
    )
    assert skip.progress is not None and skip.progress.today == 3


def test_reorder_hands_back_what_was_not_shown(ws):
    held = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=4))
    reply = ws.label_batch("ann", tab="tab-one-1", ops=[], keep=held, want=4, reorder=True)
    with Session(ws.engine) as session:
        leased = set(
            session.exec(
                select(Item.external_id).join(Lease, col(Lease.item_id) == col(Item.id))
            ).all()
        )
    assert held[0] in leased and len(leased) == 4
    assert len(reply.items) == 3 and set(_ids(reply)) | {held[0]} == leased


def test_flags_and_bad_labels(ws):
    held = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=2))
    reply = ws.label_batch(
        "ann",
        tab="tab-one-1",
        ops=[
            Op("cid-00001", "flag", held[0], note="two questions in one"),
            Op("cid-00002", "answer", held[0], "nope"),
            Op("cid-00003", "answer", "no-such-item", "a"),
            Op("cid-00004", "flag", held[0], note="two questions in one"),
        ],
        keep=held,
        want=2,
    )
    assert [a.ok for a in reply.acks] == [True, False, False, True]
    assert "'nope' is not one of: a, b" in (reply.acks[1].error or "")
    assert "no item 'no-such-item'" in (reply.acks[2].error or "")
    with Session(ws.engine) as session:
        assert len(session.exec(select(Flag)).all()) == 2
    again = ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-00001", "flag", held[0], note="x")], keep=held, want=2
    )
    assert again.acks[0].dup
    with Session(ws.engine) as session:
        assert len(session.exec(select(Flag)).all()) == 2


def test_want_is_capped_by_prefetch(ws):
    assert len(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=50).items) == 4


def test_multi_label_answers_are_sets(tmp_path, db_url):
    ws = Workspace.create(
        tmp_path / "ml", labels=["x", "y", "z"], db_url=db_url, task="multi-label"
    )
    path = tmp_path / "pool.csv"
    path.write_text("id,text\n" + "".join(f"m{k},text {k}\n" for k in range(6)))
    ws.import_file(path, id_field="id")
    ws.add_user("ann")
    write_config(ws.root, replace(ws.config, prefetch=2, gold_rate=0.0))
    ws.close()
    ws = Workspace.open(tmp_path / "ml", db_url=db_url)
    held = _ids(ws.label_batch("ann", tab="tab-one-1", ops=[], keep=[], want=3))
    reply = ws.label_batch(
        "ann",
        tab="tab-one-1",
        ops=[
            Op("cid-00001", "answer", held[0], ["z", "x"]),
            Op("cid-00002", "answer", held[1], []),
        ],
        keep=held[2:],
        want=3,
    )
    assert all(a.ok for a in reply.acks)
    back = ws.label_batch(
        "ann", tab="tab-one-1", ops=[Op("cid-00003", "undo", of="cid-00001")], keep=[], want=3
    )
    assert back.undone["cid-00003"].item.previous_label == '["x","z"]'
    ws.close()
