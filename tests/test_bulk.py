"""Audited bulk labelling: batches, what they skip and replace, undo, the audit, and the store
left as it was (both backends)."""

from __future__ import annotations

import json
import threading

import pytest
from sqlmodel import col, select

from labeling import Workspace
from labeling.annotation import bulk_writes
from labeling.annotation.bulk import precision_interval
from labeling.annotation.progress import my_label_counts
from labeling.annotation.session import UserSession
from labeling.data.search import SearchQuery
from labeling.errors import BadInput, Forbidden, UnknownAnnotator, UnknownItem, UnknownLabel
from labeling.quality.agreement import agreement
from labeling.quality.throughput import throughput
from labeling.rounds.pool import bulk_only_count
from labeling.store.answers import final_labels
from labeling.store.models import (
    BULK,
    DECISIONS,
    Annotation,
    Annotator,
    BulkBatch,
    Item,
    Round,
    Score,
)
from tests.bad_inputs.store import LABEL_FEED, assert_unchanged, fingerprint

N_ITEMS = 30
NOT_BATCHES = ("bulkbatch", *LABEL_FEED)


def import_pool(ws: Workspace, tmp_path, n: int = N_ITEMS) -> None:
    pool = tmp_path / "pool.csv"
    # Every third item asks for a refund; the rest are about something else.
    pool.write_text(
        "id,text\n"
        + "".join(
            f"i{k},{'please refund my order' if k % 3 == 0 else 'great product'} {k}\n"
            for k in range(n)
        )
    )
    ws.import_file(pool, id_field="id")
    gold = tmp_path / "gold.csv"
    gold.write_text("id,text,label\ng0,refund now please,a\ng1,fine thing,b\n")
    ws.import_file(gold, id_field="id", label_field="label", split="gold")


@pytest.fixture
def ws(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "bulk", labels=["a", "b", "c"], db_url=db_url)
    import_pool(ws, tmp_path)
    ws.add_user("eng", role="engineer")
    for name in ("ann", "bob"):
        ws.add_user(name)
    # No gold checks in between: the tests answer the queue's pool items.
    ws.update_settings(overlap=1, lease_seconds=ws.config.lease_seconds, gold_rate=0.0)
    yield ws
    ws.close()


def _ids(ws: Workspace, *externals: str) -> list[int]:
    with ws._read() as session:
        found = dict(
            session.exec(
                select(Item.external_id, Item.id).where(col(Item.external_id).in_(externals))
            ).all()
        )
    return [found[e] for e in externals]


def answer_next(ws: Workspace, who: str, label: str | None) -> str:
    """``who`` answers the next item the queue gives them; returns its external id."""
    item = ws.next_item(who)
    assert item is not None
    if label is None:
        ws.skip(item.item_id, who)
    else:
        ws.annotate(item.item_id, who, label)
    return item.external_id


def item_labels(ws: Workspace) -> dict[str, tuple[str | None, int]]:
    """external id -> (Item.label, Item.n_labels)."""
    with ws._read() as session:
        rows = session.exec(select(Item.external_id, Item.label, Item.n_labels)).all()
    return {external: (label, n) for external, label, n in rows}


REFUND = SearchQuery(text="refund")


# --------------------------------------------------------------------------- what a batch does


def test_bulk_label_then_undo_leaves_the_store_as_it_was(ws):
    answer_next(ws, "ann", "b")
    answer_next(ws, "bob", None)
    earlier = ws.bulk_label(SearchQuery(text="great"), label="c", by="eng", override=True)
    ws.adjudicate(_ids(ws, "i1")[0], "a", lead="eng")  # a decision on a bulk-labelled item
    before = fingerprint(ws, ignore=NOT_BATCHES)
    done = ws.bulk_label(SearchQuery(), label="b", by="eng", override=True)
    assert done["replaced_bulk"] == earlier["count"] - 1
    assert ws.undo_bulk(done["batch"], by="eng")["removed"] == done["count"]
    assert_unchanged(before, ws, ignore=NOT_BATCHES)


