"""Similar items: results equal a brute-force cosine over freshly featurized texts, through
imports, removals and restores (a property test), on SQLite and PostgreSQL (``--backend``);
the round's representation is used once there is one; the CLI's table, JSON and errors."""

from __future__ import annotations

import csv
import itertools
import json
import random
from dataclasses import replace

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import normalize
from sqlmodel import col, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.config import write_config
from labeling.errors import BadInput, UnknownItem
from labeling.rounds import similar as similar_module
from labeling.rounds import similar_index
from labeling.rounds.featurizers import HYBRID_SCALES, make_featurizer, side_by_side
from labeling.rounds.similar import index_folder, similarity_source
from labeling.store.models import REMOVED, Item

runner = CliRunner()
WORDS = (
    "refund invoice card payment crash login password delivery parcel late email plan cancel "
    "upgrade screen slow phone browser"
).split()
_names = itertools.count()


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(2, 7))) for _ in range(n)]


def _write(path, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        writer.writerows(rows)
    return path


def _workspace(folder, db_url, featurizer: str = "tfidf") -> Workspace:
    ws = Workspace.create(folder, labels=["a", "b"], db_url=db_url)
    ws.config = replace(ws.config, featurizer=featurizer, gold_rate=0.0)
    write_config(ws.root, ws.config)
    return ws


def _import(ws: Workspace, texts: list[str], prefix: str, split: str = "pool", labels=None):
    path = ws.root / f"{prefix}-{next(_names)}.csv"
    labels = labels or [""] * len(texts)
    _write(
        path,
        [(f"{prefix}{k}", t, lab) for k, (t, lab) in enumerate(zip(texts, labels, strict=True))],
    )
    ws.import_file(path, id_field="id", label_field="label", split=split)


def _brute_force(ws, *, item_id=None, text=None, limit=20, min_similarity=None, blocks=None):
    """Exact cosine against every item not removed, featurized from scratch (not through the
    feature cache nor the index), best first, ties by import order."""
    with ws._read() as session:
        rows = session.exec(
            select(Item.external_id, Item.text, Item.split)
            .where(Item.split != REMOVED)
            .order_by(col(Item.id))
        ).all()
        if item_id is not None:
            text = session.exec(select(Item.text).where(Item.external_id == item_id)).one()
    blocks = blocks or [
        joblib.load(ws.models_dir / "features" / "featurizer-tfidf.joblib").transform
    ]
    if len(blocks) == 1:
        X, q = blocks[0]([r[1] for r in rows]), blocks[0]([text])
    else:
        X = side_by_side([b([r[1] for r in rows]) for b in blocks], HYBRID_SCALES)
        q = side_by_side([b([text]) for b in blocks], HYBRID_SCALES)
    sims = np.asarray(
        normalize(X.astype(np.float64)) @ normalize(q.astype(np.float64)).T.toarray()
    ).ravel()
    found = [(float(s), r[0], r[2]) for s, r in zip(sims, rows, strict=True) if r[0] != item_id]
    found.sort(key=lambda f: -f[0])  # stable: ties stay in id order
    if min_similarity is not None:
        found = [f for f in found if f[0] >= min_similarity]
    return found[:limit]


def _assert_same(got: dict, want: list) -> None:
    items = got["items"]
    assert len(items) == len(want)
    np.testing.assert_allclose([i["similarity"] for i in items], [w[0] for w in want], atol=2e-6)
    exact = {w[1]: w for w in want}
    for item in items:
        # Items tied with another at the same similarity may come in either order.
        if item["id"] in exact:
            assert item["split"] == exact[item["id"]][2]
        else:
            assert any(abs(w[0] - item["similarity"]) < 2e-6 for w in want)


def test_similar_items_by_item_and_by_text_equal_brute_force(tmp_path, db_url):
    ws = _workspace(tmp_path / "ws", db_url)
    _import(ws, _texts(40, seed=1), "p")
    _import(ws, _texts(5, seed=2), "g", split="gold", labels=["a", "b", "a", "b", "a"])
    got = ws.similar("p3", limit=10)
    _assert_same(got, _brute_force(ws, item_id="p3", limit=10))
    assert "p3" not in {i["id"] for i in got["items"]}
    everything = ws.similar("p3", limit=100)["items"]
    assert len(everything) == 44 and {i["split"] for i in everything} == {"pool", "gold"}
    assert everything == sorted(everything, key=lambda i: -i["similarity"])
    _assert_same(ws.similar(text="refund card late"), _brute_force(ws, text="refund card late"))
    high = ws.similar("p3", limit=100, min_similarity=0.5)
    _assert_same(high, _brute_force(ws, item_id="p3", limit=100, min_similarity=0.5))
    assert all(i["similarity"] >= 0.5 for i in high["items"])
    ws.close()


def test_mistakes_are_named(tmp_path):
    ws = _workspace(tmp_path / "ws", None)
    with pytest.raises(BadInput, match="no items"):
        ws.similar(text="refund")
    _import(ws, _texts(5, seed=3), "p")
    with pytest.raises(UnknownItem, match="'nope'"):
        ws.similar("nope")
    with pytest.raises(BadInput, match="exactly one.*found both"):
        ws.similar("p1", text="refund")
    with pytest.raises(BadInput, match="exactly one.*found neither"):
        ws.similar()
    with pytest.raises(BadInput, match="limit: expected 1 to 10,000, found 0"):
        ws.similar("p1", limit=0)
    with pytest.raises(BadInput, match="min_similarity"):
        ws.similar("p1", min_similarity=1.5)
    with pytest.raises(BadInput, match="empty text"):
        ws.similar(text="  ")
    ws.close()


OPS = st.lists(
    st.tuples(
        st.sampled_from(["import", "remove", "restore", "query-item", "query-text"]),
        st.integers(min_value=0, max_value=30),
        st.sampled_from([(3, None), (50, None), (50, 0.4)]),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=OPS, seed=st.integers(min_value=0, max_value=1_000))
def test_the_index_stays_right_through_imports_removals_and_restores(
    tmp_path_factory, backend, request, monkeypatch, steps, seed
):
    """Random imports, removals, restores and queries: every query's answer equals a
    brute-force computation from scratch over the items not removed at that moment (imports
    are appended as segments; after three, the index is rebuilt)."""
    monkeypatch.setattr(similar_module, "MAX_SEGMENTS", 3)
    url = None
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database(f"s{next(_names)}")
    ws = _workspace(tmp_path_factory.mktemp("sim") / "ws", url)
    texts = iter(_texts(400, seed))
    _import(ws, [next(texts) for _ in range(10)], "a")
    removed: list[str] = []
    for op, k, (limit, min_similarity) in [("query-item", 0, (5, None)), *steps]:
        with ws._read() as session:
            present = session.exec(
                select(Item.external_id).where(Item.split != REMOVED).order_by(col(Item.id))
            ).all()
        if op == "import":
            _import(ws, [next(texts) for _ in range(k % 6 + 1)], f"i{next(_names)}-")
        elif op == "remove" and len(present) > 1:
            ws.remove_items([present[k % len(present)]])
            removed.append(present[k % len(present)])
        elif op == "restore" and removed:
            ws.restore_items([removed.pop(k % len(removed))])
        elif op == "query-item":
            target = present[k % len(present)]
            got = ws.similar(target, limit=limit, min_similarity=min_similarity)
            want = _brute_force(ws, item_id=target, limit=limit, min_similarity=min_similarity)
            _assert_same(got, want)
        elif op == "query-text":
            query = " ".join(WORDS[k % 7 : k % 7 + 3])
            got = ws.similar(text=query, limit=limit, min_similarity=min_similarity)
            _assert_same(
                got, _brute_force(ws, text=query, limit=limit, min_similarity=min_similarity)
            )
    ws.close()


def test_the_projection_finds_candidates_and_the_shown_similarity_is_exact(tmp_path, monkeypatch):
    """With fewer candidates than items, the projection picks them: what is shown is still
    the exact cosine, best first, and the item's nearest duplicate-like text comes first."""
    monkeypatch.setattr(similar_index, "MIN_CANDIDATES", 8)
    monkeypatch.setattr(similar_index, "CANDIDATES_PER_RESULT", 2)
    ws = _workspace(tmp_path / "ws", None)
    texts = _texts(120, seed=5)
    texts[77] = texts[10] + " refund"
    _import(ws, texts, "p")
    got = ws.similar("p10", limit=4)["items"]
    exact = {w[1]: w[0] for w in _brute_force(ws, item_id="p10", limit=200)}
    assert len(got) == 4 and got[0]["id"] == "p77"
    for item in got:
        assert item["similarity"] == pytest.approx(exact[item["id"]], abs=2e-6)
    assert [i["similarity"] for i in got] == sorted((i["similarity"] for i in got), reverse=True)
    ws.close()


def test_the_index_is_kept_and_follows_the_promoted_rounds_features(tmp_path):
    ws = _workspace(tmp_path / "ws", None)
    texts = _texts(30, seed=7)
    _import(ws, texts, "p", labels=["a" if "refund" in t else "b" for t in texts])
    before = similarity_source(ws)
    assert before.origin == "the workspace's setting" and before.name == "tfidf"
    ws.similar("p1")
    folder = index_folder(ws, before)
    stamp = (folder / similar_index.INDEX_FILE).stat().st_mtime_ns
    again = Workspace.open(ws.root)
    assert again.similar("p1") == ws.similar("p1")
    assert (folder / similar_index.INDEX_FILE).stat().st_mtime_ns == stamp  # not rebuilt
    done = ws.retrain()
    assert done.status == "succeeded", done.error
    metrics = json.loads(done.metrics)
    source = similarity_source(ws)
    assert source.origin == f"round {done.id}" and source.version == metrics["featurizer"]
    _assert_same(ws.similar("p2"), _brute_force(ws, item_id="p2"))
    # A refitted featurizer is a new version: a new index, and the old one is deleted.
    (ws.models_dir / "features" / "featurizer-tfidf.joblib").unlink()
    _import(ws, _texts(3, seed=8), "n")
    ws.similar("p1")
    assert not folder.exists() and len(list(folder.parent.iterdir())) == 2  # and the lock
    again.close()
    ws.close()


def test_a_hybrid_workspace_compares_both_blocks_side_by_side(tmp_path):
    ws = _workspace(tmp_path / "ws", None, featurizer="hybrid")
    _import(ws, _texts(20, seed=9), "p")
    got = ws.similar("p4", limit=5)
    tfidf = joblib.load(ws.models_dir / "features" / "featurizer-tfidf.joblib")
    embeddings = make_featurizer("sentence-embeddings")
    want = _brute_force(ws, item_id="p4", limit=5, blocks=[tfidf.transform, embeddings.transform])
    np.testing.assert_allclose(
        [i["similarity"] for i in got["items"]], [w[0] for w in want], atol=1e-5
    )
    assert similarity_source(ws).name == "hybrid"
    ws.close()


def test_cli_prints_a_table_json_and_clear_errors(tmp_path, db_url):
    ws = _workspace(tmp_path / "ws", db_url)
    _import(ws, _texts(25, seed=4), "p")
    base = ["-w", str(ws.root)] + (["--db", ws.db_url] if db_url else [])
    table = runner.invoke(app, ["similar", "p2", "--limit", "3", *base])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["similarity", "split", "id", "text"] and len(lines) == 4
    shown = runner.invoke(app, ["similar", "--text", "refund card", "--json", *base])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == ws.similar(text="refund card")
    for args, message in [
        (["similar", "p2", "--text", "x"], "ID or --text (exactly one); found both"),
        (["similar"], "ID or --text (exactly one); found neither"),
        (["similar", "nope"], "no item has the id 'nope'"),
        (["similar", "p2", "--limit", "0"], "option '--limit': expected 1 to 10,000"),
        (["similar", "p2", "--min-similarity", "2"], "option '--min-similarity'"),
    ]:
        failed = runner.invoke(app, [*args, *base])
        assert failed.exit_code == 2 and message in failed.output, failed.output
    empty = _workspace(tmp_path / "empty", None)
    failed = runner.invoke(app, ["similar", "--text", "refund", "-w", str(empty.root)])
    assert failed.exit_code == 2 and "no items" in failed.output
    empty.close()
    ws.close()
