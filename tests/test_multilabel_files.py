"""Multi-label workspaces: the task type fixed at init, label sets in and out of files.

A set is stored as a JSON list in label order (labeling.store.labelsets); files hold it as names
joined by --label-sep in CSV/TSV, or lists in JSONL and Parquet; the empty set is a real answer.
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.errors import BadInput, ConfigError, ImportFailed
from labeling.store import labelsets
from labeling.store.models import SchemaInfo
from tests.conftest import db_fingerprint
from tests.test_roundtrip import read_export

LABELS = ["billing", "refund", "bug", "praise"]
FORMATS = ["csv", "jsonl", "parquet"]
runner = CliRunner()


def multi(tmp_path: Path, db_url: str | None = None, name: str = "ws") -> Workspace:
    return Workspace.create(tmp_path / name, labels=LABELS, task="multi-label", db_url=db_url)


def write_rows(path: Path, rows: list[dict[str, Any]], fmt: str, sep: str = "|") -> Path:
    """Rows whose "labels" value is None (no label) or a list of names, in ``fmt``."""
    if fmt == "csv":
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "text", "labels"])
            for row in rows:
                names = row["labels"]
                cell = "" if names is None else (sep.join(names) if names else "[]")
                writer.writerow([row["id"], row["text"], cell])
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema(
            [("id", pa.string()), ("text", pa.string()), ("labels", pa.list_(pa.string()))]
        )
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def stored_sets(ws: Workspace) -> dict[str, frozenset[str] | None]:
    """Each pool item's label as its set (None: unlabelled), by external id."""
    rows = ws.export(ws.root / "check.jsonl")
    assert rows.rows >= 0
    out = {}
    for row in read_export(ws.root / "check.jsonl", "jsonl"):
        if row["split"] == "pool":
            out[row["id"]] = None if row["label"] is None else frozenset(row["label"])
    return out


# ------------------------------------------------------------------------- the task type


