"""Import of the real YouTube spam collection, quirks and all."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from labeling import Workspace
from labeling.store.models import Annotation, ImportBatch, Item
from tests.conftest import YOUTUBE

FILES = sorted(YOUTUBE.glob("Youtube0*.csv"))


@pytest.fixture
def youtube_ws(tmp_path, db_url):
    if len(FILES) != 5:
        pytest.fail(f"expected the 5 YouTube files in ../shared/datasets/youtube, found {FILES}")
    ws = Workspace.create(tmp_path / "yt", labels=["0", "1"], db_url=db_url)
    # The collection as published, repeated comments included (by default an import skips a
    # text already there under another id: tests/test_import_duplicates.py).
    reports = [
        ws.import_file(
            f,
            text_field="CONTENT",
            id_field="COMMENT_ID",
            label_field="CLASS",
            allow_duplicate_texts=True,
        )
        for f in FILES
    ]
    yield ws, reports
    ws.close()


def test_counts_match_the_collection(youtube_ws):
    ws, reports = youtube_ws
    assert sum(r.rows_read for r in reports) == 1956
    assert sum(r.duplicates for r in reports) == 3
    assert sum(r.imported for r in reports) == 1953
    status = ws.status()
    assert status["items"] == {
        "total": 1953,
        "pool": 1953,
        "gold": 0,
        "labelled": 1953,
        "removed": 0,
    }
    # Labels came with the files: recorded as annotations by the `import` annotator.
    assert status["annotations"] == 1953
    assert status["annotators"] == 0


def test_no_byte_order_mark_leaks(youtube_ws):
    ws, _ = youtube_ws
    with Session(ws.engine) as session:
        items = session.exec(select(Item)).all()
        batches = session.exec(select(ImportBatch)).all()
    assert items
    for item in items:
        assert "\ufeff" not in item.external_id
        assert not item.text.endswith("\ufeff") and not item.text.startswith("\ufeff")
        source = json.loads(item.source)
        assert all("\ufeff" not in key for key in source)
        assert all("\ufeff" not in str(value)[-1:] for value in source.values() if value)
    for batch in batches:
        fields = json.loads(batch.fields)
        assert fields == ["COMMENT_ID", "AUTHOR", "DATE", "CONTENT", "CLASS"]


def test_quoted_and_unquoted_headers_both_map(youtube_ws):
    # Files 01-04 quote their header, 05 does not: all five must give the same field names.
    _, reports = youtube_ws
    assert {tuple(r.fields) for r in reports} == {
        ("COMMENT_ID", "AUTHOR", "DATE", "CONTENT", "CLASS")
    }


def test_reimport_skips_everything_as_duplicates(youtube_ws):
    ws, _ = youtube_ws
    again = ws.import_file(
        FILES[0], text_field="CONTENT", id_field="COMMENT_ID", label_field="CLASS"
    )
    assert again.rows_read == 350
    assert again.imported == 0
    assert again.duplicates_in_store == 350
    with Session(ws.engine) as session:
        assert len(session.exec(select(Annotation)).all()) == 1953


def test_label_counts(youtube_ws):
    ws, _ = youtube_ws
    # 1,005 spam and 951 ham rows in the files; the first row of each duplicate id is kept,
    # which leaves 1,003 spam and 950 ham (checked independently with pandas).
    assert ws.status()["annotations_by_label"] == {"0": 950, "1": 1003}