def test_labelled_items_are_skipped_and_gold_is_never_bulk_labelled(ws):
    labelled = answer_next(ws, "ann", "b")
    skipped = answer_next(ws, "bob", None)
    done = ws.bulk_label(SearchQuery(), label="a", by="eng", override=True)
    # The search finds pool and gold; gold is left out, and so is the item a person labelled.
    assert done["skipped_not_pool"] == 2
    assert done["skipped_labelled"] == 1
    assert done["count"] == N_ITEMS - 1
    items = item_labels(ws)
    assert items[labelled] == ("b", 1)
    assert items[skipped] == ("a", 1)  # a skip is no label: the item gets the bulk label
    assert items["g0"][0] is None and items["g1"][0] is None
    assert all(items[f"i{k}"] == ("a", 1) for k in range(N_ITEMS) if f"i{k}" != labelled)


def test_a_dry_run_counts_and_writes_nothing(ws):
    answer_next(ws, "ann", "b")
    before = fingerprint(ws)
    counted = ws.bulk_label(REFUND, label="a", by="eng", dry_run=True)
    assert "batch" not in counted
    assert counted["count"] + counted["skipped_labelled"] == N_ITEMS // 3
    assert counted["skipped_not_pool"] == 1  # the gold item g0 mentions a refund
    assert_unchanged(before, ws)


def test_an_earlier_bulk_label_is_replaced_and_undo_brings_it_back(ws):
    first = ws.bulk_label(item_ids=["i1", "i2", "i3"], label="a", by="eng", override=True)
    ws.add_user("eve", role="lead")
    second = ws.bulk_label(item_ids=["i2", "i3", "i4"], label="b", by="eve", override=True)
    assert (second["count"], second["replaced_bulk"]) == (3, 2)
    items = item_labels(ws)
    assert [items[f"i{k}"] for k in (1, 2, 3, 4)] == [("a", 1), ("b", 1), ("b", 1), ("b", 1)]
    ws.undo_bulk(second["batch"], by="eng")
    items = item_labels(ws)
    assert [items[f"i{k}"] for k in (1, 2, 3, 4)] == [("a", 1), ("a", 1), ("a", 1), (None, 0)]
    ws.undo_bulk(first["batch"], by="eng")
    assert all(items == (None, 0) for items in list(item_labels(ws).values()))


def test_undoing_the_older_of_two_batches_keeps_the_newer(ws):
    first = ws.bulk_label(item_ids=["i1", "i2"], label="a", by="eng", override=True)
    second = ws.bulk_label(item_ids=["i2"], label="b", by="eng", override=True)
    ws.undo_bulk(first["batch"], by="eng")
    items = item_labels(ws)
    assert (items["i1"], items["i2"]) == ((None, 0), ("b", 1))
    ws.undo_bulk(second["batch"], by="eng")
    assert item_labels(ws)["i2"] == (None, 0)


def test_a_person_answer_beats_a_bulk_label_on_the_same_item(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "o2", labels=["a", "b"], db_url=db_url)
    import_pool(ws, tmp_path, n=3)
    ws.add_user("eng", role="engineer")
    ws.add_user("ann")
    ws.update_settings(overlap=2, lease_seconds=600, gold_rate=0.0)
    ws.bulk_label(SearchQuery(split="pool"), label="a", by="eng", override=True)
    external = answer_next(ws, "ann", "b")
    assert item_labels(ws)[external] == ("b", 2)
    ws.close()


def _scored(ws: Workspace) -> int:
    """A promoted round with an open score for every pool item."""
    with ws._write() as session:
        round_ = Round(status="succeeded", promoted=True)
        session.add(round_)
        session.flush()
        for n, item_id in enumerate(session.exec(select(Item.id).where(Item.split == "pool"))):
            session.add(Score(round_id=round_.id, item_id=item_id, score=float(n)))
        return int(round_.id or 0)


