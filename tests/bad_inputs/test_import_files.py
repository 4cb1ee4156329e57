"""Bad files are refused with a precise message, and a refused import changes nothing.

Every case first imports a small valid file, so "nothing changed" is checked against a store
that already holds items, an import batch and import annotations.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest

from labeling import Workspace
from labeling.data import readers, validation
from labeling.errors import BadInput, ImportFailed
from tests.bad_inputs.store import assert_message, assert_unchanged, fingerprint

SEED_ROWS = [
    {"id": "s1", "text": "seed one", "label": "a"},
    {"id": "s2", "text": "seed two", "label": ""},
    {"id": "s3", "text": "seed three", "label": "c"},
]


def write_csv(path: Path, rows: list[dict[str, str]], fields: list[str] | None = None) -> Path:
    fields = fields or list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[object]) -> Path:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def write_parquet(path: Path, rows: list[dict[str, object]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture
def seeded(workspace: Workspace, tmp_path: Path) -> Workspace:
    """The workspace with three items already imported (two of them labelled)."""
    report = workspace.import_file(
        write_csv(tmp_path / "seed.csv", SEED_ROWS),
        text_field="text",
        id_field="id",
        label_field="label",
    )
    assert report.imported == 3
    return workspace


def expect_refusal(ws: Workspace, path: Path, *facts: str, **options: object) -> str:
    """Import ``path``, expect ImportFailed naming every fact, and an unchanged store."""
    options.setdefault("text_field", "text")
    before = fingerprint(ws)
    with pytest.raises(ImportFailed) as caught:
        ws.import_file(path, **options)  # type: ignore[arg-type]
    message = str(caught.value)
    assert_message(message, *facts)
    assert_unchanged(before, ws)
    return message


# --------------------------------------------------------------------------- whole-file faults


def test_import_failed_is_bad_input() -> None:
    assert issubclass(ImportFailed, BadInput)
    assert ImportFailed.exit_code == 2


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_missing_file(seeded: Workspace, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"nowhere{suffix}"
    expect_refusal(seeded, path, path.name, "no such file")


def test_folder_instead_of_file(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "folder.csv"
    path.mkdir()
    expect_refusal(seeded, path, path.name, "not a file")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_empty_file(seeded: Workspace, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    expect_refusal(seeded, path, path.name, "the file is empty", "expected a header row")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
@pytest.mark.parametrize("content", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\n\n", b" \r\n\t\n"])
def test_bom_or_whitespace_only_file(
    seeded: Workspace, tmp_path: Path, suffix: str, content: bytes
) -> None:
    path = tmp_path / f"bom{suffix}"
    path.write_bytes(content)
    expect_refusal(seeded, path, path.name, "the file is empty")


@pytest.mark.parametrize("header", ["id,text,label\n", "id,text,label", "\ufeffid,text,label\r\n"])
def test_header_only(seeded: Workspace, tmp_path: Path, header: str) -> None:
    path = tmp_path / "header_only.csv"
    path.write_text(header, encoding="utf-8", newline="")
    expect_refusal(
        seeded,
        path,
        path.name,
        "no data rows",
        "expected at least one row after the header",
        id_field="id",
        label_field="label",
    )


def test_jsonl_line_numbers_count_blank_lines(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text('\n{"text": "fine"}\n   \n x \n', encoding="utf-8")
    expect_refusal(seeded, path, path.name, "line 4", "invalid JSON")


@pytest.mark.parametrize("suffix", [".xlsx", ".json", ""])
def test_unknown_extension(seeded: Workspace, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    path.write_text("id,text\n1,hello\n", encoding="utf-8")
    shown = repr(suffix) if suffix else "'(none)'"
    message = expect_refusal(
        seeded,
        path,
        path.name,
        f"extension {shown}",
        "expected one of",
        ".csv",
        ".jsonl",
        ".parquet",
        "--format",
    )
    assert message.startswith(str(path))


def test_unknown_explicit_format(seeded: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ok.csv", [{"text": "hello"}])
    expect_refusal(
        seeded, path, "'--format'", "expected csv, tsv, jsonl or parquet", "'xlsx'", format="xlsx"
    )


def test_explicit_format_overrides_unknown_extension(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "data.export"
    path.write_text("id,text\nx1,hello\n", encoding="utf-8")
    report = seeded.import_file(path, text_field="text", id_field="id", format="csv")
    assert report.imported == 1


def test_truncated_parquet(seeded: Workspace, tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "cut.parquet",
        [{"id": f"p{i}", "text": f"text number {i}", "label": "a"} for i in range(500)],
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect_refusal(
        seeded, path, path.name, "not a readable Parquet file", id_field="id", label_field="label"
    )


def test_csv_named_parquet_is_refused(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "liar.parquet"
    path.write_text("id,text\n1,hello\n", encoding="utf-8")
    expect_refusal(seeded, path, path.name, "not a readable Parquet file")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_binary_garbage(seeded: Workspace, tmp_path: Path, suffix: str) -> None:
    rng = random.Random(20240501)
    garbage = bytearray(rng.randrange(1, 256) for _ in range(4096))  # no NUL yet
    garbage[37] = 0
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(bytes(garbage))
    expect_refusal(seeded, path, path.name, "NUL byte at byte 37", "expected a UTF-8 text file")


def test_invalid_utf8_in_csv(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    content = "id,text\n1,plain\n2,café au lait\n"
    path.write_bytes(content.encode("latin-1"))
    offset = content.encode("latin-1").index(b"\xe9")
    expect_refusal(
        seeded, path, path.name, "not valid UTF-8", f"byte {offset}", "UTF-8", id_field="id"
    )


def test_invalid_utf8_in_csv_beyond_the_sniffed_start(seeded: Workspace, tmp_path: Path) -> None:
    """A latin-1 byte far into the file (after the first 64 KiB) must still be located."""
    lines = [b"id,text"] + [f"{i},hello world {i}".encode() for i in range(1, 10_001)]
    bad_row = 8_000
    lines[bad_row] = f"{bad_row},café".encode("latin-1")
    path = tmp_path / "late_latin1.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    offset = path.read_bytes().index(b"\xe9")
    assert offset > readers.SNIFF_BYTES
    message = expect_refusal(seeded, path, path.name, "not valid UTF-8", id_field="id")
    located = (
        f"row {bad_row}" in message
        or f"line {bad_row + 1}" in message
        or f"byte {offset}" in message
    )
    assert located, f"the message does not locate the bad byte (data row {bad_row}): {message!r}"


def test_invalid_utf8_in_jsonl(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    lines = [json.dumps({"text": f"line {i}"}).encode() for i in range(1, 5)]
    lines.append('{"text": "café"}'.encode("latin-1"))
    path.write_bytes(b"\n".join(lines) + b"\n")
    offset = path.read_bytes().index(b"\xe9")
    # Within the first 64 KiB the sniffing check answers, with the exact byte offset.
    message = expect_refusal(seeded, path, path.name, "not valid UTF-8")
    assert "line 5" in message or f"byte {offset}" in message, message


def test_invalid_utf8_in_jsonl_beyond_the_sniffed_start(seeded: Workspace, tmp_path: Path) -> None:
    lines = [json.dumps({"text": f"line number {i}"}).encode() for i in range(1, 5_001)]
    lines[3_999] = '{"text": "café"}'.encode("latin-1")
    path = tmp_path / "late_latin1.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert path.read_bytes().index(b"\xe9") > readers.SNIFF_BYTES
    expect_refusal(seeded, path, path.name, "line 4000", "not valid UTF-8")


# --------------------------------------------------------------------------- field mapping


def test_wrong_text_field_lists_the_files_fields_csv(seeded: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "fields.csv", [{"id": "1", "body": "hello", "topic": "a"}])
    expect_refusal(
        seeded,
        path,
        path.name,
        "no field 'text'",
        "--text-field",
        "'id'",
        "'body'",
        "'topic'",
        text_field="text",
    )


def test_wrong_text_field_lists_the_files_fields_parquet(seeded: Workspace, tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "fields.parquet", [{"id": "1", "body": "hello", "topic": "a"}])
    expect_refusal(
        seeded, path, path.name, "no field 'text'", "--text-field", "'id'", "'body'", "'topic'"
    )


def test_wrong_text_field_lists_the_files_fields_jsonl(seeded: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "fields.jsonl", [{"id": "1", "body": "hello", "topic": "a"}])
    expect_refusal(seeded, path, path.name, "'text'", "'id'", "'body'", "'topic'")


@pytest.mark.parametrize(
    ("option", "flag"), [("id_field", "--id-field"), ("label_field", "--label-field")]
)
def test_wrong_id_or_label_field(seeded: Workspace, tmp_path: Path, option: str, flag: str) -> None:
    path = write_csv(tmp_path / "fields.csv", [{"id": "1", "text": "hello", "label": "a"}])
    expect_refusal(
        seeded,
        path,
        path.name,
        "no field 'nope'",
        flag,
        "'id', 'text', 'label'",
        **{option: "nope"},
    )


def test_csv_duplicate_header_name(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "dup_header.csv"
    path.write_text("id,text,label,text\n1,hello,a,again\n", encoding="utf-8")
    expect_refusal(seeded, path, path.name, "header", "'text'", "twice", id_field="id")


def test_csv_duplicate_header_name_after_bom_stripping(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "dup_header_bom.csv"
    path.write_text("\ufefftext,id,\ufefftext\nhello,1,again\n", encoding="utf-8")
    expect_refusal(seeded, path, path.name, "'text'", "twice", id_field="id")


def test_csv_unnamed_header_column(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "unnamed.csv"
    path.write_text("id,,text\n1,x,hello\n", encoding="utf-8")
    expect_refusal(seeded, path, path.name, "column 2", "no name", id_field="id")


def test_gold_split_without_label_field(seeded: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gold.csv", [{"id": "g1", "text": "hello", "label": "a"}])
    expect_refusal(
        seeded, path, "'--label-field'", "required", "--split gold", id_field="id", split="gold"
    )


def test_unknown_split(seeded: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ok.csv", [{"id": "x1", "text": "hello"}])
    expect_refusal(seeded, path, "'--split'", "expected pool or gold", "'train'", split="train")


# --------------------------------------------------------------------------- row faults


def test_unknown_labels_are_listed_with_counts(seeded: Workspace, tmp_path: Path) -> None:
    rows = [
        {"id": "1", "text": "one", "label": "a"},
        {"id": "2", "text": "two", "label": "spam"},
        {"id": "3", "text": "three", "label": "b"},
        {"id": "4", "text": "four", "label": "ham"},
        {"id": "5", "text": "five", "label": "spam"},
        {"id": "6", "text": "six", "label": ""},
        {"id": "7", "text": "seven", "label": "spam"},
    ]
    path = write_csv(tmp_path / "labels.csv", rows)
    message = expect_refusal(
        seeded,
        path,
        path.name,
        "field 'label'",
        "(a, b, c)",
        "'spam' (3 rows, first at row 2)",
        "'ham' (1 row, first at row 4)",
        id_field="id",
        label_field="label",
    )
    assert message.index("'spam'") < message.index("'ham'")


def test_unknown_labels_in_jsonl_counted_by_line(seeded: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "labels.jsonl",
        [
            {"text": "one", "label": "A"},
            {"text": "two", "label": "a"},
            {"text": "three", "label": "A"},
            {"text": "four", "label": "d"},
        ],
    )
    expect_refusal(
        seeded,
        path,
        path.name,
        "'A' (2 lines, first at line 1)",
        "'d' (1 line, first at line 4)",
        label_field="label",
    )


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_label_on_gold_row(seeded: Workspace, tmp_path: Path, empty: str) -> None:
    rows = [
        {"id": "g1", "text": "one", "label": "a"},
        {"id": "g2", "text": "two", "label": empty},
        {"id": "g3", "text": "three", "label": "b"},
    ]
    path = write_csv(tmp_path / "gold.csv", rows)
    expect_refusal(
        seeded,
        path,
        path.name,
        "row 2, field 'label'",
        "empty",
        "every gold item needs its label",
        id_field="id",
        label_field="label",
        split="gold",
    )


def test_null_label_on_gold_jsonl_line(seeded: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "gold.jsonl",
        [{"id": "g1", "text": "one", "label": "a"}, {"id": "g2", "text": "two", "label": None}],
    )
    expect_refusal(
        seeded,
        path,
        path.name,
        "line 2, field 'label'",
        "every gold item needs its label",
        id_field="id",
        label_field="label",
        split="gold",
    )


def test_malformed_jsonl_at_line_7(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    good = [json.dumps({"id": f"j{i}", "text": f"text {i}"}) for i in range(1, 7)]
    path.write_text("\n".join(good) + '\n{"id": "j7", "text": "unterminated\n', encoding="utf-8")
    expect_refusal(seeded, path, path.name, "line 7", "invalid JSON", id_field="id")


@pytest.mark.parametrize(
    ("value", "kind"),
    [([1, "two"], "an array"), ("just text", "a string"), (42, "a number"), (None, "null")],
)
def test_jsonl_line_not_an_object(
    seeded: Workspace, tmp_path: Path, value: object, kind: str
) -> None:
    path = write_jsonl(tmp_path / "not_object.jsonl", [{"text": "fine"}, {"text": "ok"}, value])
    expect_refusal(seeded, path, path.name, "line 3", f"expected a JSON object, found {kind}")


@pytest.mark.parametrize("where", ["text", "other"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_ten_megabyte_cell(seeded: Workspace, tmp_path: Path, where: str, fmt: str) -> None:
    huge = "x" * 10_000_000
    rows = [
        {"id": "1", "text": "fine", "other": "small"},
        {"id": "2", "text": "also fine", "other": "small"},
    ]
    rows[1][where] = huge
    path = tmp_path / f"huge.{fmt}"
    {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}[fmt](path, rows)
    word = "line" if fmt == "jsonl" else "row"
    expect_refusal(
        seeded,
        path,
        path.name,
        f"{word} 2, field '{where}'",
        "10,000,000 characters",
        "at most 1,000,000",
        id_field="id",
    )


def test_cell_of_exactly_the_limit_is_accepted(seeded: Workspace, tmp_path: Path) -> None:
    text = "y" * validation.MAX_CELL_CHARS
    path = write_csv(tmp_path / "limit.csv", [{"id": "big", "text": text}])
    report = seeded.import_file(path, text_field="text", id_field="id")
    assert report.imported == 1


@pytest.mark.parametrize("empty", ["", "   ", "\t \n", "\ufeff", "\ufeff \ufeff"])
def test_empty_text_in_row_3(seeded: Workspace, tmp_path: Path, empty: str) -> None:
    rows = [
        {"id": "1", "text": "one"},
        {"id": "2", "text": "two"},
        {"id": "3", "text": empty},
        {"id": "4", "text": "four"},
    ]
    path = write_csv(tmp_path / "empty_text.csv", rows)
    expect_refusal(
        seeded, path, path.name, "row 3, field 'text'", "the text is empty", id_field="id"
    )


@pytest.mark.parametrize("bad", [None, 7, ["a list"], {"an": "object"}])
def test_jsonl_text_not_a_string(seeded: Workspace, tmp_path: Path, bad: object) -> None:
    path = write_jsonl(tmp_path / "text_type.jsonl", [{"text": "ok"}, {"text": bad}])
    expect_refusal(seeded, path, path.name, "line 2, field 'text'", "expected text")


def test_jsonl_line_without_the_text_field(seeded: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "no_text.jsonl", [{"text": "ok"}, {"body": "where"}])
    expect_refusal(seeded, path, path.name, "line 2, field 'text'", "missing")


@pytest.mark.parametrize("empty", ["", "  "])
def test_missing_id_value_csv(seeded: Workspace, tmp_path: Path, empty: str) -> None:
    rows = [{"id": "1", "text": "one"}, {"id": empty, "text": "two"}]
    path = write_csv(tmp_path / "no_id.csv", rows)
    expect_refusal(
        seeded, path, path.name, "row 2, field 'id'", "expected a non-empty id", id_field="id"
    )


@pytest.mark.parametrize(
    ("second", "fact"),
    [
        ({"id": None, "text": "two"}, "expected a non-empty id"),
        ({"id": "", "text": "two"}, "expected a non-empty id"),
        ({"id": 1.5, "text": "two"}, "expected a non-empty id"),
        ({"id": True, "text": "two"}, "expected a non-empty id"),
        ({"text": "two"}, "missing (the id field)"),
    ],
)
def test_missing_or_bad_id_value_jsonl(
    seeded: Workspace, tmp_path: Path, second: dict[str, object], fact: str
) -> None:
    path = write_jsonl(tmp_path / "no_id.jsonl", [{"id": "1", "text": "one"}, second])
    expect_refusal(seeded, path, path.name, "line 2, field 'id'", fact, id_field="id")


def test_missing_id_value_parquet(seeded: Workspace, tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "no_id.parquet", [{"id": "1", "text": "one"}, {"id": None, "text": "two"}]
    )
    expect_refusal(
        seeded, path, path.name, "row 2, field 'id'", "expected a non-empty id", id_field="id"
    )


def test_too_long_id(seeded: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "long_id.csv", [{"id": "i" * 513, "text": "one"}])
    expect_refusal(
        seeded, path, path.name, "row 1, field 'id'", "513 characters", "at most 512", id_field="id"
    )


def ragged_facts(message: str, path: Path) -> str:
    """The part of a ragged-row message after the file name, checked for both cell counts."""
    detail = message.split(path.name, 1)[1]
    assert "malformed CSV" in detail, message
    assert re.search(r"\b3\b", detail) and re.search(r"\b4\b", detail), (
        f"the message should give the expected (3) and the found (4) number of cells: {message!r}"
    )
    return detail


def test_csv_ragged_row_too_many_fields(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("id,text,label\n1,one,a\n2,two,b,EXTRA\n3,three,c\n", encoding="utf-8")
    message = expect_refusal(seeded, path, path.name, id_field="id", label_field="label")
    detail = ragged_facts(message, path)
    # The offending row is data row 2, on physical line 3 (line 1 is the header).
    assert "row 2" in detail or "line 3" in detail, message


def test_csv_ragged_row_after_a_multiline_cell_is_located(
    seeded: Workspace, tmp_path: Path
) -> None:
    """With a quoted newline earlier in the file, the message must still point at the bad row.

    The offending record is data row 3, which starts on physical line 5.
    """
    path = tmp_path / "ragged_multiline.csv"
    path.write_text(
        'id,text,label\n1,one,a\n2,"two\nlines",b\n3,three,c,EXTRA\n4,four,a\n', encoding="utf-8"
    )
    message = expect_refusal(seeded, path, path.name, id_field="id", label_field="label")
    detail = ragged_facts(message, path)
    assert "row 3" in detail or "line 5" in detail, (
        f"the message does not point at data row 3 / line 5: {message!r}"
    )


def test_csv_unterminated_quote(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('id,text\n1,"never closed\n2,two\n', encoding="utf-8")
    expect_refusal(seeded, path, path.name, "malformed CSV", id_field="id")


def test_error_message_has_no_trailing_whitespace(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("id,text\n1,one\n2,two,EXTRA\n", encoding="utf-8")
    message = expect_refusal(seeded, path, path.name, id_field="id")
    assert message == message.strip(), f"message ends in whitespace: {message!r}"


# --------------------------------------------------------------------------- many chunks


def make_rows(n: int) -> list[dict[str, str]]:
    labels = ["a", "b", "c", ""]
    return [
        {"id": f"r{i}", "text": f"row text {i}, with a comma", "label": labels[i % 4]}
        for i in range(1, n + 1)
    ]


@pytest.mark.parametrize(
    ("fault", "fact"),
    [
        ("empty_text", "row 170, field 'text': the text is empty"),
        ("unknown_label", "'zzz' (1 row, first at row 170)"),
        ("empty_id", "row 170, field 'id'"),
    ],
)
def test_bad_row_deep_in_a_multi_chunk_csv_changes_nothing(
    seeded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, fact: str
) -> None:
    monkeypatch.setattr(readers, "CHUNK_ROWS", 50)
    rows = make_rows(230)
    bad = rows[169]
    if fault == "empty_text":
        bad["text"] = ""
    elif fault == "unknown_label":
        bad["label"] = "zzz"
    else:
        bad["id"] = ""
    path = write_csv(tmp_path / "deep.csv", rows)
    expect_refusal(seeded, path, path.name, fact, id_field="id", label_field="label")


def test_malformed_line_deep_in_a_multi_chunk_jsonl_changes_nothing(
    seeded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "CHUNK_ROWS", 50)
    path = write_jsonl(tmp_path / "deep.jsonl", make_rows(230))
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[189] = lines[189][:-1]  # drop the closing brace of line 190
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expect_refusal(seeded, path, path.name, "line 190", "invalid JSON", id_field="id")


def test_bad_row_deep_in_a_multi_chunk_parquet_changes_nothing(
    seeded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "CHUNK_ROWS", 50)
    rows = make_rows(230)
    rows[199]["text"] = "   "
    path = write_parquet(tmp_path / "deep.parquet", rows)
    expect_refusal(
        seeded,
        path,
        path.name,
        "row 200, field 'text'",
        "empty",
        id_field="id",
        label_field="label",
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_valid_multi_chunk_file_imports_every_row(
    seeded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(readers, "CHUNK_ROWS", 50)
    rows = make_rows(230)
    path = tmp_path / f"many.{fmt}"
    {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}[fmt](path, rows)
    report = seeded.import_file(path, text_field="text", id_field="id", label_field="label")
    assert (report.rows_read, report.imported, report.duplicates) == (230, 230, 0)
    assert report.labels_recorded == sum(1 for r in rows if r["label"])
    assert seeded.status()["items"]["total"] == 3 + 230


# --------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize("chunk_rows", [2, readers.CHUNK_ROWS])
def test_duplicate_ids_are_skipped_and_counted(
    seeded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    monkeypatch.setattr(readers, "CHUNK_ROWS", chunk_rows)
    rows = [
        {"id": "s2", "text": "collides with the store", "label": "b"},
        {"id": "n1", "text": "new one", "label": "a"},
        {"id": "n2", "text": "new two", "label": ""},
        {"id": "n1", "text": "repeat of n1 in the file", "label": "c"},
        {"id": "s1", "text": "also collides with the store", "label": "c"},
        {"id": "n3", "text": "new three", "label": "c"},
        {"id": "n1", "text": "n1 yet again", "label": "b"},
    ]
    path = write_csv(tmp_path / "dups.csv", rows)
    report = seeded.import_file(path, text_field="text", id_field="id", label_field="label")
    assert report.rows_read == 7
    assert report.imported == 3
    assert report.duplicates_in_file == 2
    assert report.duplicates_in_store == 2
    assert report.duplicates == 4
    assert report.labels_recorded == 2  # n1 -> a, n3 -> c; n2 is unlabelled

    out = tmp_path / "after.jsonl"
    seeded.export(out)
    items = {
        row["id"]: row for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())
    }
    assert set(items) == {"s1", "s2", "s3", "n1", "n2", "n3"}
    # The first occurrence wins; the store's items are left as they were.
    assert items["n1"]["text"] == "new one" and items["n1"]["label"] == "a"
    assert items["s1"]["text"] == "seed one" and items["s1"]["label"] == "a"
    assert items["s2"]["text"] == "seed two" and items["s2"]["label"] is None
    assert items["n1"]["n_annotations"] == 1


def test_reimporting_the_same_file_imports_nothing(seeded: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "seed_again.csv", SEED_ROWS)
    before = seeded.status()
    report = seeded.import_file(path, text_field="text", id_field="id", label_field="label")
    assert (report.rows_read, report.imported, report.duplicates_in_store) == (3, 0, 3)
    assert report.labels_recorded == 0
    assert seeded.status()["items"] == before["items"]
    assert seeded.status()["annotations"] == before["annotations"]


def test_same_text_without_id_field_is_a_duplicate(seeded: Workspace, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "no_ids.csv",
        [{"text": "same words"}, {"text": "other words"}, {"text": "same words"}],
    )
    report = seeded.import_file(path, text_field="text")
    assert (report.imported, report.duplicates_in_file) == (2, 1)
    again = seeded.import_file(path, text_field="text")
    # Every row's id is in the workspace now: that comes first, wherever the chunks end.
    assert (again.imported, again.duplicates_in_store, again.duplicates_in_file) == (0, 3, 0)


def test_message_names_the_file_not_a_regex_accident(seeded: Workspace, tmp_path: Path) -> None:
    """pytest.raises(match=...) style check on a file name with regex metacharacters."""
    path = tmp_path / "odd (name) [1].csv"
    path.write_text("id,text\n1,\n", encoding="utf-8")
    before = fingerprint(seeded)
    with pytest.raises(ImportFailed, match=re.escape(path.name) + r".*row 1, field 'text'"):
        seeded.import_file(path, text_field="text", id_field="id")
    assert_unchanged(before, seeded)


def test_many_distinct_unknown_labels_stay_bounded(
    seeded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A free-text column mapped as the label field: the error stays short and bounded."""
    monkeypatch.setattr(validation, "MAX_UNKNOWN_LABELS", 3)
    path = tmp_path / "free_text_labels.csv"
    rows = "".join(f"{i},text {i},note {i}\n" for i in range(1, 8))
    path.write_text("id,text,label\n" + rows, encoding="utf-8")
    message = expect_refusal(
        seeded,
        path,
        "'note 1' (1 row, first at row 1)",
        "'note 3' (1 row, first at row 3)",
        "and 4 more rows with other unknown labels",
        id_field="id",
        label_field="label",
    )
    assert "note 4" not in message


