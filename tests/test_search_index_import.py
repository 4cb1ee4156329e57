"""The import indexes its rows in large passes (labeling.store.search_index.BulkIndexer): every
row is found, the index agrees with the items (and, property-tested, with a count of the texts
for any chunk and pass sizes), and SQLite's insert trigger and FTS5 settings are back after the
import, or after a rolled-back one, for every other path that inserts items."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session

from labeling import Workspace
from labeling.data import readers
from labeling.store import search_index
from labeling.store.models import Item

WORDS = ["refund", "order", "late", "card", "crash"]


def _write(path: Path, first: int, n: int) -> Path:
    rows = [f"c{k},{WORDS[k % 5]} item{k} {WORDS[(k // 5) % 5]}" for k in range(first, first + n)]
    path.write_text("id,text\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _expected(word: str, n: int) -> int:
    return sum(word in (WORDS[k % 5], WORDS[(k // 5) % 5]) for k in range(n))


def _insert_trigger(ws: Workspace) -> bool:
    with ws.engine.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'item_fts_insert'")
        ).first()
    return found is not None


def _fts_config(ws: Workspace) -> list[tuple[str, int]]:
    with ws.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT k, v FROM item_fts_config")]


@pytest.mark.parametrize("pass_chars", [300, search_index.BULK_PASS_CHARS])
def test_an_import_of_many_chunks_indexes_every_row(tmp_path, db_url, monkeypatch, pass_chars):
    monkeypatch.setattr(readers, "CHUNK_ROWS", 40)
    monkeypatch.setattr(search_index, "BULK_PASS_CHARS", pass_chars)
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"], db_url=db_url)
    ws.import_file(_write(tmp_path / "one.csv", 0, 130), id_field="id")
    ws.import_file(_write(tmp_path / "two.csv", 130, 95), id_field="id")
    for word in WORDS:
        assert ws.search(word)["total"] == _expected(word, 225)
    assert ws.search("item7")["total"] == 1 and ws.search("item224")["total"] == 1
    with ws.engine.begin() as conn:
        assert search_index.integrity_problems(conn) == 0
    if ws.engine.dialect.name == "sqlite":
        assert _insert_trigger(ws)
    else:  # the GIN's pending list is empty, and the import's settings were its own
        with ws.engine.begin() as conn:
            assert search_index.clean_pending_list(conn) == 0
            assert conn.exec_driver_sql("SHOW gin_pending_list_limit").scalar() == "4MB"
            assert conn.exec_driver_sql("SHOW work_mem").scalar() == "4MB"
    ws.close()


def test_a_rolled_back_import_leaves_the_insert_trigger_in_place(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"])
    with pytest.raises(RuntimeError), ws.engine.begin() as conn:
        indexer = search_index.BulkIndexer(conn)
        assert indexer.suspended
        raise RuntimeError("the import failed")
    assert _insert_trigger(ws)
    # A row inserted by any other path is indexed by the trigger again.
    with Session(ws.engine) as session:
        session.add(Item(external_id="x1", text="a zebra", content_hash="h"))
        session.commit()
    assert ws.search("zebra")["total"] == 1
    ws.close()


def test_the_import_puts_fts5s_hashsize_back_as_it_was(tmp_path):
    ws = Workspace.create(tmp_path / "ws", labels=["a", "b"])
    stored = _fts_config(ws)
    ws.import_file(_write(tmp_path / "one.csv", 0, 30), id_field="id")
    assert _fts_config(ws) == stored  # none stored before, none after
    with ws.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO item_fts(item_fts, rank) VALUES ('hashsize', 2000000)")
    with pytest.raises(RuntimeError), ws.engine.begin() as conn:
        search_index.BulkIndexer(conn)
        raise RuntimeError("the import failed")
    ws.import_file(_write(tmp_path / "two.csv", 30, 30), id_field="id")
    assert dict(_fts_config(ws))["hashsize"] == 2000000
    assert ws.search("refund")["total"] == _expected("refund", 60)
    ws.close()


# ------------------------------------------------ property: the index equals a count of the texts

VOCABULARY = ["ab", "cd", "ef", "gh"]
_databases = itertools.count()
texts = st.lists(
    st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=6).map(" ".join),
    min_size=1,
    max_size=60,
)


def _found(ws: Workspace, query: str) -> int:
    return int(ws.search(query, limit=1)["total"])


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    files=st.lists(texts, min_size=1, max_size=3),
    chunk_rows=st.integers(1, 25),
    pass_chars=st.integers(1, 400),
)
def test_the_index_finds_what_a_count_of_the_texts_finds(
    backend, request, monkeypatch, files, chunk_rows, pass_chars
):
    monkeypatch.setattr(readers, "CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(search_index, "BULK_PASS_CHARS", pass_chars)
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    db_url = None if server is None else server.create_database(f"indexprop{next(_databases)}")
    with tempfile.TemporaryDirectory() as directory:
        ws = Workspace.create(Path(directory) / "ws", labels=["a", "b"], db_url=db_url)
        stored: list[str] = []
        try:
            for n, rows in enumerate(files):
                path = Path(directory) / f"f{n}.csv"
                lines = [f"k{len(stored) + i},{t}\n" for i, t in enumerate(rows)]
                path.write_text("id,text\n" + "".join(lines))
                ws.import_file(path, id_field="id", allow_duplicate_texts=True)
                stored += rows
            words = [t.split() for t in stored]
            for word in VOCABULARY:
                assert _found(ws, word) == sum(word in w for w in words), word
            for first, second in itertools.product(VOCABULARY[:2], VOCABULARY[1:3]):
                phrase = [first, second]
                expected = sum(
                    any(w[i : i + 2] == phrase for i in range(len(w) - 1)) for w in words
                )
                assert _found(ws, f'"{first} {second}"') == expected, phrase
            with ws.engine.begin() as conn:
                assert search_index.integrity_problems(conn) == 0
        finally:
            ws.close()
