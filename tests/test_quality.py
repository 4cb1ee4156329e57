"""Label quality, coverage and throughput against small hand-computed cases.

Runs on SQLite and PostgreSQL (``--backend``).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.config import write_config
from labeling.quality.agreement import (
    agreement,
    cohen_kappa,
    gold_accuracy,
    krippendorff_alpha,
    pair_confusion,
)
from labeling.quality.coverage import coverage
from labeling.quality.review import review_items
from labeling.quality.throughput import throughput
from labeling.store.answers import human_labels
from labeling.store.models import Annotation, Item, LabelingFunction, LFVote, WeakLabel


def _configure(ws: Workspace, **changes) -> None:
    ws.config = replace(ws.config, **changes)
    write_config(ws.root, ws.config)


def _workspace(tmp_path, db_url, *, pool: int = 4, gold: list[str] | None = None) -> Workspace:
    ws = Workspace.create(tmp_path / "q", labels=["a", "b"], db_url=db_url, name="quality")
    path = tmp_path / "pool.csv"
    path.write_text("id,text\n" + "".join(f"p{k},pool text number {k}\n" for k in range(pool)))
    ws.import_file(path, id_field="id")
    if gold:
        gpath = tmp_path / "gold.csv"
        rows = "".join(f"g{k},gold text number {k},{label}\n" for k, label in enumerate(gold))
        gpath.write_text("id,text,label\n" + rows)
        ws.import_file(gpath, id_field="id", label_field="label", split="gold")
    return ws


def _label_all(ws: Workspace, name: str, answers: dict[str, str], **kwargs) -> None:
    """Label every item served to ``name`` with ``answers[external id]``."""
    while (item := ws.next_item(name)) is not None:
        ws.annotate(item.item_id, name, answers[item.external_id], **kwargs)


@pytest.fixture
def pair(tmp_path, db_url):
    """Two annotators, overlap 2, on four items: the textbook kappa case."""
    ws = _workspace(tmp_path, db_url)
    _configure(ws, overlap=2, gold_rate=0.0)
    ws.add_user("ann")
    ws.add_user("bob")
    _label_all(ws, "ann", {"p0": "a", "p1": "a", "p2": "b", "p3": "b"})
    _label_all(ws, "bob", {"p0": "a", "p1": "b", "p2": "b", "p3": "b"})
    yield ws
    ws.close()


def test_kappa_alpha_and_pair_confusion_by_hand(pair):
    with Session(pair.engine) as session:
        found = agreement(session, pair.labels)
    # Observed agreement 3/4; chance 0.5*0.25 + 0.5*0.75 = 0.5; kappa = 0.25 / 0.5.
    assert found["pairs"] == [{"a": "ann", "b": "bob", "n": 4, "kappa": 0.5, "observed": 0.75}]
    # Coincidences: o_aa 2, o_ab = o_ba 1, o_bb 4; n_a 3, n_b 5, n 8.
    # D_o = 2/8, D_e = 2*3*5/(8*7); alpha = 1 - D_o/D_e = 8/15.
    assert found["alpha"] == pytest.approx(8 / 15, abs=1e-6)
    assert found["alpha_items"] == 4
    assert found["confusion"]["matrix"] == [[2, 1], [1, 4]]
    # Specific agreement: a 2/(2+1), b 4/(4+1).
    assert found["per_class"] == {"a": pytest.approx(2 / 3, abs=1e-6), "b": 0.8}


def test_pure_functions_edge_cases():
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["a", "a"], ["a", "a"]) == 1.0
    assert krippendorff_alpha([["a"], ["b"]], ("a", "b")) is None  # no pairs
    assert krippendorff_alpha([["a", "a"], ["a", "a"]], ("a", "b")) is None
    # Perfect agreement with both values present: alpha 1.
    assert krippendorff_alpha([["a", "a"], ["b", "b"]], ("a", "b")) == pytest.approx(1.0)
    # Three raters on one unit: 3 ordered pairs per value pair, weight 1/(m-1) = 1/2.
    assert pair_confusion([["a", "a", "b"]], ("a", "b")) == [[2, 2], [2, 0]]


class _AlwaysGold:
    """A draw that always falls under the gold rate: every claim is a gold check."""

    def random(self) -> float:
        return 0.0


def test_gold_accuracy_per_annotator_and_gold_never_trains(tmp_path, db_url, monkeypatch):
    from labeling.annotation import leases

    monkeypatch.setattr(leases, "_GOLD_DRAWS", _AlwaysGold())
    ws = _workspace(tmp_path, db_url, pool=6, gold=["a", "a", "b", "b"])
    _configure(ws, gold_rate=0.5)
    ws.add_user("ann")
    served = []
    truth = {"g0": "b", "g1": "a", "g2": "b", "g3": "b"}  # 3 of 4 right
    while (item := ws.next_item("ann")) is not None:
        served.append(item.external_id)
        ws.annotate(item.item_id, "ann", truth.get(item.external_id, "a"))
    # Gold first while any is unseen (every draw says gold here), then the pool.
    assert sorted(served[:4]) == ["g0", "g1", "g2", "g3"] and len(served) == 10
    with Session(ws.engine) as session:
        gold = gold_accuracy(session, ws.labels)
        people = human_labels(session, ws.labels)
    assert gold["n"] == 4 and gold["correct"] == 3 and gold["accuracy"] == 0.75
    ann = gold["annotators"]["ann"]
    assert ann["accuracy"] == 0.75 and sum(d["n"] for d in ann["by_day"]) == 4
    with Session(ws.engine) as session:
        gold_ids = set(session.exec(select(Item.id).where(Item.split == "gold")).all())
    assert not gold_ids & set(people)  # gold answers never reach training labels
    ws.close()


class _NeverGold:
    def random(self) -> float:
        return 1.0


def test_the_gold_left_comes_after_the_pool_whatever_the_draw(tmp_path, db_url, monkeypatch):
    """Once a person's queue is empty, the gold items they have not answered come next (every
    draw says pool here), so "done" means both; with gold_rate 0 gold never comes."""
    from labeling.annotation import leases

    monkeypatch.setattr(leases, "_GOLD_DRAWS", _NeverGold())
    ws = _workspace(tmp_path, db_url, pool=3, gold=["a", "b"])
    _configure(ws, gold_rate=0.05)
    ws.add_user("ann")
    ws.add_user("bob")
    served = []
    while (item := ws.next_item("ann")) is not None:
        served.append(item.external_id)
        ws.annotate(item.item_id, "ann", "a")
    assert [key[0] for key in served] == ["p", "p", "p", "g", "g"]
    assert ws.next_item("ann") is None  # done: no pool item and no gold check left
    _configure(ws, gold_rate=0.0, overlap=2)
    while (item := ws.next_item("bob")) is not None:
        assert item.external_id.startswith("p")
        ws.annotate(item.item_id, "bob", "a")
    ws.close()


def test_gold_is_mixed_in_at_the_configured_rate(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url, pool=300, gold=["a"] * 100)
    _configure(ws, gold_rate=0.05)
    ws.add_user("ann")
    golds = 0
    for _ in range(300):
        item = ws.next_item("ann")
        assert item is not None
        golds += item.external_id.startswith("g")
        assert "split" not in item.fields and "gold" not in item.fields  # nothing marks gold
        ws.annotate(item.item_id, "ann", "a")
    # Expected 15 of 300; a binomial(300, 0.05) falls outside 3..35 with odds below 1e-6.
    assert 3 <= golds <= 35
    _configure(ws, gold_rate=0.0)
    item = ws.next_item("ann")
    assert item is not None and item.external_id.startswith("p")
    ws.close()


def test_throughput_by_hand(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url)
    _configure(ws, gold_rate=0.0)
    ws.add_user("ann")
    for label, ms in (("a", 2000), ("b", 4000), (None, 1000), ("a", 6000)):
        item = ws.next_item("ann")
        assert item is not None
        if label is None:
            ws.skip(item.item_id, "ann", duration_ms=ms)
        else:
            ws.annotate(item.item_id, "ann", label, duration_ms=ms)
    with Session(ws.engine) as session:
        found = throughput(session)["ann"]
    assert found["answers"] == 4 and found["labels"] == 3 and found["skips"] == 1
    assert found["skip_rate"] == 0.25
    assert found["median_seconds"] == 3.0  # of 1, 2, 4, 6 s
    assert found["labels_per_hour"] == pytest.approx(3 / (13 / 3600), abs=1e-3)
    ws.close()


def test_coverage_by_hand(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url, pool=10)
    _configure(ws, gold_rate=0.0)
    ws.add_user("ann")
    _label_all(ws, "ann", {f"p{k}": "a" if k == 0 else "b" for k in range(10)})
    with Session(ws.engine) as session:
        # Keep only p0 (a) and p1 (b) labelled: delete the other answers.
        ids = dict(session.exec(select(Item.external_id, Item.id)).all())
        keep = {ids["p0"], ids["p1"]}
        for row in session.exec(select(Annotation)).all():
            if row.item_id not in keep:
                session.delete(row)
        session.flush()
        for item_id in ids.values():
            session.get(Item, item_id).n_labels = int(item_id in keep)
        lf = LabelingFunction(name="kw", kind="keyword", version="1", label="a")
        session.add(lf)
        session.flush()
        for name in ("p1", "p2", "p3", "p4"):  # one labelled, three not
            session.add(LFVote(lf_id=lf.id, item_id=ids[name], lf_version="1", label="a"))
        for name, label, confidence in (
            ("p1", "a", 0.9),  # labelled item: people win in combined
            ("p2", "a", 0.8),
            ("p3", "b", 0.7),  # exactly the threshold counts
            ("p4", "a", 0.5),  # not confident
        ):
            session.add(
                WeakLabel(item_id=ids[name], label=label, confidence=confidence, model="test")
            )
        session.commit()
    with Session(ws.engine) as session:
        found = coverage(session, ws.labels, 0.7)
    assert found["counts"] == {"human": 2, "lf": 4, "weak": 3, "weak_any": 4, "combined": 4}
    assert (found["human"], found["lf"], found["weak"], found["combined"]) == (0.2, 0.4, 0.3, 0.4)
    assert found["weak_any"] == 0.4  # p4's unconfident weak label counts only here
    # Combined per class: p0 a, p1 b (people), p2 a, p3 b (weak).
    assert found["per_class"]["a"] == {"human": 0.1, "lf": 0.4, "weak": 0.2, "combined": 0.2}
    assert found["per_class"]["b"] == {"human": 0.1, "lf": 0.0, "weak": 0.1, "combined": 0.2}
    ws.close()


def test_adjudication_overrides_the_majority_and_keeps_history(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url, pool=2)
    _configure(ws, overlap=3, gold_rate=0.0)
    for name in ("ann", "bob", "cid"):
        ws.add_user(name)
    ws.add_user("lea", role="lead")
    _label_all(ws, "ann", {"p0": "a", "p1": "a"})
    _label_all(ws, "bob", {"p0": "a", "p1": "a"})
    _label_all(ws, "cid", {"p0": "b", "p1": "a"})
    found = review_items(ws)
    assert [e["id"] for e in found["items"]["disagreement"]] == ["p0"]
    assert found["items"]["disagreement"][0]["answers"] == {"ann": "a", "bob": "a", "cid": "b"}

    from labeling.annotation.session import UserSession

    lead = UserSession(ws, "lea")
    with Session(ws.engine) as session:
        p0 = session.exec(select(Item.id).where(Item.external_id == "p0")).one()
    lead.adjudicate(p0, "a")
    lead.adjudicate(p0, "b")  # changing one's mind supersedes the first decision
    out = tmp_path / "out.jsonl"
    ws.export(out)
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["p0"]["label"] == "b" and rows["p1"]["label"] == "a"
    assert rows["p0"]["n_annotations"] == 3
    with Session(ws.engine) as session:
        assert human_labels(session, ws.labels)[p0] == "b"
        history = session.exec(
            select(Annotation).where(Annotation.item_id == p0).order_by(col(Annotation.id))
        ).all()
    assert [(h.origin, h.label, h.superseded_by is None) for h in history] == [
        ("human", "a", True),
        ("human", "a", True),
        ("human", "b", True),
        ("adjudication", "a", False),
        ("adjudication", "b", True),
    ]
    assert review_items(ws)["items"]["disagreement"] == []
    assert ws.status()["adjudications"] == 1
    assert len(lead.item_history(p0)) == 5
    from labeling.errors import Forbidden

    with pytest.raises(Forbidden):
        UserSession(ws, "ann").adjudicate(p0, "a")
    ws.close()


def test_review_lists_weak_label_conflicts(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url, pool=3)
    _configure(ws, gold_rate=0.0)
    ws.add_user("ann")
    _label_all(ws, "ann", {"p0": "a", "p1": "a", "p2": "b"})
    with Session(ws.engine) as session:
        ids = dict(session.exec(select(Item.external_id, Item.id)).all())
        session.add(WeakLabel(item_id=ids["p0"], label="b", confidence=0.95, model="t"))
        session.add(WeakLabel(item_id=ids["p1"], label="b", confidence=0.2, model="t"))
        session.add(WeakLabel(item_id=ids["p2"], label="b", confidence=0.95, model="t"))
        session.commit()
    weak = review_items(ws)["items"]["weak"]
    assert [(e["id"], e["label"], e["suggested"]) for e in weak] == [("p0", "a", "b")]
    ws.close()