def test_init_records_the_task_in_the_toml_and_the_store(tmp_path):
    result = runner.invoke(
        app, ["init", str(tmp_path / "w"), "--labels", "a,b,c", "--task", "multi-label", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["task"] == "multi-label"
    assert 'task = "multi-label"' in (tmp_path / "w" / "labelloop.toml").read_text()
    with Workspace.open(tmp_path / "w") as ws:
        assert ws.multilabel
        assert labelsets.stored_task(ws.engine) == "multi-label"


def test_the_default_task_is_single_label(workspace):
    assert not workspace.multilabel
    assert labelsets.stored_task(workspace.engine) == "single-label"


def test_an_unknown_task_is_refused_before_anything_is_made(tmp_path):
    result = runner.invoke(
        app, ["init", str(tmp_path / "w"), "--labels", "a,b", "--task", "multilabel"]
    )
    assert result.exit_code != 0
    assert "option '--task': expected one of single-label, multi-label" in result.output
    assert not (tmp_path / "w").exists()


def test_changing_the_task_in_the_toml_is_refused_on_open(tmp_path):
    multi(tmp_path).close()
    toml = tmp_path / "ws" / "labelloop.toml"
    toml.write_text(toml.read_text().replace('"multi-label"', '"single-label"'))
    with pytest.raises(ConfigError) as caught:
        Workspace.open(tmp_path / "ws")
    message = str(caught.value)
    assert "key 'task'" in message and "created as 'multi-label'" in message
    assert "cannot change" in message


def test_a_store_from_before_task_types_opens_as_single_label(workspace):
    with workspace._write() as session:
        session.delete(session.get(SchemaInfo, labelsets.TASK_KEY))
    root = workspace.root
    workspace.close()
    with Workspace.open(root) as ws:
        assert not ws.multilabel
    toml = root / "labelloop.toml"
    toml.write_text(toml.read_text().replace('"single-label"', '"multi-label"'))
    with pytest.raises(ConfigError, match="created as 'single-label'"):
        Workspace.open(root)


# ------------------------------------------------------------------------- the codec


@given(st.sets(st.sampled_from(LABELS + ['a "quoted" one', "back\\slash", "50%_off"])))
def test_a_set_has_one_encoding_and_decodes_to_itself(names):
    labels = (*LABELS, 'a "quoted" one', "back\\slash", "50%_off")
    stored = labelsets.encode(sorted(names), labels)
    assert labelsets.encode(reversed(sorted(names)), labels) == stored
    assert labelsets.decode(stored) == frozenset(names)
    assert labelsets.decode_ordered(stored) == [n for n in labels if n in names]


def test_the_contains_pattern_matches_exactly_the_sets_holding_the_label(tmp_path):
    import sqlite3

    labels = ("a", 'a"', "ab", "50%", "5_0")
    sets = [[], ["a"], ['a"'], ["ab"], ["a", "ab"], ["50%"], ["5_0"], ['a"', "ab"]]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [(labelsets.encode(s, labels),) for s in sets])
    for label in labels:
        found = {
            row[0]
            for row in conn.execute(
                "SELECT v FROM t WHERE v LIKE ? ESCAPE '\\'", (labelsets.contains_pattern(label),)
            )
        }
        assert found == {labelsets.encode(s, labels) for s in sets if label in s}, label


def test_cells_parse_by_separator_json_list_or_list():
    assert labelsets.parse_cell(" billing | refund ", "|") == ["billing", "refund"]
    assert labelsets.parse_cell("billing;bug", ";") == ["billing", "bug"]
    assert labelsets.parse_cell("[]", "|") == []
    assert labelsets.parse_cell('["bug"]', "|") == ["bug"]
    assert labelsets.parse_cell(["bug", " refund "], "|") == ["bug", "refund"]
    assert labelsets.parse_cell("", "|") is None
    assert labelsets.parse_cell(None, "|") is None
    with pytest.raises(ValueError, match="expected label names"):
        labelsets.parse_cell([1], "|")
    with pytest.raises(ValueError, match="JSON list"):
        labelsets.parse_cell("[not json]", "|")


# ------------------------------------------------------------------------- import


@pytest.mark.parametrize("fmt", FORMATS)
def test_import_reads_sets_with_the_empty_set_distinct_from_no_label(
    tmp_path, fmt, backend, db_url
):
    rows = [
        {"id": "t1", "text": "charged twice", "labels": ["billing", "refund"]},
        {"id": "t2", "text": "nothing to see", "labels": []},
        {"id": "t3", "text": "not labelled yet", "labels": None},
        {"id": "t4", "text": "app crashes", "labels": ["bug"]},
    ]
    with multi(tmp_path, db_url) as ws:
        report = ws.import_file(
            write_rows(tmp_path / f"in.{fmt}", rows, fmt), id_field="id", label_field="labels"
        )
        assert report.imported == 4 and report.labels_recorded == 3
        assert stored_sets(ws) == {
            "t1": frozenset({"billing", "refund"}),
            "t2": frozenset(),
            "t3": None,
            "t4": frozenset({"bug"}),
        }
        assert ws.status()["items"]["labelled"] == 3


def test_import_takes_another_separator(tmp_path):
    rows = [{"id": "t1", "text": "charged twice", "labels": ["billing", "refund"]}]
    with multi(tmp_path) as ws:
        ws.import_file(
            write_rows(tmp_path / "in.csv", rows, "csv", sep=";"),
            id_field="id",
            label_field="labels",
            label_sep=";",
        )
        assert stored_sets(ws) == {"t1": frozenset({"billing", "refund"})}


def test_an_unknown_name_is_refused_with_row_and_field_and_nothing_changes(tmp_path):
    with multi(tmp_path) as ws:
        ws.import_file(
            write_rows(
                tmp_path / "first.csv", [{"id": "x", "text": "t", "labels": ["bug"]}], "csv"
            ),
            id_field="id",
            label_field="labels",
        )
        before = db_fingerprint(ws)
        bad = [
            {"id": "t1", "text": "one", "labels": ["billing"]},
            {"id": "t2", "text": "two", "labels": ["billing", "refunds"]},
        ]
        with pytest.raises(ImportFailed) as caught:
            ws.import_file(
                write_rows(tmp_path / "bad.csv", bad, "csv"), id_field="id", label_field="labels"
            )
        message = str(caught.value)
        assert "bad.csv" in message and "'labels'" in message
        assert "'refunds' (1 row, first at row 2)" in message
        assert db_fingerprint(ws) == before


def test_a_list_holding_a_number_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "1", "text": "x", "labels": ["bug", 3]}\n', encoding="utf-8")
    with (
        multi(tmp_path) as ws,
        pytest.raises(ImportFailed, match=r"bad.jsonl: line 1, field 'labels'"),
    ):
        ws.import_file(path, id_field="id", label_field="labels")


def test_gold_items_need_a_set_but_the_empty_set_is_one(tmp_path):
    rows = [
        {"id": "g1", "text": "gold one", "labels": ["bug"]},
        {"id": "g2", "text": "gold two", "labels": []},
    ]
    with multi(tmp_path) as ws:
        ws.import_file(
            write_rows(tmp_path / "g.jsonl", rows, "jsonl"),
            id_field="id",
            label_field="labels",
            split="gold",
        )
        gold = {
            r["id"]: r["gold_label"]
            for r in read_export(ws.export(ws.root / "g.jsonl") and ws.root / "g.jsonl", "jsonl")
        }
        assert gold == {"g1": ["bug"], "g2": []}
        missing = [{"id": "g3", "text": "gold three", "labels": None}]
        with pytest.raises(ImportFailed, match="write \\[\\] for an item with none"):
            ws.import_file(
                write_rows(tmp_path / "g3.csv", missing, "csv"),
                id_field="id",
                label_field="labels",
                split="gold",
            )