def _closed(ws: Workspace) -> dict[str, bool]:
    with ws._read() as session:
        rows = session.exec(
            select(Item.external_id, Score.closed).join(Score, col(Score.item_id) == col(Item.id))
        ).all()
    return dict(rows)


def test_a_bulk_label_counts_one_label_and_closes_the_item_at_overlap(ws):
    _scored(ws)
    ws.update_settings(overlap=2, lease_seconds=600, gold_rate=0.0)
    ws.bulk_label(item_ids=["i0", "i1"], label="a", by="eng", override=True)
    assert (item_labels(ws)["i0"], _closed(ws)["i0"]) == (("a", 1), False)  # one more label needed
    ws.update_settings(overlap=1, lease_seconds=600, gold_rate=0.0)
    done = ws.bulk_label(item_ids=["i2", "i3"], label="a", by="eng", override=True)
    assert _closed(ws)["i2"] and _closed(ws)["i3"]
    # The queue passes them over; undo opens them again.
    served = {answer_next(ws, "ann", "b") for _ in range(N_ITEMS - 4)}
    assert not served & {"i0", "i1", "i2", "i3"}
    ws.undo_bulk(done["batch"], by="eng")
    assert not _closed(ws)["i2"] and item_labels(ws)["i2"] == (None, 0)
    assert ws.next_item("ann").external_id in {"i2", "i3"}


def test_bulk_labels_never_count_in_agreement_accuracy_or_my_stats(ws):
    ws.update_settings(overlap=2, lease_seconds=600, gold_rate=0.0)
    ws.bulk_label(SearchQuery(), label="a", by="eng", override=True)
    labelled = answer_next(ws, "ann", "b")
    with ws._read() as session:
        eng = session.exec(select(Annotator).where(Annotator.name == "eng")).one()
        assert agreement(session, ws.labels)["items"] == 0
        assert "eng" not in throughput(session)
        assert my_label_counts(session, eng) == (0, 0)
    assert ws.annotator_stats("eng")["labels"] == 0
    assert {p.name: p.labels for p in ws.people()}["eng"] == 0
    status = ws.status()  # the person's answer; bulk labels apart
    assert (status["annotations"], status["bulk_labels"]) == (1, N_ITEMS)
    assert bulk_only_count(ws) == N_ITEMS - 1  # a round's n_bulk: labelled by batches alone
    # They do train rounds: the item's label is the person's; every other item's is the bulk one.
    with ws._read() as session:
        labels = final_labels(session, ws.labels, splits=("pool",))
    assert labels[_ids(ws, labelled)[0]] == "b"
    assert sorted(set(labels.values())) == ["a", "b"] and len(labels) == N_ITEMS


# --------------------------------------------------------------------------- audit


def test_precision_interval_is_wilson_95():
    low, high = precision_interval(18, 20)
    assert (round(low, 3), round(high, 3)) == (0.699, 0.972)
    low, high = precision_interval(20, 20)
    assert (round(low, 3), high) == (0.839, 1.0)
    assert precision_interval(0, 5)[0] == 0.0
    with pytest.raises(BadInput, match="3 correct of 2 checked"):
        precision_interval(3, 2)


def test_the_interval_narrows_as_the_sample_covers_the_set():
    # Drawn without replacement: 20 of 20 checked is the set's precision itself; 20 of 40
    # counts for more than 20 draws from an endless set, and 20 of a huge set for about that.
    assert precision_interval(17, 20, 20) == (0.85, 0.85)
    endless = precision_interval(17, 20)
    half = precision_interval(17, 20, 40)
    huge = precision_interval(17, 20, 10**9)
    assert endless[0] < half[0] < 0.85 < half[1] < endless[1]
    assert huge == pytest.approx(endless, abs=1e-6)


