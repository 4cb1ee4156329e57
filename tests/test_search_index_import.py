"""The import indexes its rows a chunk at a time (labeling.store.search_index.BulkIndexer):
every row is found, the index agrees with the items, and SQLite's insert trigger is back after
the import, or after a rolled-back one, for every other path that inserts items."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def test_an_import_of_many_chunks_indexes_every_row(tmp_path, db_url, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_ROWS", 40)
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
