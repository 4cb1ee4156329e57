"""Delimiters, quoting and formats the importer detects by itself."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlmodel import Session, select

from labeling.store.models import Item


def _texts(ws) -> dict[str, str]:
    with Session(ws.engine) as session:
        return {i.external_id: i.text for i in session.exec(select(Item)).all()}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("comma.csv", 'id,text\n1,"hello, world"\n2,plain\n'),
        ("semicolon.csv", 'id;text\n1;"hello; world"\n2;plain\n'),
        ("pipe.csv", "id|text\n1|hello, world\n2|plain\n"),
        ("tab.tsv", "id\ttext\n1\thello, world\n2\tplain\n"),
        ("tab_in_csv.csv", "id\ttext\n1\thello, world\n2\tplain\n"),
        ("quoted_header.csv", '"id","text"\n"1","hello, world"\n"2","plain"\n'),
        ("single_quotes.csv", "'id','text'\n'1','hello, world'\n'2','plain'\n"),
        ("crlf.csv", 'id,text\r\n1,"hello, world"\r\n2,plain\r\n'),
        ("bom.csv", '\ufeffid,text\n1,"hello, world"\n2,plain\n'),
    ],
)
def test_delimiters_and_quoting(workspace, tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    report = workspace.import_file(path, id_field="id")
    assert report.imported == 2
    texts = _texts(workspace)
    assert texts["2"] == "plain"
    assert texts["1"] in {"hello, world", "hello; world"}


def test_apostrophes_in_texts_do_not_change_quoting(workspace, tmp_path):
    path = tmp_path / "apostrophes.csv"
    path.write_text("id,text\n1,'don't' he said\n2,it's fine, really\n", encoding="utf-8")
    with pytest.raises(Exception, match="row 2 has 3 cells"):
        workspace.import_file(path, id_field="id")
    path.write_text("id,text\n1,'don't' he said\n2,\"it's fine, really\"\n", encoding="utf-8")
    workspace.import_file(path, id_field="id")
    assert _texts(workspace) == {"1": "'don't' he said", "2": "it's fine, really"}


def test_jsonl_with_nested_values_and_integer_ids(workspace, tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [
        {"id": 1, "text": "first", "meta": {"lang": "en", "tags": ["x"]}},
        {"id": 2, "text": "second", "score": 0.5},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    report = workspace.import_file(path, id_field="id")
    assert report.imported == 2
    assert report.fields == ["id", "text", "meta", "score"]
    out = tmp_path / "out.jsonl"
    workspace.export(out)
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert exported[0]["meta"] == {"lang": "en", "tags": ["x"]}
    assert exported[1]["score"] == 0.5
    csv_out = tmp_path / "out.csv"
    workspace.export(csv_out)
    assert '"{""lang"": ""en"", ""tags"": [""x""]}"' in csv_out.read_text()


def test_parquet_with_integer_ids(workspace, tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": [10, 11], "text": ["a text", "b text"], "n": [1, 2]}), path)
    report = workspace.import_file(path, id_field="id")
    assert report.imported == 2
    assert _texts(workspace) == {"10": "a text", "11": "b text"}


def test_content_ids_make_repeated_texts_duplicates(workspace, tmp_path):
    path = tmp_path / "nid.csv"
    path.write_text("text\nsame words\nother words\nsame words\n", encoding="utf-8")
    report = workspace.import_file(path)
    assert (report.imported, report.duplicates_in_file) == (2, 1)
    assert all(key.startswith("h-") and len(key) == 18 for key in _texts(workspace))


def test_tsv_keeps_quote_characters(workspace, tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text('id\ttext\n1\t"Hello" she said\n2\tit\'s 5" long\n', encoding="utf-8")
    workspace.import_file(path, id_field="id")
    assert _texts(workspace) == {"1": '"Hello" she said', "2": "it's 5\" long"}


def test_quoted_tsv_header_means_quoted_cells(workspace, tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text('"id"\t"text"\n"1"\t"two\tcells"\n', encoding="utf-8")
    workspace.import_file(path, id_field="id")
    assert _texts(workspace) == {"1": "two\tcells"}
