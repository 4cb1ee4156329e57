"""Import -> export -> re-import keeps every item's id, text and label, in every format."""

from __future__ import annotations

import csv
import json
import string
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql

from labeling import Workspace
from labeling.data.exporter import ITEM_COLUMNS

FORMATS = ["csv", "jsonl", "parquet"]
LABELS = ["a", "b", "c"]
# Items may repeat a text under different ids (as the property below draws them): keep them.
REIMPORT = {
    "text_field": "text",
    "id_field": "id",
    "label_field": "label",
    "allow_duplicate_texts": True,
}


# --------------------------------------------------------------------------- helpers


def read_export(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The rows of an export file, read without labelloop."""
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    if fmt == "jsonl":
        # Split on "\n" only: JSON text may hold U+2028 and friends unescaped.
        lines = path.read_text(encoding="utf-8").split("\n")
        return [json.loads(line) for line in lines if line]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def export_columns(path: Path, fmt: str) -> list[str]:
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as fh:
            return next(csv.reader(fh))
    if fmt == "jsonl":
        return list(json.loads(path.read_text(encoding="utf-8").split("\n")[0]))
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def stored(ws: Workspace) -> dict[str, tuple[str, str | None]]:
    """{external id: (text, current label)} read straight from the store."""
    with ws.engine.connect() as conn:
        items = {row[0]: row[1] for row in conn.execute(sql("SELECT external_id, text FROM item"))}
        labels: dict[str, set[str]] = {}
        for external_id, label in conn.execute(
            sql(
                "SELECT item.external_id, annotation.label FROM annotation "
                "JOIN item ON item.id = annotation.item_id "
                "WHERE annotation.superseded_by IS NULL AND annotation.skipped = 0"
            )
        ):
            labels.setdefault(external_id, set()).add(label)
    result: dict[str, tuple[str, str | None]] = {}
    for external_id, text in items.items():
        current = labels.get(external_id, set())
        assert len(current) <= 1, f"{external_id!r} has several current labels: {current}"
        result[external_id] = (text, next(iter(current), None))
    return result


def write_source_csv(
    path: Path, rows: list[dict[str, Any]], fields: list[str], lineterminator: str = "\r\n"
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator=lineterminator)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return path


def roundtrip(
    rows: list[dict[str, Any]], fields: list[str], fmt: str, root: Path
) -> tuple[Workspace, Workspace, Path]:
    """rows -> CSV -> workspace A -> export(fmt) -> workspace B. Caller closes A and B."""
    source = write_source_csv(root / "source.csv", rows, fields)
    a = Workspace.create(root / "a", labels=LABELS)
    try:
        report = a.import_file(source, **REIMPORT)
        assert report.imported == len(rows)
        exported = root / f"export.{fmt}"
        assert a.export(exported).rows == len(rows)
        b = Workspace.create(root / "b", labels=LABELS)
    except BaseException:
        a.close()
        raise
    try:
        report = b.import_file(exported, **REIMPORT)
        assert (report.imported, report.duplicates) == (len(rows), 0)
    except BaseException:
        a.close()
        b.close()
        raise
    return a, b, exported


def expected(rows: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {row["id"]: (row["text"], row["label"] or None) for row in rows}


# --------------------------------------------------------------------------- (a) awkward CSV

AWKWARD_ROWS: list[dict[str, Any]] = [
    {"id": "1", "text": "plain text", "label": "a", "note": "first"},
    {"id": "007", "text": "comma, inside, twice", "label": "b", "note": "leading zeros id"},
    {"id": "q", "text": 'she said "hi" and ""bye""', "label": "", "note": 'a "quoted" note'},
    {"id": "nl", "text": "line one\nline two\n\nline four", "label": "c", "note": "x\ny"},
    {"id": "crlf", "text": "windows\r\nline\r\nbreaks", "label": "a", "note": "r\r\nn"},
    {"id": "emoji", "text": "emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇫🇷", "label": "", "note": "🙂"},
    {"id": "jp", "text": "日本語のテキストです。", "label": "b", "note": "日本"},
    {"id": "el", "text": "Ελληνικά κείμενα", "label": "c", "note": "Ελ"},
    {"id": "ru", "text": "русский текст, с запятой", "label": "a", "note": "ру"},
    {"id": "he", "text": "עברית ו־العربية ו־हिन्दी", "label": "", "note": "rtl"},
    {"id": "space", "text": "  leading and trailing  ", "label": "b", "note": "  padded  "},
    {"id": "tab", "text": "\ttabbed\tinside\t", "label": "c", "note": "t"},
    {"id": "na", "text": "NA", "label": "a", "note": "NA"},
    {"id": "null", "text": "null", "label": "", "note": "None"},
    {"id": "nan", "text": "nan", "label": "b", "note": "NaN"},
    {"id": "num", "text": "0123", "label": "c", "note": "1.50"},
    {"id": "formula", "text": "=1+1", "label": "a", "note": "-"},
    {"id": "delims", "text": "semi;colon|pipe\ttab", "label": "", "note": ";"},
    {"id": "quote-start", "text": '"starts with a quote', "label": "b", "note": "'"},
    {"id": "backslash", "text": "ends with a backslash \\", "label": "c", "note": "\\n"},
    {"id": "id with spaces", "text": "the id holds spaces", "label": "a", "note": ""},
    {"id": "ünï-ид", "text": "non-ASCII id", "label": "", "note": "é"},
]
AWKWARD_FIELDS = ["id", "text", "label", "note"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_awkward_csv_roundtrips_through_every_format(tmp_path: Path, fmt: str) -> None:
    a, b, first_export = roundtrip(AWKWARD_ROWS, AWKWARD_FIELDS, fmt, tmp_path)
    try:
        want = expected(AWKWARD_ROWS)
        assert stored(a) == want
        assert stored(b) == want

        first_rows = {row["id"]: row for row in read_export(first_export, fmt)}
        assert {k: (v["text"], v["label"] or None) for k, v in first_rows.items()} == want

        second = tmp_path / f"second.{fmt}"
        b.export(second)
        columns = export_columns(second, fmt)
        assert columns == list(ITEM_COLUMNS) + ["note"], "stale or missing columns after re-import"
        second_rows = {row["id"]: row for row in read_export(second, fmt)}
        assert {k: (v["text"], v["label"] or None) for k, v in second_rows.items()} == want
        # The extra field survives both hops (an empty note may come back as null/None).
        assert {k: v["note"] or "" for k, v in second_rows.items()} == {
            row["id"]: row["note"] for row in AWKWARD_ROWS
        }
        for row in second_rows.values():
            assert row["split"] == "pool"
            assert int(row["n_annotations"]) == (1 if row["label"] else 0)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lineterminator", ["\n", "\r\n"])
def test_line_endings_of_the_source_do_not_matter(
    tmp_path: Path, fmt: str, lineterminator: str
) -> None:
    rows = [
        {"id": "1", "text": "one\r\ntwo", "label": "a"},
        {"id": "2", "text": "three\nfour", "label": ""},
        {"id": "3", "text": "five", "label": "c"},
    ]
    source = write_source_csv(tmp_path / "src.csv", rows, ["id", "text", "label"], lineterminator)
    with Workspace.create(tmp_path / "a", labels=LABELS) as a:
        a.import_file(source, **REIMPORT)
        assert stored(a) == expected(rows)
        out = tmp_path / f"out.{fmt}"
        a.export(out)
    with Workspace.create(tmp_path / "b", labels=LABELS) as b:
        b.import_file(out, **REIMPORT)
        assert stored(b) == expected(rows)


@pytest.mark.parametrize("fmt", FORMATS)
def test_source_field_named_like_an_export_column_survives(tmp_path: Path, fmt: str) -> None:
    """An original field called "split" is exported as "source.split" and kept on re-import."""
    rows = [
        {"id": "1", "text": "one", "label": "a", "split": "train"},
        {"id": "2", "text": "two", "label": "", "split": "test"},
    ]
    a, b, _ = roundtrip(rows, ["id", "text", "label", "split"], fmt, tmp_path)
    try:
        assert stored(b) == expected(rows)
        out = tmp_path / f"second.{fmt}"
        b.export(out)
        got = {row["id"]: row for row in read_export(out, fmt)}
        assert {k: v["source.split"] for k, v in got.items()} == {"1": "train", "2": "test"}
        assert {v["split"] for v in got.values()} == {"pool"}
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_exporting_twice_is_stable(tmp_path: Path, fmt: str) -> None:
    """A -> B -> C: the second hop exports the same rows as the first."""
    a, b, first = roundtrip(AWKWARD_ROWS, AWKWARD_FIELDS, fmt, tmp_path)
    try:
        second = tmp_path / f"second.{fmt}"
        b.export(second)
        assert read_export(second, fmt) == read_export(first, fmt)
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------------- (b) property

# Any Unicode text except lone surrogates (not encodable as UTF-8), NUL (refused as binary) and
# U+FEFF (stripped at the ends of every cell by contract).
TEXTS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"),
    min_size=1,
).filter(lambda t: t.strip() != "")
# Ids: the importer strips whitespace around an id on purpose, so ids are drawn from a plain
# alphabet; the texts are what this property is about.
IDS = st.text(alphabet=string.ascii_letters + string.digits + "_.:-", min_size=1, max_size=12)
ROWS = st.lists(
    st.tuples(IDS, TEXTS, st.sampled_from(["a", "b", "c", None])),
    min_size=1,
    max_size=8,
    unique_by=lambda row: row[0],
)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=ROWS)
@example(data=[("x", "a\rb", "a")])  # a lone carriage return inside a cell
@example(data=[("x", "a\r\nb", None), ("y", "\n.", "b"), ("z", '"', "c")])
def test_any_unicode_text_roundtrips(fmt: str, data: list[tuple[str, str, str | None]]) -> None:
    rows = [{"id": i, "text": t, "label": label} for i, t, label in data]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        a, b, _ = roundtrip(rows, ["id", "text", "label"], fmt, root)
        try:
            assert stored(a) == expected(rows), "the CSV import changed a text"
            assert stored(b) == expected(rows), f"the {fmt} export/re-import changed a text"
        finally:
            a.close()
            b.close()


# --------------------------------------------------------------------------- annotation log


def test_annotation_log_records_undo_and_correction(workspace: Workspace, tmp_path: Path) -> None:
    source = write_source_csv(
        tmp_path / "items.csv",
        [{"id": "only", "text": "the one item", "label": ""}],
        ["id", "text", "label"],
    )
    workspace.import_file(source, **REIMPORT)
    user, _token = workspace.add_user("ann", role="annotator")
    assert user.name == "ann"
    item = workspace.next_item("ann")
    assert item is not None
    first = workspace.annotate(item.item_id, "ann", "a")
    workspace.undo("ann")
    second = workspace.annotate(item.item_id, "ann", "b")

    log = tmp_path / "log.csv"
    report = workspace.export(log, annotations=True)
    assert report.kind == "annotations"
    rows = read_export(log, "csv")
    assert export_columns(log, "csv")[:2] == ["annotation_id", "item_id"]
    mine = [r for r in rows if r["item_id"] == "only" and r["annotator"] == "ann"]
    assert len(mine) == 2
    assert [r["label"] for r in mine] == ["a", "b"]
    assert [int(r["annotation_id"]) for r in mine] == [first.id, second.id]
    assert mine[0]["superseded_by"] == mine[1]["annotation_id"]
    assert mine[1]["superseded_by"] == ""
    assert {r["origin"] for r in mine} == {"human"}
    assert {r["skipped"] for r in mine} == {"False"}

    items = tmp_path / "items_out.csv"
    workspace.export(items)
    (row,) = read_export(items, "csv")
    assert row["id"] == "only"
    assert row["label"] == "b"
    assert row["n_annotations"] == "1"


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_annotation_log_in_typed_formats(workspace: Workspace, tmp_path: Path, fmt: str) -> None:
    source = write_source_csv(
        tmp_path / "items.csv",
        [
            {"id": "only", "text": "the one item", "label": ""},
            {"id": "pre", "text": "labelled by the import", "label": "c"},
        ],
        ["id", "text", "label"],
    )
    workspace.import_file(source, **REIMPORT)
    workspace.add_user("ann", role="annotator")
    item = workspace.next_item("ann")
    assert item is not None and item.external_id == "only"
    workspace.annotate(item.item_id, "ann", "a")
    workspace.undo("ann")
    workspace.annotate(item.item_id, "ann", "b")

    log = tmp_path / f"log.{fmt}"
    workspace.export(log, annotations=True)
    rows = read_export(log, fmt)
    imported = [r for r in rows if r["origin"] == "import"]
    assert [(r["item_id"], r["label"]) for r in imported] == [("pre", "c")]
    mine = [r for r in rows if r["annotator"] == "ann"]
    assert len(mine) == 2
    assert mine[0]["superseded_by"] == mine[1]["annotation_id"]
    assert mine[1]["superseded_by"] is None
    assert mine[0]["skipped"] is False

    items = tmp_path / f"items.{fmt}"
    workspace.export(items)
    got = {row["id"]: row for row in read_export(items, fmt)}
    assert (got["only"]["label"], got["only"]["n_annotations"]) == ("b", 1)
    assert (got["pre"]["label"], got["pre"]["n_annotations"]) == ("c", 1)


# --------------------------------------------------------------------------- gold items


@pytest.mark.parametrize("fmt", FORMATS)
def test_gold_items_come_back_as_unlabelled_pool_items(tmp_path: Path, fmt: str) -> None:
    """docs/data.md: importing the whole export as pool makes the gold items unlabelled pool
    items; annotators' answers on a gold item are not pool labels. CSV and Parquet take the
    column-at-a-time path, JSONL the row-by-row one."""
    pool = write_source_csv(
        tmp_path / "pool.csv",
        [
            {"id": "p1", "text": "pool one", "label": "a"},
            {"id": "p2", "text": "pool two", "label": ""},
        ],
        ["id", "text", "label"],
    )
    gold = write_source_csv(
        tmp_path / "gold.csv",
        [
            {"id": "g1", "text": "gold one", "label": "b"},
            {"id": "g2", "text": "gold two", "label": "c"},
        ],
        ["id", "text", "label"],
    )
    with Workspace.create(tmp_path / "a", labels=LABELS) as a:
        a.import_file(pool, **REIMPORT)
        a.import_file(gold, **REIMPORT, split="gold")
        a.add_user("ann")
        a.config = replace(a.config, gold_rate=1.0)  # every claim a hidden gold check
        for _ in range(2):
            item = a.next_item("ann")
            assert item is not None and item.external_id.startswith("g")
            a.annotate(item.item_id, "ann", "a")
        exported = tmp_path / f"export.{fmt}"
        a.export(exported)
    rows = {row["id"]: row for row in read_export(exported, fmt)}
    # The export shows the answers on the gold items beside their gold labels.
    assert {k: (rows[k]["split"], rows[k]["label"], rows[k]["gold_label"]) for k in rows} == {
        "p1": ("pool", "a", None if fmt != "csv" else ""),
        "p2": ("pool", None if fmt != "csv" else "", None if fmt != "csv" else ""),
        "g1": ("gold", "a", "b"),
        "g2": ("gold", "a", "c"),
    }

    with Workspace.create(tmp_path / "b", labels=LABELS) as b:
        report = b.import_file(exported, **REIMPORT)
        assert (report.imported, report.labels_recorded) == (4, 1)
        assert stored(b) == {
            "p1": ("pool one", "a"),
            "p2": ("pool two", None),
            "g1": ("gold one", None),
            "g2": ("gold two", None),
        }
        status = b.status()
        assert status["items"] == {"total": 4, "pool": 4, "gold": 0, "labelled": 1, "removed": 0}


def test_a_label_set_without_the_gold_answers_still_imports_the_export(tmp_path: Path) -> None:
    """The gold rows' labels are dropped before the label check: a workspace whose label set
    lacks an annotator's answer on a gold item still takes the whole export as pool."""
    export = tmp_path / "export.jsonl"
    rows = [
        {"id": "p1", "text": "pool one", "split": "pool", "label": "a"},
        {"id": "g1", "text": "gold one", "split": "gold", "label": "not-a-label"},
    ]
    computed = {c: None for c in ITEM_COLUMNS if c not in {"id", "text", "split", "label"}}
    export.write_text("".join(json.dumps({**computed, **r}) + "\n" for r in rows))
    with Workspace.create(tmp_path / "b", labels=LABELS) as b:
        report = b.import_file(export, **REIMPORT)
        assert (report.imported, report.labels_recorded) == (2, 1)
        assert stored(b) == {"p1": ("pool one", "a"), "g1": ("gold one", None)}