def test_a_set_that_changed_since_its_audit_is_refused(ws, tmp_path):
    counted = ws.bulk_label(REFUND, label="a", by="eng", dry_run=True)["count"]
    more = tmp_path / "more.csv"
    more.write_text("id,text\nm1,refund asked again\nm2,one more refund\n")
    ws.import_file(more, id_field="id")
    before = fingerprint(ws)
    with pytest.raises(BadInput, match=f"{counted} items to label then, {counted + 2} now"):
        ws.bulk_label(REFUND, label="a", by="eng", override=True, expected=counted)
    assert_unchanged(before, ws)
    done = ws.bulk_label(REFUND, label="a", by="eng", override=True, expected=counted + 2)
    assert done["count"] == counted + 2


def test_a_small_set_checked_whole_is_not_refused(ws):
    # REFUND matches 10 pool items: 9 of them checked right and 1 wrong is a precision of 0.9,
    # which Wilson's interval for an endless set (lower bound 0.60) would have refused.
    done = ws.bulk_label(REFUND, label="a", by="eng", audit={"checked": 10, "correct": 9})
    assert done["count"] == 10
    (batch,) = ws.bulk_batches()
    assert batch.audit == "9 of 10 correct (every item; precision 0.90)" and not batch.override


def test_a_weak_audit_is_refused_unless_overridden(ws):
    before = fingerprint(ws)
    with pytest.raises(BadInput) as refused:
        ws.bulk_label(REFUND, label="a", by="eng", audit={"checked": 8, "correct": 6})
    message = str(refused.value)
    # 8 of the set's 10 items: the finite population correction narrows Wilson's interval.
    for fact in ("6 of 8", "0.59-0.86", "threshold 0.80", "override", "larger sample"):
        assert fact in message
    with pytest.raises(BadInput, match="needs an audit"):
        ws.bulk_label(REFUND, label="a", by="eng")
    assert_unchanged(before, ws)
    done = ws.bulk_label(
        REFUND, label="a", by="eng", audit={"checked": 8, "correct": 6}, override=True
    )
    good = ws.bulk_label(item_ids=["i1"], label="b", by="eng", audit={"checked": 1, "correct": 1})
    batches = {b.batch: b for b in ws.bulk_batches()}
    assert batches[done["batch"]].override
    assert "below the threshold: overridden" in batches[done["batch"]].audit
    assert batches[good["batch"]].audit == "1 of 1 correct (every item; precision 1.00)"
    with ws._read() as session:
        record = session.get(BulkBatch, done["batch"])
        assert json.loads(record.audit)["precision_low"] == pytest.approx(0.589, abs=1e-3)
        assert json.loads(record.selection) == {"search": {"text": "refund"}}


