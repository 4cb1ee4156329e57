"""Search (issue 21): totals equal a plain Python count, on both backends; filters; the index and
``Item.label`` stay in step through every path that changes them.

The oracle is the test's own tokeniser and the query's meaning written out in Python: words
(whole, case-insensitive), adjacent phrases, OR, exclusion and prefixes, over a generated pool.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.errors import BadInput
from labeling.store.answers import final_labels
from labeling.store.models import Item

LABELS = ["billing", "technical", "other"]
VOCAB = ["refund", "Order", "password", "app", "crash", "late", "the", "a", "invoice", "e-mail"]
PUNCT = ["", "", "", ",", ".", "!", "?"]


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
