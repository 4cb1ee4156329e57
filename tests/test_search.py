"""Search (issue 21): totals equal a plain Python count, on both backends; filters; the index and
``Item.label`` stay in step through every path that changes them.

The oracle is the test's own tokeniser and the query's meaning written out in Python: words
(whole, case-insensitive), adjacent phrases, OR, exclusion and prefixes, over a generated pool.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.config import write_config
from labeling.data import search
from labeling.data.search import matching_ids, query_from_options
from labeling.errors import BadInput
from labeling.rounds import predictions
from labeling.rounds.artifacts import round_dir
from labeling.store.answers import final_labels
from labeling.store.models import Item, Round

LABELS = ["billing", "technical", "other"]
VOCAB = [
    "refund", "Order", "password", "app", "crash", "late", "the", "a", "invoice", "e-mail",
    "covid-19", "mail",
]  # fmt: skip
PUNCT = ["", "", "", ",", ".", "!", "?"]
_EXAMPLES = itertools.count()


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(VOCAB) + rng.choice(PUNCT) for _ in range(rng.randint(2, 9))]
        if rng.random() < 0.3:
            words = [w.upper() if rng.random() < 0.5 else w for w in words]
        out.append(" ".join(words))
    return out


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in re.findall(r"[^\W_]+", text)]


def _has(tokens: list[str], phrase: list[str], prefix: bool = False) -> bool:
    n = len(phrase)
    for i in range(len(tokens) - n + 1):
        head, last = tokens[i : i + n - 1], tokens[i + n - 1]
        if head == phrase[:-1] and (last.startswith(phrase[-1]) if prefix else last == phrase[-1]):
            return True
    return False


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    lines = ["id,text,label"] + [f'{r["id"]},"{r["text"]}",{r.get("label", "")}' for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def pool(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, db_url=db_url)
    texts = _texts(240, seed=7)
    rng = random.Random(3)
    rows = [
        {"id": f"t{i}", "text": text, "label": rng.choice(LABELS) if rng.random() < 0.2 else ""}
        for i, text in enumerate(texts)
    ]
    ws.import_file(_write(tmp_path / "pool.csv", rows), id_field="id", label_field="label")
    with Session(ws.engine) as session:  # the import passes over repeated texts
        stored = dict(session.exec(select(Item.external_id, Item.text)).all())
    assert len(stored) > 200
    yield ws, stored
    ws.close()


# Each case: the query, and its meaning over a text's tokens.
CASES = [
    ("refund", lambda t: "refund" in t),
    ("REFUND", lambda t: "refund" in t),
    ("refund order", lambda t: "refund" in t and "order" in t),
    ('"refund order"', lambda t: _has(t, ["refund", "order"])),
    ("refund OR crash", lambda t: "refund" in t or "crash" in t),
    ("late refund OR crash", lambda t: "late" in t and ("refund" in t or "crash" in t)),
    ("-refund", lambda t: "refund" not in t),
    ("app -crash -late", lambda t: "app" in t and "crash" not in t and "late" not in t),
    ('app -"the app"', lambda t: "app" in t and not _has(t, ["the", "app"])),
    ("e-mail", lambda t: _has(t, ["e", "mail"])),
    # PostgreSQL keeps "e-mail" whole beside its parts, and reads "covid-19" as covid, -19.
    ('"the e-mail"', lambda t: _has(t, ["the", "e", "mail"])),
    ('"e-mail app"', lambda t: _has(t, ["e", "mail", "app"])),
    ("covid-19", lambda t: _has(t, ["covid", "19"])),
    ('"the covid-19"', lambda t: _has(t, ["the", "covid", "19"])),
    ("mail -e-mail", lambda t: "mail" in t and not _has(t, ["e", "mail"])),
    ("inv*", lambda t: any(w.startswith("inv") for w in t)),
    ("pass", lambda t: "pass" in t),  # whole words: "password" does not count
    ("", lambda t: True),
]


def test_totals_equal_a_python_count_on_both_backends(pool):
    ws, texts = pool
    for query, meaning in CASES:
        expected = sorted(i for i, text in texts.items() if meaning(_tokens(text)))
        found = ws.search(query, limit=1000, sort="id")
        assert found["total"] == len(expected), query
        assert sorted(item["id"] for item in found["items"]) == expected, query
        assert sum(found["counts"].values()) == found["total"]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    groups=st.lists(
        st.lists(
            st.sampled_from(["refund", "order", "app", "crash", "late", "zzz"]),
            min_size=1,
            max_size=2,
        ),
        min_size=0,
        max_size=2,
    ),
    excluded=st.lists(st.sampled_from(["the", "a", "invoice", "crash"]), max_size=2),
)
def test_random_queries_match_the_python_meaning(pool, groups, excluded):
    ws, texts = pool
    query = " ".join(" OR ".join(group) for group in groups)
    query += "".join(f" -{word}" for word in excluded)

    def meaning(tokens: list[str]) -> bool:
        return all(any(w in tokens for w in group) for group in groups) and not any(
            w in tokens for w in excluded
        )

    expected = sum(meaning(_tokens(text)) for text in texts.values())
    assert ws.search(query, limit=1)["total"] == expected, query


def test_paging_is_exact_and_relevance_ranks_more_matches_first(pool):
    ws, _texts_by_id = pool
    whole = ws.search("refund", limit=1000, sort="id")
    pages = [ws.search("refund", limit=7, offset=o, sort="id")["items"] for o in range(0, 70, 7)]
    assert [i["id"] for page in pages for i in page] == [i["id"] for i in whole["items"]][:70]
    ranked = ws.search("refund", limit=1000)["items"]
    assert sorted(i["id"] for i in ranked) == sorted(i["id"] for i in whole["items"])


def test_filters_combine_with_the_query(pool, tmp_path):
    ws, texts = pool
    with Session(ws.engine) as session:
        labelled = dict(session.exec(select(Item.external_id, Item.label)).all())
    for label in LABELS:
        expected = {
            i for i, given in labelled.items() if given == label and "refund" in _tokens(texts[i])
        }
        found = ws.search("refund", label=label, limit=1000)
        assert {i["id"] for i in found["items"]} == expected
        assert found["counts"] == ({label: len(expected)} if expected else {})
    none = ws.search("", unlabelled=True, limit=1000)
    assert none["total"] == sum(v is None for v in labelled.values())
    assert ws.search("", origin="import")["total"] == sum(v is not None for v in labelled.values())
    assert ws.search("", split="gold")["total"] == 0
    with pytest.raises(BadInput, match="--label"):
        ws.search("", label="nope")
    with pytest.raises(BadInput, match="--split"):
        ws.search("", split="archive")
    with pytest.raises(BadInput, match="OR"):
        ws.search("refund OR")
    with pytest.raises(BadInput, match="--annotator"):
        ws.search("", annotator="nobody")


def test_people_answers_keep_the_label_column_and_filters_right(pool):
    ws, _ = pool
    ws.add_user("ann")
    ws.add_user("bob")
    ws.add_user("lee", role="lead")
    ws.update_settings(overlap=2, lease_seconds=ws.config.lease_seconds)
    served = []
    for who, label in [("ann", "billing"), ("bob", "technical"), ("ann", "other")]:
        item = ws.next_item(who)
        ws.annotate(item.item_id, who, label)
        served.append(item.item_id)
    assert ws.search("", annotator="ann")["total"] == 2
    disagree = ws.search("", disagreement="people")
    with Session(ws.engine) as session:
        assert final_labels(session, tuple(LABELS)) == {
            i: label for i, label in session.exec(select(Item.id, Item.label)).all() if label
        }
    if disagree["total"]:
        item_id = next(i for i in served if i)
        ws.adjudicate(item_id, "other", lead="lee")


def test_the_index_follows_import_remove_and_restore(pool, tmp_path):
    ws, _ = pool
    before = ws.search("zebra")["total"]
    assert before == 0
    _write(
        tmp_path / "more.csv",
        [{"id": "z1", "text": "a zebra crossing"}, {"id": "z2", "text": "zebra"}],
    )
    ws.import_file(tmp_path / "more.csv", id_field="id")
    assert {i["id"] for i in ws.search("zebra")["items"]} == {"z1", "z2"}
    ws.remove_items(["z1"], by="test")
    assert [i["id"] for i in ws.search("zebra")["items"]] == ["z2"]
    assert [i["id"] for i in ws.search("zebra", split="removed")["items"]] == ["z1"]
    ws.restore_items(["z1"])
    assert ws.search("zebra")["total"] == 2


def test_the_cli_prints_the_contract(pool):
    ws, texts = pool
    runner = CliRunner()
    result = runner.invoke(app, ["search", "refund", "-w", str(ws.root), "--json", "--limit", "3"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["total"] == sum("refund" in _tokens(t) for t in texts.values())
    assert len(found["items"]) == 3
    assert set(found["items"][0]) >= {"id", "text", "label", "predicted", "confidence"}
    wrong = runner.invoke(app, ["search", "x", "-w", str(ws.root), "--label", "nope"])
    assert wrong.exit_code != 0 and "--label" in wrong.output


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["answer", "skip", "undo", "adjudicate", "import", "remove"]),
            st.integers(0, 2),
            st.sampled_from(LABELS),
        ),
        min_size=4,
        max_size=18,
    )
)
def test_the_label_column_equals_a_recomputation_after_any_sequence(
    tmp_path_factory, backend, request, steps
):
    """Item.label is kept in step incrementally by every answer path: after each step of a
    random sequence it equals store.answers.final_labels computed from scratch."""
    root = tmp_path_factory.mktemp("labels")
    url = None
    if backend != "sqlite":  # a fresh database per example
        url = request.getfixturevalue("postgres_server").create_database(f"labels{next(_EXAMPLES)}")
    ws = Workspace.create(root / "ws", labels=LABELS, db_url=url)
    try:
        _run_steps(ws, root, steps)
    finally:
        ws.close()


def _check_labels(ws: Workspace) -> None:
    with Session(ws.engine) as session:
        stored = {i: label for i, label in session.exec(select(Item.id, Item.label)).all() if label}
        assert stored == final_labels(session, tuple(LABELS))


def _run_steps(ws: Workspace, root: Path, steps: list) -> None:
    people = ["p0", "p1", "p2"]
    for name in people:
        ws.add_user(name)
    ws.add_user("lead", role="lead")
    ws.update_settings(overlap=2, lease_seconds=ws.config.lease_seconds)
    rows = [
        {"id": f"s{i}", "text": f"item {i} words", "label": LABELS[i % 3] if i % 4 == 0 else ""}
        for i in range(12)
    ]
    ws.import_file(_write(root / "start.csv", rows), id_field="id", label_field="label")
    imported = 12
    with Session(ws.engine) as session:
        ids = list(session.exec(select(Item.id)).all())
    for op, who, label in steps:
        person = people[who]
        if op in ("answer", "skip"):
            item = ws.next_item(person)
            if item is not None:
                if op == "answer":
                    ws.annotate(item.item_id, person, label)
                else:
                    ws.skip(item.item_id, person)
        elif op == "undo":
            try:
                item = ws.undo(person)
            except BadInput:
                continue
            ws.annotate(item.item_id, person, label)
        elif op == "adjudicate":
            try:
                ws.adjudicate(ids[who * 3 % len(ids)], label, lead="lead")
            except BadInput:
                continue
        elif op == "import":
            extra = [{"id": f"n{imported}", "text": f"new {imported}", "label": label}]
            ws.import_file(
                _write(root / f"n{imported}.csv", extra), id_field="id", label_field="label"
            )
            imported += 1
        elif op == "remove":
            ws.remove_items([f"s{who}"], by="test")
        _check_labels(ws)


def test_prediction_filters_and_sorts_use_the_promoted_round(pool):
    """A real round (tfidf, so no embedding model is loaded): the prediction filters and the
    confidence sorts agree with the predictions each item shows."""
    ws, _ = pool
    ws.config = dataclasses.replace(ws.config, featurizer="tfidf")
    write_config(ws.root, ws.config)
    ws.retrain()
    every = ws.search("", limit=1000, sort="id")["items"]
    predicted = [i for i in every if i["predicted"] is not None]
    assert len(predicted) == len(every)
    for label in LABELS:
        expected = {i["id"] for i in predicted if i["predicted"] == label}
        found = ws.search("", predicted=label, limit=1000)
        assert {i["id"] for i in found["items"]} == expected and found["total"] == len(expected)
    unsure = ws.search("", max_confidence=0.5, limit=1000)["items"]
    assert {i["id"] for i in unsure} == {i["id"] for i in predicted if i["confidence"] <= 0.5}
    ranked = ws.search("refund", sort="uncertainty", limit=1000)["items"]
    confidences = [i["confidence"] for i in ranked]
    assert confidences == sorted(confidences)
    ranked = ws.search("refund", sort="confidence", limit=1000)["items"]
    assert [i["confidence"] for i in ranked] == sorted(confidences, reverse=True)
    against = ws.search("", disagreement="model", limit=1000)["items"]
    assert {i["id"] for i in against} == {
        i["id"] for i in predicted if i["label"] is not None and i["label"] != i["predicted"]
    }
    page = ws.search("refund", predicted=LABELS[0], limit=5, offset=5, sort="id")
    whole = ws.search("refund", predicted=LABELS[0], limit=1000, sort="id")
    assert page["items"] == whole["items"][5:10] and page["total"] == whole["total"]


def _promote_random_predictions(ws: Workspace, seed: int) -> None:
    """A promoted round whose predictions file gives most pool items a random class and
    confidence, some none (class -1) and a few no record at all: what the filters read."""
    with Session(ws.engine) as session:
        ids = np.array(sorted(session.exec(select(Item.id).where(Item.split == "pool")).all()))
        found = Round(status="succeeded", promoted=True, strategy="uncertainty")
        session.add(found)
        session.commit()
        round_id = found.id
    rng = np.random.default_rng(seed)
    codes = rng.integers(-1, len(LABELS), len(ids))
    confidence = rng.uniform(0.3, 1.0, len(ids)).astype(np.float32)
    rows = np.flatnonzero(rng.random(len(ids)) < 0.9)
    folder = round_dir(ws, round_id)
    folder.mkdir(parents=True, exist_ok=True)
    table = predictions.prediction_table(ids, rows, codes, confidence)
    np.save(folder / predictions.PREDICTIONS_FILE, table)
    (folder / predictions.PREDICTION_LABELS_FILE).write_text(json.dumps({"labels": LABELS}))


@pytest.mark.parametrize(
    ("sort", "walk"),
    [("relevance", False), ("id", False), ("confidence", False), ("confidence", True)]
    + [("uncertainty", False), ("uncertainty", True)],
)
def test_prediction_filters_keep_the_same_items_order_and_counts_with_and_without_words(
    pool, sort, walk, monkeypatch, tmp_path
):
    """The prediction filters pick their ids from the predictions file and hand them to SQL:
    the result is the unfiltered result, in its own order, less the items whose prediction
    does not pass (every sort, with words and without, with other filters, paged). ``walk``:
    the confidence sorts walk the file in order a few ids at a time, as on a big pool."""
    ws, _ = pool
    walked = []
    monkeypatch.setattr(search, "FEW_CHOSEN", 0)  # SQLite: chosen ids cut to the hits first
    if walk:
        monkeypatch.setattr(search, "FIRST_CHUNK", 2)
        monkeypatch.setattr(search, "READ_ALL_UP_TO", 0)
        by_confidence = search._by_confidence

        def spy(*args: object, **kwargs: object) -> object:
            found = by_confidence(*args, **kwargs)
            walked.append(found is not None)
            return found

        monkeypatch.setattr(search, "_by_confidence", spy)
    _promote_random_predictions(ws, seed=len(sort))
    # Items newer than the round: no prediction, ids past the end of its file.
    newer = [{"id": f"new{i}", "text": f"refund crash the app {i}"} for i in range(3)]
    ws.import_file(_write(tmp_path / "newer.csv", newer), id_field="id", label_field="label")
    with Session(ws.engine) as session:
        external = dict(session.exec(select(Item.id, Item.external_id)).all())
    cases = [
        {"predicted": "billing"},
        {"predicted": "technical", "min_confidence": 0.6},
        {"min_confidence": 0.5, "max_confidence": 0.8},
        {"max_confidence": 0.45, "unlabelled": True},
        {"predicted": "other", "label": "other"},
        {"predicted": "other", "disagreement": "model"},
        {"min_confidence": 0.99999},
    ]
    for text in ("", "refund", "refund OR crash -late", '"the app"'):
        for filters in cases:
            others = {
                k: v for k, v in filters.items() if "confidence" not in k and k != "predicted"
            }
            every = ws.search(text, sort=sort, limit=1000, **others)
            assert every["total"] <= 1000

            def passes(item: dict, filters: dict = filters) -> bool:
                conf = item["confidence"]
                return (
                    item["predicted"] is not None
                    and filters.get("predicted", item["predicted"]) == item["predicted"]
                    and conf >= filters.get("min_confidence", 0.0)
                    and conf <= filters.get("max_confidence", 1.0)
                )

            expected = [i for i in every["items"] if passes(i)]
            found = ws.search(text, sort=sort, limit=1000, **filters)
            assert found["items"] == expected, (text, filters)
            assert found["total"] == len(expected)
            labels = [i["label"] or "" for i in expected]
            assert found["counts"] == {k: labels.count(k) for k in sorted(set(labels))}
            page = ws.search(text, sort=sort, limit=3, offset=2, **filters)
            assert page["items"] == expected[2:5] and page["total"] == len(expected)
            chosen = matching_ids(ws, query_from_options(ws.labels, text=text, **filters))
            assert sorted(external[int(i)] for i in chosen) == sorted(i["id"] for i in expected)
    for text in ("", "refund"):  # no prediction filter: unpredicted items come last, by id
        every = ws.search(text, sort=sort, limit=1000, unlabelled=True)["items"]
        for offset in range(0, len(every), 7):
            page = ws.search(text, sort=sort, limit=7, offset=offset, unlabelled=True)["items"]
            assert page == every[offset : offset + 7], (text, offset)
    assert sum(walked) >= (5 if walk else 0)  # the walk answered, not the fallback


def test_a_search_of_alternatives_is_saved_as_a_rule_that_votes_where_it_matches(pool):
    ws, texts = pool
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["search", "refund OR invoice", "-w", str(ws.root), "--save-rule", "money",
         "--rule-label", "billing", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rule"] == {
        "name": "money",
        "kind": "keyword",
        "label": "billing",
    }
    ws.rule_from_search("crashy", "cra*", "technical")
    assert ws.rule_spec("crashy")["kind"] == "regex"
    ws.apply_lfs()
    for name, query in (("money", "refund OR invoice"), ("crashy", "cra*")):
        voted = ws.search("", lf=f"{name}=billing" if name == "money" else name, limit=1000)
        assert {i["id"] for i in voted["items"]} == {
            i["id"] for i in ws.search(query, limit=1000)["items"]
        }
    for query in ("refund invoice", "refund -invoice"):
        with pytest.raises(BadInput, match="cannot be saved as a rule"):
            ws.rule_from_search("nope", query, "billing")
    half = runner.invoke(app, ["search", "refund", "-w", str(ws.root), "--save-rule", "x"])
    assert half.exit_code == 2 and "--rule-label" in half.output


def test_doctor_finds_and_fixes_a_stale_label_column_and_index(pool, backend):
    ws, _ = pool
    assert all(c["ok"] for c in ws.doctor()["checks"] if c["check"].startswith(("item", "search")))
    with ws.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE item SET label = 'other' WHERE external_id = 't1'")
        if backend == "sqlite":  # an edit behind the index's back
            conn.exec_driver_sql("DROP TRIGGER item_fts_update")
            conn.exec_driver_sql("UPDATE item SET text = 'zebra' WHERE external_id = 't2'")
    report = {c["check"]: c for c in ws.doctor()["checks"]}
    assert not report["item labels match their answers"]["ok"]
    assert "'t1'" in report["item labels match their answers"]["problems"][0]
    if backend == "sqlite":
        assert not report["search index matches the texts"]["ok"]
    fixed = {c["check"]: c for c in ws.doctor(fix=True)["checks"]}
    assert fixed["item labels match their answers"]["fixed"] == 1
    again = {c["check"]: c for c in ws.doctor()["checks"]}
    assert again["item labels match their answers"]["ok"]
    assert again["search index matches the texts"]["ok"]
    if backend == "sqlite":
        assert [i["id"] for i in ws.search("zebra")["items"]] == ["t2"]