def test_the_audit_sample_is_drawn_from_what_would_be_labelled(ws):
    labelled = answer_next(ws, "ann", "b")
    sample = ws.bulk_audit_sample(REFUND, n=50, seed=1)
    ids = {item.id for item in sample}
    assert labelled not in ids and "g0" not in ids
    assert all("refund" in item.text for item in sample)
    assert len(ids) == N_ITEMS // 3 - (labelled in {f"i{k}" for k in range(0, N_ITEMS, 3)})
    assert [i.id for i in ws.bulk_audit_sample(REFUND, n=3, seed=7)] == [
        i.id for i in ws.bulk_audit_sample(REFUND, n=3, seed=7)
    ]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("options", "error", "fact"),
    [
        ({"label": "zzz"}, UnknownLabel, "'zzz'"),
        ({"by": "nobody"}, UnknownAnnotator, "nobody"),
        ({"query": SearchQuery(text="nothingmatches")}, BadInput, "no items"),
        ({"query": None, "item_ids": ["i1", "nope"]}, UnknownItem, "'nope'"),
        ({"item_ids": ["i1"]}, BadInput, "not both"),
        ({"min_precision": 1.5}, BadInput, "min_precision"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(ws, options, error, fact):
    answer_next(ws, "ann", "a")
    before = fingerprint(ws)
    call = {"query": REFUND, "label": "a", "by": "eng", "override": True} | options
    with pytest.raises(error) as refused:
        ws.bulk_label(**call)
    assert fact in str(refused.value)
    assert_unchanged(before, ws)


def test_a_batch_that_fails_half_way_is_removed_again(ws, monkeypatch):
    ws.bulk_label(item_ids=["i1", "i2"], label="c", by="eng", override=True)
    before = fingerprint(ws, ignore=LABEL_FEED)
    monkeypatch.setattr(bulk_writes, "SQLITE_BULK_CHUNK", 4)
    monkeypatch.setattr(bulk_writes, "SQLITE_CHUNK_BOUNDS", (4, 4))
    monkeypatch.setattr(bulk_writes, "POSTGRES_BULK_CHUNK", 4)
    real = bulk_writes._apply_chunk
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk_writes, "_apply_chunk", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        ws.bulk_label(SearchQuery(), label="a", by="eng", override=True)
    assert_unchanged(before, ws, ignore=LABEL_FEED)


def test_an_undo_while_the_batch_is_written_stops_it_and_removes_it(ws, monkeypatch):
    """The undo wins: the writer stops at its next chunk and says who undid the batch; what
    it wrote is gone and the record says undone (it once read "applied" with half the labels
    removed)."""
    ws.add_user("lea", role="lead")
    before = fingerprint(ws, ignore=NOT_BATCHES)
    monkeypatch.setattr(bulk_writes, "SQLITE_BULK_CHUNK", 4)
    monkeypatch.setattr(bulk_writes, "SQLITE_CHUNK_BOUNDS", (4, 4))
    monkeypatch.setattr(bulk_writes, "POSTGRES_BULK_CHUNK", 4)
    real = bulk_writes.ChunkPacer.chunks
    undone = []

    def chunks(self, ids):
        for number, part in enumerate(real(self, ids)):
            if number == 2:  # two chunks written: another person undoes the batch
                [batch] = ws.bulk_batches()
                assert batch.status == "applying"
                undone.append(ws.undo_bulk(batch.batch, by="lea"))
            yield part

    monkeypatch.setattr(bulk_writes.ChunkPacer, "chunks", chunks)
    with pytest.raises(BadInput, match="was undone by lea while it was being applied"):
        ws.bulk_label(SearchQuery(), label="a", by="eng", override=True)
    assert undone[0]["removed"] == 8
    [batch] = ws.bulk_batches()
    assert (batch.status, batch.undone_by) == ("undone", "lea")
    assert_unchanged(before, ws, ignore=NOT_BATCHES)
    assert ws.doctor()["ok"]


def test_two_undos_of_one_batch_at_once_remove_it_once(ws):
    ws.add_user("lea", role="lead")
    done = ws.bulk_label(SearchQuery(), label="a", by="eng", override=True)
    start = threading.Barrier(2)
    removed: list[int] = []
    errors: list[BaseException] = []

    def undo(person: str) -> None:
        start.wait()
        try:
            removed.append(ws.undo_bulk(done["batch"], by=person)["removed"])
        except BadInput as exc:  # the other finished first: "undone already"
            errors.append(exc)

    threads = [threading.Thread(target=undo, args=(p,)) for p in ("eng", "lea")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(removed) == N_ITEMS and len(removed) + len(errors) == 2
    assert all(n == 0 for _label, n in item_labels(ws).values())  # counted down once, not twice
    assert ws.doctor()["ok"]


def _pooled_settings(ws: Workspace) -> set[tuple[int, int]]:
    """(cache_size, wal_autocheckpoint) of every idle pooled connection (and a new one)."""
    held = [ws.engine.connect() for _ in range(ws.engine.pool.checkedin() + 1)]  # type: ignore[attr-defined]
    try:
        return {
            tuple(
                c.connection.driver_connection.execute(f"PRAGMA {p}").fetchone()[0]
                for p in ("cache_size", "wal_autocheckpoint")
            )
            for c in held
        }
    finally:
        for connection in held:
            connection.close()


def test_a_batch_gives_its_connection_back_as_it_found_it(ws):
    """On SQLite a batch's connection gets a large page cache and no checkpoints in its
    commits; no pooled connection keeps either afterwards."""
    if ws.engine.dialect.name != "sqlite":
        pytest.skip("SQLite connection settings")
    before = _pooled_settings(ws)
    done = ws.bulk_label(SearchQuery(), label="a", by="eng", override=True)
    ws.undo_bulk(done["batch"], by="eng")
    assert _pooled_settings(ws) == before
    assert all(checkpoint > 0 for _cache, checkpoint in before)


def test_undo_of_an_unknown_or_undone_batch_is_refused(ws):
    with pytest.raises(BadInput, match="no bulk batch 'bulk-x'"):
        ws.undo_bulk("bulk-x", by="eng")
    done = ws.bulk_label(item_ids=["i1"], label="a", by="eng", override=True)
    with pytest.raises(Forbidden, match="'ann' is an annotator"):
        ws.undo_bulk(done["batch"], by="ann")
    ws.add_user("eve", role="lead")
    ws.undo_bulk(done["batch"], by="eve")
    with pytest.raises(BadInput, match="undone already"):
        ws.undo_bulk(done["batch"], by="eng")
    [listed] = ws.bulk_batches()
    assert (listed.status, listed.undone_by, listed.count, listed.by) == ("undone", "eve", 1, "eng")
    with pytest.raises(Forbidden, match="bulk labelling needs the engineer role"):
        ws.bulk_label(item_ids=["i2"], label="a", by="ann", override=True)


def test_only_engineers_and_up_bulk_label(ws):
    annotator, engineer = UserSession(ws, "ann"), UserSession(ws, "eng")
    with pytest.raises(Forbidden, match="bulk labelling needs the engineer role"):
        annotator.bulk_label(REFUND, label="a", override=True)
    with pytest.raises(Forbidden):
        annotator.bulk_audit_sample(REFUND)
    done = engineer.bulk_label(REFUND, label="a", override=True)
    assert engineer.bulk_batches()[0].by == "eng"
    with pytest.raises(Forbidden):
        annotator.undo_bulk(done["batch"])
    engineer.undo_bulk(done["batch"])


def test_bulk_answers_are_annotations_of_origin_bulk_with_the_batch(ws):
    done = ws.bulk_label(item_ids=["i1", "i2"], label="a", by="eng", override=True)
    with ws._read() as session:
        rows = session.exec(select(Annotation).where(Annotation.origin == BULK)).all()
    assert {(r.batch, r.label, r.skipped) for r in rows} == {(done["batch"], "a", False)}
    assert DECISIONS and len(rows) == 2


def test_export_says_which_labels_came_from_a_bulk_batch(ws, tmp_path):
    ws.update_settings(overlap=2, lease_seconds=600, gold_rate=0.0)
    done = ws.bulk_label(item_ids=["i1", "i2", "i3"], label="c", by="eng", override=True)
    item = ws.next_item("ann")
    while item.external_id not in {"i1", "i2", "i3"}:  # a person labels one of them
        ws.skip(item.item_id, "ann")
        item = ws.next_item("ann")
    ws.annotate(item.item_id, "ann", "a")
    out = tmp_path / "bulk.jsonl"
    report = ws.export(out, origins=["bulk"])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    others = {"i1", "i2", "i3"} - {item.external_id}
    assert {(r["id"], r["label"], r["decided_by"]) for r in rows} == {
        (i, "c", "bulk") for i in others
    }
    assert report.rows == 2
    ws.export(out, origins=["human"])
    [row] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert (row["id"], row["label"], row["decided_by"]) == (item.external_id, "a", "majority")
    ws.export(out, annotations=True, origins=["bulk"])
    log = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {(r["origin"], r["batch"], r["annotator"]) for r in log} == {
        ("bulk", done["batch"], "eng")
    }
