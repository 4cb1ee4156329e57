"""The importer's two ways through a chunk give the same store.

Tabular chunks whose cells are all plain text are checked and written a column at a time;
anything else goes row by row (see ``validation.RowChecker.plain``). These tests import the same
files both ways and compare every item and annotation, and check that the column path refuses
each fault to the row path, which names it.
"""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest
from sqlalchemy import text

from labeling import Workspace
from labeling.data import import_rows, readers, validation
from labeling.errors import ImportFailed

LABELS = ["billing", "shipping", "account"]


def _rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "id": f"x{k % (n * 2 // 3)}",  # a third are repeats, within and across chunks
            "te%xt": f'say "hi" {k}\n\u2028 é \\ tab\t{k % 7}',
            "label": ["billing", "", " shipping "][k % 3],
            'odd "key" %s': f"v{k}%",
        }
        for k in range(n)
    ]


def _store(ws: Workspace) -> tuple[list[tuple], list[tuple]]:
    with ws.engine.connect() as conn:
        items = conn.execute(
            text(
                "SELECT id, external_id, text, source, content_hash, split, gold_label, "
                "n_labels, rank, batch_id FROM item ORDER BY id"
            )
        ).all()
        annotations = conn.execute(
            text("SELECT item_id, annotator_id, label, skipped, origin FROM annotation ORDER BY id")
        ).all()
    return [tuple(r) for r in items], [tuple(r) for r in annotations]


def _import_all(ws: Workspace, files: list[tuple]) -> list[dict]:
    reports = []
    for path, options in files:
        report = ws.import_file(path, **options).to_dict()
        report.pop("seconds")
        report.pop("drift")
        reports.append(report)
    return reports


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_ROWS", 500)
    frame = pd.DataFrame(_rows(1_800))
    frame.to_csv(tmp_path / "odd.csv", index=False)
    frame.to_parquet(tmp_path / "odd.parquet")
    gold = pd.DataFrame(
        {"id": [f"g{k}" for k in range(300)], "text": [f"gold {k}" for k in range(300)]}
    )
    gold["label"] = ["billing", "account", "shipping"] * 100
    gold.to_csv(tmp_path / "gold.csv", index=False)
    numbers = pd.DataFrame({"id": range(700), "text": [f"t{k}" for k in range(700)]})
    numbers["score"] = numbers["id"] * 0.5
    numbers.to_parquet(tmp_path / "numbers.parquet")
    return [
        (tmp_path / "odd.csv", {"text_field": "te%xt", "id_field": "id", "label_field": "label"}),
        (tmp_path / "odd.csv", {"text_field": "te%xt"}),
        (
            tmp_path / "odd.parquet",
            {"text_field": "te%xt", "id_field": "id", "label_field": "label"},
        ),
        (
            tmp_path / "gold.csv",
            {"text_field": "text", "id_field": "id", "label_field": "label", "split": "gold"},
        ),
        (tmp_path / "numbers.parquet", {"text_field": "text", "id_field": "id"}),
    ]


def _database(backend: str, request: pytest.FixtureRequest) -> str | None:
    if backend == "sqlite":
        return None
    return request.getfixturevalue("postgres_server").create_database(f"p{uuid.uuid4().hex}")


def test_column_and_row_paths_write_the_same_store(tmp_path, files, backend, request, monkeypatch):
    taken = []
    plain = validation.RowChecker.plain

    def counted(self, chunk):
        found = plain(self, chunk)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(validation.RowChecker, "plain", counted)
    column_ws = Workspace.create(
        tmp_path / "columns", labels=LABELS, db_url=_database(backend, request)
    )
    column_reports = _import_all(column_ws, files)
    column_store = _store(column_ws)
    column_ws.close()
    assert any(taken) and not all(taken)  # both paths ran (numbers go row by row)

    monkeypatch.setattr(validation.RowChecker, "plain", lambda self, chunk: None)
    row_ws = Workspace.create(tmp_path / "rows", labels=LABELS, db_url=_database(backend, request))
    row_reports = _import_all(row_ws, files)
    row_store = _store(row_ws)
    row_ws.close()

    assert column_reports == row_reports
    odd, by_content, parquet, gold, numbers = column_reports
    assert (odd["imported"], odd["duplicates_in_file"], odd["labels_recorded"]) == (1_200, 600, 800)
    # The same texts without ids: the 1,200 already imported with ids are repeated texts.
    assert (by_content["imported"], by_content["duplicate_texts_in_store"]) == (600, 1_200)
    assert (parquet["imported"], parquet["duplicates_in_store"]) == (0, 1_800)
    assert (gold["imported"], numbers["imported"]) == (300, 700)
    assert column_store == row_store
    items, annotations = column_store
    assert len(items) == 1_200 + 600 + 300 + 700
    assert len(annotations) == 800
    assert json.loads(items[0][3]) == {
        "id": "x0",
        "te%xt": 'say "hi" 0\n\u2028 é \\ tab\t0',
        "label": "billing",
        'odd "key" %s': "v0%",
    }


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("\x00", "holds a NUL character"),
        ("x" * (validation.MAX_CELL_CHARS + 1), "at most 1,000,000 are allowed in one cell"),
        ("   ", "the text is empty"),
        ("refund", "labels that are not in the workspace's label set"),
    ],
)
def test_a_fault_late_in_a_chunk_is_named_by_the_row_checks(
    workspace, tmp_path, monkeypatch, cell, expected
):
    monkeypatch.setattr(readers, "CHUNK_ROWS", 100)
    # Long enough that row 235 lies beyond the first 64 KiB, which are checked for NUL bytes
    # before parsing.
    rows = [{"id": str(k), "text": f"text {k} " + "w" * 400, "label": "a"} for k in range(250)]
    field = "label" if cell == "refund" else "text"
    rows[234][field] = cell
    path = tmp_path / "late.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(ImportFailed, match=expected) as caught:
        workspace.import_file(path, id_field="id", label_field="label")
    assert "row 235" in str(caught.value)
    with workspace.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM item")).scalar() == 0


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        'quote " and \\ backslash',
        "line\nbreak\r\n",
        "\u2028\u2029 é 日本",
        "\x01\x1f",
        "%s %%",
    ],
)
def test_json_objects_match_the_encoder(value):
    names = ["id", 'k "1" %', "é"]
    columns = [[value, "x"], ["y", value], [value, value]]
    built = import_rows._json_objects(names, columns, 2)
    for k, row in enumerate(zip(*columns, strict=True)):
        assert built[k] == import_rows._SOURCE_JSON.encode(dict(zip(names, row, strict=True)))
    assert import_rows._json_objects([], [], 3) == ["{}"] * 3


def test_the_bulk_cache_is_given_back_after_an_import(workspace, tmp_path):
    path = tmp_path / "small.csv"
    pd.DataFrame({"id": range(50), "text": [f"t{k}" for k in range(50)]}).to_csv(path, index=False)
    with workspace.engine.connect() as conn:
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    workspace.import_file(path, id_field="id")
    with workspace.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == before