@pytest.mark.parametrize(
    "line",
    ['{"text": ' + "[" * 100_000 + "]" * 100_000 + "}", '{"text": "x", "n": ' + "9" * 5000 + "}"],
    ids=["deep-nesting", "huge-integer"],
)
def test_jsonl_that_json_cannot_hold(seeded: Workspace, tmp_path: Path, line: str) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    expect_refusal(seeded, path, "odd.jsonl", "line 2", "too deeply nested or a number too long")


def test_folder_without_extension(seeded: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    expect_refusal(seeded, folder, "data: not a file")


# --------------------------------------------------------------------------- BOM, NUL, encodings


def test_concatenated_csv_files_repeat_the_header(seeded: Workspace, tmp_path: Path) -> None:
    """``cat a.csv b.csv``: the second file's BOM and header land mid-file as a data row."""
    path = tmp_path / "joined.csv"
    part = "\ufeffid,text,label\r\n{0},text {0},a\r\n"
    path.write_bytes((part.format("j1") + part.format("j2")).encode("utf-8"))
    expect_refusal(
        seeded,
        path,
        path.name,
        "row 2 repeats the header",
        "joined",
        id_field="id",
        label_field="label",
    )


def test_repeated_header_without_bom_is_refused_too(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("text,id\nfirst,1\ntext,id\nsecond,2\n", encoding="utf-8")
    expect_refusal(seeded, path, path.name, "row 2 repeats the header", id_field="id")


def test_bom_at_a_jsonl_line_start_is_dropped(seeded: Workspace, tmp_path: Path) -> None:
    """Joined JSONL files: a BOM starting line 2 is dropped, as at the ends of CSV cells."""
    path = tmp_path / "joined.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"id": "b1", "text": "one"}\n\xef\xbb\xbf{"id": "b2", "text": "two"}\n'
    )
    report = seeded.import_file(path, text_field="text", id_field="id")
    assert report.imported == 2
    out = tmp_path / "out.jsonl"
    seeded.export(out)
    ids = [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert ids[-2:] == ["b1", "b2"]


def test_bom_in_a_header_cell_is_dropped(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "bom_cell.csv"
    path.write_text("id,\ufefftext\nh1,\ufeffhello\ufeff\n", encoding="utf-8")
    report = seeded.import_file(path, text_field="text", id_field="id")
    assert report.imported == 1 and report.fields == ["id", "text"]


def test_bom_in_a_header_cell_with_a_wrong_field_is_named_cleanly(
    seeded: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "bom_cell.csv"
    path.write_text("id,\ufeffbody\nh1,hello\n", encoding="utf-8")
    message = expect_refusal(seeded, path, path.name, "no field 'text'", "'body'", id_field="id")
    assert "\ufeff" not in message


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_nul_character_deep_in_the_file(seeded: Workspace, tmp_path: Path, fmt: str) -> None:
    """Past the 64 KiB that are sniffed: every cell is still checked."""
    rows: list[dict[str, str]] = [{"id": f"n{i}", "text": f"hello {i}"} for i in range(6_000)]
    rows[5_500]["text"] = "bad\x00text"
    path = tmp_path / f"nul.{fmt}"
    if fmt == "csv":
        write_csv(path, rows)
        assert path.read_bytes().index(b"\x00") > readers.SNIFF_BYTES
    elif fmt == "jsonl":
        write_jsonl(path, rows)  # json.dumps writes the NUL as the escape \u0000
        assert b"\x00" not in path.read_bytes()
    else:
        write_parquet(path, rows)
    word = "line" if fmt == "jsonl" else "row"
    expect_refusal(
        seeded,
        path,
        path.name,
        f"{word} 5501, field 'text'",
        "NUL character",
        "position 4",
        id_field="id",
    )


def test_nul_byte_near_the_start(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "nul_early.csv"
    path.write_bytes(b"id,text\nq1,fine\nq2,ab\x00c\n")
    expect_refusal(seeded, path, path.name, "NUL byte at byte 21", "line 3", id_field="id")


@pytest.mark.parametrize(
    ("encoding", "fact"),
    [
        ("utf-16", "UTF-16 (little-endian byte order mark)"),
        ("utf-16-be", "UTF-16 (big-endian, no byte order mark)"),
        ("utf-16-le", "UTF-16 (little-endian, no byte order mark)"),
        ("utf-32", "UTF-32 (little-endian byte order mark)"),
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_utf16_and_utf32_files(
    seeded: Workspace, tmp_path: Path, encoding: str, fact: str, suffix: str
) -> None:
    path = tmp_path / f"wide{suffix}"
    text = "id,text\nw1,hello\n" if suffix == ".csv" else '{"id": "w1", "text": "hello"}\n'
    path.write_bytes(text.encode(encoding))
    expect_refusal(seeded, path, path.name, fact, "not UTF-8", "save the file as UTF-8")


def test_windows_1252_jsonl(seeded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "cp1252.jsonl"
    path.write_bytes('{"id": "c1", "text": "smart \u201cquotes\u201d"}\n'.encode("cp1252"))
    expect_refusal(seeded, path, path.name, "not valid UTF-8", "byte 28", "line 1")


# --------------------------------------------------------------------------- width


def test_csv_with_100k_columns_fails_fast_in_bounded_memory(
    seeded: Workspace, tmp_path: Path
) -> None:
    """A header of 100,001 names (about 700 KB, past the sniffed 64 KiB) and wide rows."""
    import tracemalloc

    names = [f"c{i}" for i in range(100_000)] + ["text"]
    path = tmp_path / "wide.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(",".join(names) + "\n")
        row = ",".join("x" for _ in names) + "\n"
        for _ in range(20):
            fh.write(row)
    tracemalloc.start()
    try:
        expect_refusal(seeded, path, path.name, "the header has 100,001 columns", "at most 10,000")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"refusing a wide file used {peak / 2**20:.0f} MiB"


def test_header_longer_than_the_limit(
    seeded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_HEADER_BYTES", 256 << 10)
    path = tmp_path / "endless_header.csv"
    path.write_text("text," + "x" * (400 << 10) + "\nhello,1\n", encoding="utf-8")
    expect_refusal(seeded, path, path.name, "header is longer than", "at most 10,000 columns")


def test_jsonl_with_too_many_distinct_fields(
    seeded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validation, "MAX_FIELDS", 50)
    rows = [{"text": "ok", **{f"k{i}": i for i in range(30)}}]
    rows.append({"text": "wide", **{f"w{i}": i for i in range(30)}})
    path = write_jsonl(tmp_path / "keys.jsonl", rows)
    expect_refusal(seeded, path, path.name, "line 2", "more than 50 distinct fields")


@pytest.mark.parametrize(
    "rows",
    [
        "s9,hello, world\ns10,fine\n",  # an unquoted comma in the first row's text
        "s9,hello,\ns10,fine,\n",  # a delimiter at the end of every row
        "s9,item 9, word9 and word9\ns10,item 10, word1 and word1\n",  # every row one cell over
    ],
)
def test_a_first_row_with_more_cells_than_the_header_is_refused(
    seeded: Workspace, tmp_path: Path, rows: str
) -> None:
    """pandas took such a row's extra first cell as an index and shifted every column by one:
    ids were imported as texts and texts as ids, silently (the stress pool did exactly this)."""
    path = tmp_path / "shifted.csv"
    path.write_text("id,text\n" + rows, encoding="utf-8")
    before = fingerprint(seeded)
    with pytest.raises(ImportFailed) as caught:
        seeded.import_file(path, text_field="text", id_field="id")
    assert_message(str(caught.value), "shifted.csv", "row 1 has 3 cells; expected 2")
    assert_unchanged(before, seeded)