def test_a_separator_inside_a_label_name_is_refused(tmp_path):
    ws = Workspace.create(tmp_path / "w", labels=["a|b", "c"], task="multi-label")
    with ws:
        path = write_rows(tmp_path / "in.csv", [{"id": "1", "text": "x", "labels": ["c"]}], "csv")
        with pytest.raises(BadInput, match="option '--label-sep': label 'a\\|b' contains"):
            ws.import_file(path, id_field="id", label_field="labels")
        ws.import_file(path, id_field="id", label_field="labels", label_sep=";")


# ------------------------------------------------------------------------- export and round trip


def test_export_writes_each_format_and_the_wide_columns(tmp_path):
    rows = [
        {"id": "t1", "text": "charged twice", "labels": ["refund", "billing"]},
        {"id": "t2", "text": "nothing", "labels": []},
        {"id": "t3", "text": "open", "labels": None},
    ]
    with multi(tmp_path) as ws:
        ws.import_file(
            write_rows(tmp_path / "in.jsonl", rows, "jsonl"), id_field="id", label_field="labels"
        )
        ws.export(tmp_path / "out.csv", wide=True)
        got = {r["id"]: r for r in read_export(tmp_path / "out.csv", "csv")}
        assert got["t1"]["label"] == "billing|refund"  # label order, not the file's
        assert got["t2"]["label"] == "[]"
        assert got["t3"]["label"] == ""
        assert [got["t1"][f"label:{n}"] for n in LABELS] == ["1", "1", "0", "0"]
        assert [got["t2"][f"label:{n}"] for n in LABELS] == ["0"] * 4
        assert [got["t3"][f"label:{n}"] for n in LABELS] == [""] * 4
        ws.export(tmp_path / "out.parquet", wide=True)
        got = {r["id"]: r for r in read_export(tmp_path / "out.parquet", "parquet")}
        assert got["t1"]["label"] == ["billing", "refund"] and got["t2"]["label"] == []
        assert got["t1"]["label:billing"] == 1 and got["t3"]["label:bug"] is None
        ws.export(tmp_path / "log.jsonl", annotations=True)
        log = read_export(tmp_path / "log.jsonl", "jsonl")
        assert sorted(map(tuple, (r["label"] for r in log))) == [(), ("billing", "refund")]


def test_single_label_export_can_be_wide_too(workspace, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text,label\n1,x,b\n2,y,\n", encoding="utf-8")
    workspace.import_file(path, id_field="id", label_field="label")
    workspace.export(tmp_path / "out.csv", wide=True)
    got = {r["id"]: r for r in read_export(tmp_path / "out.csv", "csv")}
    assert got["1"]["label"] == "b"
    assert (got["1"]["label:a"], got["1"]["label:b"], got["2"]["label:b"]) == ("0", "1", "")


names = st.lists(st.sampled_from(LABELS), unique=True)


_databases = itertools.count()


def fresh_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """A new store's URL: None (a SQLite file in the workspace) or a new PostgreSQL database."""
    if backend == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"mlrt{next(_databases)}")


@pytest.mark.parametrize("fmt", FORMATS)
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sets=st.lists(st.one_of(st.none(), names), min_size=1, max_size=12))
def test_round_trip_of_sets_is_exact(tmp_path_factory, request, fmt, backend, sets):
    tmp_path = tmp_path_factory.mktemp("rt")
    rows = [
        {"id": f"i{n}", "text": f"text number {n}", "labels": value} for n, value in enumerate(sets)
    ]
    expected = {r["id"]: None if r["labels"] is None else frozenset(r["labels"]) for r in rows}
    with multi(tmp_path, fresh_url(backend, request)) as first:
        first.import_file(
            write_rows(tmp_path / f"in.{fmt}", rows, fmt), id_field="id", label_field="labels"
        )
        assert stored_sets(first) == expected
        first.export(tmp_path / f"out.{fmt}")
    with multi(tmp_path, fresh_url(backend, request), name="again") as second:
        second.import_file(tmp_path / f"out.{fmt}", id_field="id", label_field="label")
        assert stored_sets(second) == expected
        second.export(tmp_path / f"again.{fmt}")
    assert read_export(tmp_path / f"again.{fmt}", fmt) == read_export(tmp_path / f"out.{fmt}", fmt)
