"""Import of CSV/TSV, JSONL and Parquet files into the store.

Two passes over the file, each streamed in chunks so memory stays bounded: the first validates
every row and writes nothing; the second writes, in one transaction, only when the first found
no fault. A bad file therefore changes nothing, and its error names the row and the field.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, func, select
from sqlmodel import col

from labeling.annotation.users import system_annotator
from labeling.data.exporter import ITEM_COLUMNS
from labeling.errors import ImportFailed
from labeling.store import db
from labeling.store.bulk import bulk_insert_tuples
from labeling.store.models import SPLITS, Annotation, ImportBatch, Item, utcnow

CHUNK_ROWS = 20_000
# One cell may hold at most this many characters: a 1 MB "text" is a broken file, not an item.
MAX_CELL_CHARS = 1_000_000
MAX_ID_CHARS = 512
MAX_FIELDS = 10_000
# The header record is read whole before the file is parsed; 10,000 names fit well within this.
MAX_HEADER_BYTES = 4 << 20
# Distinct unknown labels remembered for the error message (a free-text column mapped as the
# label field must not grow a dictionary with the file).
MAX_UNKNOWN_LABELS = 1_000
SNIFF_BYTES = 64 * 1024
BOM = "\ufeff"

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# Columns that labelloop's own export computes. Re-importing an export keeps them out of the
# items' source rows, so a round trip does not pile up stale copies of them.
EXPORT_COMPUTED_COLUMNS = tuple(c for c in ITEM_COLUMNS if c not in {"id", "text", "label"})
# The computed columns that tell a file is a labelloop export: exports made before the
# ``decided_by`` column are recognised too.
EXPORT_SIGNATURE = tuple(c for c in EXPORT_COMPUTED_COLUMNS if c != "decided_by")

ProgressCallback = Callable[[str, int, int], None]


@dataclass
class ImportReport:
    """What an import did. ``duplicates`` counts rows skipped for an id already seen,
    ``duplicate_texts`` rows whose text was already seen under another id."""

    file: str
    format: str
    split: str
    rows_read: int = 0
    imported: int = 0
    duplicates: int = 0
    duplicates_in_file: int = 0
    duplicates_in_store: int = 0
    # Rows whose text is already in the workspace, or earlier in the file, under another id:
    # skipped unless ``allow_duplicate_texts`` (then imported, and still counted here).
    duplicate_texts: int = 0
    duplicate_texts_in_file: int = 0
    duplicate_texts_in_store: int = 0
    allow_duplicate_texts: bool = False
    labels_recorded: int = 0
    batch_id: int | None = None
    seconds: float = 0.0
    fields: list[str] = field(default_factory=list)
    # The drift check of a pool import against the labelled set (see labeling.data.drift).
    drift: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def duplicate_texts_warning(
    report: ImportReport, *, option: str = "--allow-duplicate-texts"
) -> str | None:
    """The words for an import's repeated texts, or None when there were none. ``option``
    names the switch that keeps them (the CLI's flag, or the Data page's checkbox)."""
    n = report.duplicate_texts
    if not n:
        return None
    where = []
    if report.duplicate_texts_in_store:
        where.append(f"{report.duplicate_texts_in_store:,} already in the workspace")
    if report.duplicate_texts_in_file:
        where.append(f"{report.duplicate_texts_in_file:,} earlier in the file")
    rows = f"{n:,} {'row' if n == 1 else 'rows'}"
    if report.allow_duplicate_texts:
        return (
            f"imported {rows} whose text was already there under another id "
            f"({', '.join(where)}), as {option} asks"
        )
    return (
        f"skipped {rows} whose text is already there under another id ({', '.join(where)}); "
        f"use {option} to import them"
    )


class _Chunk:
    """Up to ``CHUNK_ROWS`` rows of a file, with their 1-based row (or line) numbers.

    Readers of tabular files (CSV, Parquet) give ``columns`` (each field's cells in row
    order), from which the checks and the write work a column at a time; ``rows`` are built
    from them only when asked for. JSONL gives rows (its lines may differ in fields).
    """

    def __init__(
        self,
        numbers: Sequence[int],
        position: int,
        *,
        rows: list[dict[str, Any]] | None = None,
        columns: dict[str, list[Any]] | None = None,
    ) -> None:
        self.numbers = numbers
        self.position = position
        self.columns = columns
        self._rows = rows

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            assert self.columns is not None
            names = list(self.columns)
            self._rows = [
                dict(zip(names, row, strict=True))
                for row in zip(*self.columns.values(), strict=True)
            ]
        return self._rows

    def __len__(self) -> int:
        return len(self.numbers)


# --------------------------------------------------------------------------- readers


def detect_format(path: Path, explicit: str | None = None, *, name: str | None = None) -> str:
    """The import format: ``explicit``, else the one the extension says. ``name``: what to
    call the file in messages (default: the path)."""
    if explicit:
        if explicit not in {"csv", "tsv", "jsonl", "parquet"}:
            raise ImportFailed(
                f"option '--format': expected csv, tsv, jsonl or parquet, found {explicit!r}"
            )
        return explicit
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise ImportFailed(
            f"{name or path}: cannot tell the format from the extension "
            f"{path.suffix or '(none)'!r}; "
            f"expected one of {', '.join(sorted(FORMATS))} or pass --format"
        )
    return found


def _clean_name(name: Any) -> str:
    return str(name).replace(BOM, "").strip("\r\n")


def _check_sample(path: Path, name: str, sample: bytes) -> str:
    """Refuse empty and binary files; return the decoded sample."""
    if not sample.replace(codecs.BOM_UTF8, b"").strip():
        raise ImportFailed(f"{name}: the file is empty; expected a header row and data rows")
    wide = _wide_encoding(sample)
    if wide is not None:
        raise ImportFailed(f"{name}: looks like {wide}, not UTF-8; save the file as UTF-8")
    if b"\x00" in sample:
        offset = sample.index(b"\x00")
        line = sample[:offset].count(b"\n") + 1
        raise ImportFailed(
            f"{name}: holds a NUL byte at byte {offset} (line {line}); expected a UTF-8 text "
            "file (is it binary?)"
        )
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        return decoder.decode(sample, final=False)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, name) from exc


def _wide_encoding(sample: bytes) -> str | None:
    """The name of a UTF-16/UTF-32 encoding the sample is written in, or None.

    Known by its byte order mark, or, without one, by text whose every second (or fourth) byte
    is NUL: ASCII written as UTF-16 looks like that, binary files rarely do.
    """
    for mark, name in (
        (codecs.BOM_UTF32_LE, "UTF-32 (little-endian byte order mark)"),
        (codecs.BOM_UTF32_BE, "UTF-32 (big-endian byte order mark)"),
        (codecs.BOM_UTF16_LE, "UTF-16 (little-endian byte order mark)"),
        (codecs.BOM_UTF16_BE, "UTF-16 (big-endian byte order mark)"),
    ):
        if sample.startswith(mark):
            return name
    head = sample[:4096]
    if len(head) >= 8:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
            return "UTF-16 (little-endian, no byte order mark)"
        if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
            return "UTF-16 (big-endian, no byte order mark)"
    return None


def _not_utf8(path: Path, name: str) -> ImportFailed:
    """The error for a file that is not UTF-8, pointing at its first bad byte."""
    offset, line = _locate_bad_utf8(path)
    return ImportFailed(
        f"{name}: not valid UTF-8 at byte {offset} (line {line}); save the file as UTF-8"
    )


def _locate_bad_utf8(path: Path) -> tuple[int, int]:
    """Byte offset and 1-based line of the first byte that is not valid UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 1
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            try:
                decoder.decode(block, final=False)
            except UnicodeDecodeError as exc:
                bad = max(exc.start - len(decoder.getstate()[0]), 0)
                return offset + bad, lines + block[:bad].count(b"\n")
            offset += len(block)
            lines += block.count(b"\n")
    return offset, lines


def _sniff_quotechar(header_line: str, delimiter: str) -> str:
    """``'`` when every header name is wrapped in single quotes, else the usual ``"``.

    Only the header decides: apostrophes in texts ("don't, won't") fool content sniffing.
    """
    names = header_line.strip().split(delimiter)
    if names and all(len(n) >= 2 and n[0] == n[-1] == "'" for n in names):
        return "'"
    return '"'


def _sniff_delimiter(header_line: str) -> str:
    counts = dict.fromkeys([",", "\t", ";", "|"], 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class _CsvReader:
    row_word = "row"

    def __init__(self, path: Path, fmt: str, name: str) -> None:
        self.path = path
        self.name = name
        with path.open("rb") as fh:
            sample = fh.read(SNIFF_BYTES)
            text = _check_sample(path, name, sample)
            text = self._whole_header(fh, sample, text)
        first_line = text.splitlines()[0] if text else ""
        self.delimiter = "\t" if fmt == "tsv" else _sniff_delimiter(first_line)
        self.quotechar = _sniff_quotechar(first_line, self.delimiter)
        # Tab-separated files are usually written without quoting (a '"' is just a character);
        # quoting is honoured only when the header itself is quoted.
        self.quoting: Literal[0, 3] = (
            csv.QUOTE_NONE
            if self.delimiter == "\t" and not first_line.lstrip().startswith(('"', "'"))
            else csv.QUOTE_MINIMAL
        )
        header = self._read_header(text)
        if len(header) > MAX_FIELDS:
            raise ImportFailed(
                f"{name}: the header has {len(header):,} columns; at most {MAX_FIELDS:,} are "
                "supported"
            )
        first = self._first_record
        if first is not None and len(first) > len(header):
            # pandas would take the extra first cell of every row as an index and shift every
            # column by one, silently: ids read as texts. Refuse, as for any later row.
            raise ImportFailed(
                f"{name}: malformed CSV: row 1 has {len(first)} cells; expected {len(header)} "
                "like the header (a delimiter inside an unquoted cell?)"
            )
        self.fields = [_clean_name(name) for name in header]
        self.header_key = [name.strip() for name in self.fields]
        for position, field_name in enumerate(self.fields, start=1):
            if not field_name.strip():
                raise ImportFailed(f"{name}: column {position} of the header has no name")
        seen: set[str] = set()
        for field_name in self.fields:
            if field_name in seen:
                raise ImportFailed(f"{name}: the header names column {field_name!r} twice")
            seen.add(field_name)

    def _whole_header(self, fh: Any, sample: bytes, text: str) -> str:
        """The sample, extended until it holds the whole header record (wide headers).

        Reading stops at ``MAX_HEADER_BYTES``: a header longer than that has far more columns
        than are supported, and is refused without reading the rest of the file.
        """
        data = sample
        complete = self._header_complete(text)
        while not complete and len(data) < MAX_HEADER_BYTES:
            block = fh.read(SNIFF_BYTES)
            if not block:
                return text
            data += block
            if b"\n" not in block and b"\r" not in block:
                continue  # the record cannot have ended in this block
            try:
                text = data.decode("utf-8-sig", errors="strict")
            except UnicodeDecodeError as exc:
                if exc.start < len(data) - 3:  # not just a character cut at the block's end
                    raise _not_utf8(self.path, self.name) from exc
                text = data[: exc.start].decode("utf-8-sig")
            complete = self._header_complete(text)
        if not complete:
            raise ImportFailed(
                f"{self.name}: the header is longer than {MAX_HEADER_BYTES // (1 << 20)} MiB "
                f"(far more than {MAX_FIELDS:,} columns?); at most {MAX_FIELDS:,} columns are "
                "supported"
            )
        return text

    @staticmethod
    def _header_complete(text: str) -> bool:
        """Whether ``text`` holds the first record up to its line end.

        A line end counts when an even number of ``"`` precede it (it is not inside a quoted
        cell). ``str`` methods only: a regex over a 4 MiB header keeps a backtracking stack of
        tens of MiB.
        """
        quotes = 0
        position = 0
        while True:
            ends = [i for i in (text.find("\n", position), text.find("\r", position)) if i >= 0]
            if not ends:
                return False
            end = min(ends)
            quotes += text.count('"', position, end)
            if quotes % 2 == 0:
                return True
            position = end + 1

    def _read_header(self, text: str) -> list[str]:
        try:
            reader = csv.reader(
                io.StringIO(text),
                delimiter=self.delimiter,
                quotechar=self.quotechar,
                quoting=self.quoting,
            )
            header = next(reader, None)
        except csv.Error as exc:
            raise ImportFailed(f"{self.name}: malformed CSV header: {exc}") from exc
        try:
            # The first data record, if the sample holds it (a record cut at the sample's end
            # has fewer cells, never more): see the check in __init__.
            self._first_record: list[str] | None = next(reader, None)
        except csv.Error:
            self._first_record = None
        if not header or not any(cell.strip() for cell in header):
            raise ImportFailed(f"{self.name}: the first line is empty; expected a header row")
        return header

    def chunks(self) -> Iterator[_Chunk]:
        import pandas as pd

        number = 0
        with self.path.open("rb") as fh:
            try:
                reader = pd.read_csv(
                    fh,
                    sep=self.delimiter,
                    quotechar=self.quotechar,
                    quoting=self.quoting,
                    # object, not pandas' Arrow-backed str: turning Arrow strings back into
                    # Python strings row by row cost 15x the parse itself.
                    dtype=object,
                    keep_default_na=False,
                    na_filter=False,
                    encoding="utf-8-sig",
                    chunksize=CHUNK_ROWS,
                    engine="c",
                    header=0,
                    names=self.fields,
                    skip_blank_lines=True,
                )
                for frame in reader:
                    columns = {name: frame[name].tolist() for name in self.fields}
                    numbers = range(number + 1, number + len(frame) + 1)
                    number += len(frame)
                    yield _Chunk(numbers, fh.tell(), columns=columns)
            except UnicodeDecodeError as exc:
                raise _not_utf8(self.path, self.name) from exc
            except pd.errors.ParserError as exc:
                detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
                # pandas counts records with the header as 1 ("line" in its words); a record
                # may span several physical lines when a quoted cell holds line breaks.
                found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", detail)
                if found:
                    expected, record, seen = (int(g) for g in found.groups())
                    detail = (
                        f"row {record - 1} has {seen} cells; expected {expected} "
                        f"like the header (a delimiter inside an unquoted cell?)"
                    )
                raise ImportFailed(f"{self.name}: malformed CSV: {detail}") from exc
            except pd.errors.EmptyDataError as exc:
                raise ImportFailed(f"{self.name}: the file is empty") from exc


class _JsonlReader:
    row_word = "line"
    fields: list[str] | None = None

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        with path.open("rb") as fh:
            _check_sample(path, name, fh.read(SNIFF_BYTES))

    def chunks(self) -> Iterator[_Chunk]:
        rows: list[dict[str, Any]] = []
        numbers: list[int] = []
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise ImportFailed(
                        f"{self.name}: line {number}: not valid UTF-8 at byte {exc.start} "
                        "of the line"
                    ) from exc
                # A byte order mark starting any line (files joined with ``cat``) is dropped,
                # as U+FEFF is at the ends of CSV cells.
                line = line.lstrip(BOM)
                if not line.strip():
                    continue
                if "\x00" in line:
                    raise ImportFailed(f"{self.name}: line {number}: holds a NUL byte")
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ImportFailed(
                        f"{self.name}: line {number}: invalid JSON: {exc.msg} (column {exc.colno})"
                    ) from exc
                except (RecursionError, ValueError) as exc:
                    # Nesting deeper than Python's recursion limit, or an integer of more than
                    # 4,300 digits: valid JSON that no item should hold.
                    raise ImportFailed(
                        f"{self.name}: line {number}: JSON too deeply nested or a number too "
                        f"long to read ({type(exc).__name__})"
                    ) from exc
                if not isinstance(value, dict):
                    raise ImportFailed(
                        f"{self.name}: line {number}: expected a JSON object, "
                        f"found {_json_kind(value)}"
                    )
                rows.append({_clean_name(k): v for k, v in value.items()})
                numbers.append(number)
                if len(rows) >= CHUNK_ROWS:
                    yield _Chunk(numbers, fh.tell(), rows=rows)
                    rows, numbers = [], []
            if rows:
                yield _Chunk(numbers, fh.tell(), rows=rows)


def _exported_gold_row(row: dict[str, Any]) -> bool:
    """Whether ``row`` is a gold item's row of a labelloop export (it carries every computed
    export column, and ``split`` says gold). Imported as pool, such a row becomes an unlabelled
    pool item: its ``label`` holds annotators' answers on a gold item, not a pool label."""
    split = row.get("split")
    return (
        isinstance(split, str)
        and split.strip() == "gold"
        and all(c in row for c in EXPORT_SIGNATURE)
    )


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


class _ParquetReader:
    row_word = "row"

    def __init__(self, path: Path, name: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = path
        self.name = name
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise ImportFailed(f"{name}: not a readable Parquet file: {self._cause(exc)}") from exc
        self.fields = [_clean_name(name) for name in self.file.schema_arrow.names]
        if len(self.fields) != len(set(self.fields)):
            raise ImportFailed(f"{name}: the Parquet schema repeats a column name")
        if len(self.fields) > MAX_FIELDS:
            raise ImportFailed(
                f"{name}: {len(self.fields):,} columns; at most {MAX_FIELDS:,} are supported"
            )
        self.size = path.stat().st_size

    def _cause(self, exc: Exception) -> str:
        """pyarrow's words, with the file called by its name (pyarrow quotes the path)."""
        return str(exc).replace(str(self.path), self.name)

    def chunks(self) -> Iterator[_Chunk]:
        import pyarrow as pa

        number = 0
        total = max(self.file.metadata.num_rows, 1)
        try:
            for batch in self.file.iter_batches(batch_size=CHUNK_ROWS):
                columns = {name: batch.column(k).to_pylist() for k, name in enumerate(self.fields)}
                numbers = range(number + 1, number + batch.num_rows + 1)
                number += batch.num_rows
                yield _Chunk(numbers, self.size * number // total, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise ImportFailed(
                f"{self.name}: Parquet data unreadable after row {number}: {self._cause(exc)}"
            ) from exc


def _check_file(path: Path, name: str) -> None:
    if not path.exists():
        raise ImportFailed(f"{name}: no such file")
    if not path.is_file():
        raise ImportFailed(f"{name}: not a file")


def open_reader(
    path: Path, fmt: str, name: str | None = None
) -> _CsvReader | _JsonlReader | _ParquetReader:
    """A reader for an existing file (``run_import`` has checked it with ``_check_file``).

    ``name`` is what messages call the file: the name the person gave it (an upload is read
    from a scratch copy whose path means nothing to them). Default: the path.
    """
    name = str(path) if name is None else name
    if path.stat().st_size == 0:
        raise ImportFailed(f"{name}: the file is empty; expected a header row and data rows")
    if fmt in {"csv", "tsv"}:
        return _CsvReader(path, fmt, name)
    if fmt == "jsonl":
        return _JsonlReader(path, name)
    return _ParquetReader(path, name)


# --------------------------------------------------------------------------- row checks


def content_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def content_id(text: str) -> str:
    """The stable id of an item imported without an id field."""
    return "h-" + content_hash(text)[:16]


def queue_rank(seed: int, external_id: str) -> int:
    """Seeded, insertion-order-independent random position in the cold queue."""
    digest = hashlib.blake2b(f"{seed}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def _as_text(value: Any) -> str | None:
    """A cell as a string, or None when it is missing; numbers become their text."""
    if type(value) is str:
        return value.strip(BOM)
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip(BOM)
    return None


@dataclass
class _Plan:
    """Validated settings of one import."""

    path: Path
    fmt: str
    split: str
    text_field: str
    id_field: str | None
    label_field: str | None
    labels: tuple[str, ...]
    # What messages call the file (see :func:`open_reader`).
    name: str


@dataclass
class _Plain:
    """A chunk that passed every check (see :meth:`_RowChecker.plain`)."""

    texts: list[str]
    ids: list[str]
    # The label cell of each row, stripped; "" where the row has none. None: no label field.
    labels: list[str] | None


class _RowChecker:
    def __init__(self, plan: _Plan, row_word: str) -> None:
        self.plan = plan
        self.row_word = row_word
        self.label_set = set(plan.labels)
        self.unknown_labels: dict[str, tuple[int, int]] = {}
        self.unknown_beyond = 0
        self.fields: dict[str, None] = {}

    def where(self, number: int, name: str) -> str:
        return f"{self.plan.name}: {self.row_word} {number}, field {name!r}"

    def check_cells(self, number: int, row: dict[str, Any]) -> None:
        for name, value in row.items():
            if name not in self.fields:
                if len(self.fields) >= MAX_FIELDS:
                    raise ImportFailed(
                        f"{self.plan.name}: {self.row_word} {number}: more than "
                        f"{MAX_FIELDS:,} distinct fields in the file; at most {MAX_FIELDS:,} "
                        "are supported"
                    )
                self.fields[name] = None
            if isinstance(value, str):
                if len(value) > MAX_CELL_CHARS:
                    raise ImportFailed(
                        f"{self.where(number, name)}: {len(value):,} characters; "
                        f"at most {MAX_CELL_CHARS:,} are allowed in one cell"
                    )
                if "\x00" in value:
                    # PostgreSQL cannot store it, and in a text file it means binary data.
                    raise ImportFailed(
                        f"{self.where(number, name)}: holds a NUL character (byte 0) at "
                        f"position {value.index(chr(0)) + 1}; expected text without NUL bytes"
                    )

    def text(self, number: int, row: dict[str, Any]) -> str:
        name = self.plan.text_field
        if name not in row:
            raise ImportFailed(
                f"{self.where(number, name)}: missing (the text field); this "
                f"{self.row_word} has the fields: {', '.join(repr(k) for k in list(row)[:30])}"
            )
        value = row[name]
        if not isinstance(value, str):
            raise ImportFailed(
                f"{self.where(number, name)}: expected text, found {type(value).__name__}"
            )
        value = value.strip(BOM)
        if not value.strip():
            raise ImportFailed(f"{self.where(number, name)}: the text is empty")
        return value

    def external_id(self, number: int, row: dict[str, Any], text: str) -> str:
        name = self.plan.id_field
        if name is None:
            return content_id(text)
        if name not in row:
            raise ImportFailed(f"{self.where(number, name)}: missing (the id field)")
        value = row[name]
        if isinstance(value, float) and not math.isnan(value) and value.is_integer():
            value = int(value)
        as_text = _as_text(value)
        if as_text is None or isinstance(value, float | bool) or not as_text.strip():
            raise ImportFailed(
                f"{self.where(number, name)}: expected a non-empty id (text or integer), "
                f"found {value!r}"
            )
        as_text = as_text.strip()
        if len(as_text) > MAX_ID_CHARS:
            raise ImportFailed(
                f"{self.where(number, name)}: id of {len(as_text):,} characters; "
                f"at most {MAX_ID_CHARS} allowed"
            )
        return as_text

    def label(self, number: int, row: dict[str, Any]) -> str | None:
        name = self.plan.label_field
        if name is None:
            return None
        if name not in row:
            raise ImportFailed(f"{self.where(number, name)}: missing (the label field)")
        if self.plan.split == "pool" and _exported_gold_row(row):
            return None
        value = row[name]
        as_text = _as_text(value)
        if as_text is not None:
            as_text = as_text.strip()
        if not as_text:
            if self.plan.split == "gold":
                raise ImportFailed(
                    f"{self.where(number, name)}: empty; every gold item needs its label"
                )
            return None
        if as_text not in self.label_set:
            if as_text in self.unknown_labels or len(self.unknown_labels) < MAX_UNKNOWN_LABELS:
                first, count = self.unknown_labels.get(as_text, (number, 0))
                self.unknown_labels[as_text] = (first, count + 1)
            else:
                self.unknown_beyond += 1
        return as_text

    def plain(self, chunk: _Chunk) -> _Plain | None:
        """The texts, ids and labels of a chunk that passes every check, found a column at a
        time; None when the chunk needs the row-by-row checks.

        Only chunks whose cells are all text without NUL, byte order marks or overlong cells,
        with a text, id and known label (or none) in every row, take this path; anything else
        returns None and goes through :meth:`check_cells`, :meth:`text`, :meth:`external_id`
        and :meth:`label`, which find and name the first fault (or record unknown labels) as
        they always have. So both paths accept and refuse the same files with the same words.
        """
        columns = chunk.columns
        plan = self.plan
        if columns is None or not chunk.numbers or plan.text_field not in columns:
            return None
        for values in columns.values():
            if set(map(type, values)) != {str}:
                return None
            joined = "".join(values)
            if "\x00" in joined or BOM in joined or max(map(len, values)) > MAX_CELL_CHARS:
                return None
        texts = columns[plan.text_field]
        if not all(map(str.strip, texts)):
            return None
        # A text equal to its field's name may be a repeated header row: checked row by row.
        if plan.text_field.strip() in map(str.strip, texts):
            return None
        if plan.id_field is None:
            ids = [content_id(text) for text in texts]
        else:
            if plan.id_field not in columns:
                return None
            ids = list(map(str.strip, columns[plan.id_field]))
            if not all(ids) or max(map(len, ids)) > MAX_ID_CHARS:
                return None
        labels = None
        if plan.label_field is not None:
            if plan.label_field not in columns:
                return None
            labels = list(map(str.strip, columns[plan.label_field]))
            if plan.split == "pool" and all(c in columns for c in EXPORT_SIGNATURE):
                labels = [
                    "" if split.strip() == "gold" else label
                    for label, split in zip(labels, columns["split"], strict=True)
                ]
            given = set(labels)
            if "" in given and plan.split == "gold":
                return None
            if given - {""} - self.label_set:
                return None
        return _Plain(texts=texts, ids=ids, labels=labels)

    def raise_unknown_labels(self) -> None:
        if not self.unknown_labels:
            return
        shown = sorted(self.unknown_labels.items(), key=lambda kv: kv[1][0])[:20]
        listed = "; ".join(
            f"{label!r} ({count} {self.row_word}{'s' if count > 1 else ''}, first at "
            f"{self.row_word} {first})"
            for label, (first, count) in shown
        )
        more = len(self.unknown_labels) - len(shown)
        raise ImportFailed(
            f"{self.plan.name}: field {self.plan.label_field!r} holds labels that are not in the "
            f"workspace's label set ({', '.join(self.plan.labels)}): {listed}"
            + (f"; and {more} more" if more > 0 else "")
            + (
                f"; and {self.unknown_beyond:,} more {self.row_word}s with other unknown labels"
                if self.unknown_beyond
                else ""
            )
        )


# --------------------------------------------------------------------------- the import


def _validate(plan: _Plan, reader: Any, progress: ProgressCallback | None, total: int) -> list[str]:
    """First pass: read and check every row; write nothing. Returns the file's field names."""
    checker = _RowChecker(plan, reader.row_word)
    if reader.fields is not None:
        for option, name in (
            ("--text-field", plan.text_field),
            ("--id-field", plan.id_field),
            ("--label-field", plan.label_field),
        ):
            if name is not None and name not in reader.fields:
                raise ImportFailed(
                    f"{plan.name}: no field {name!r} ({option}); the file's fields are: "
                    + ", ".join(repr(f) for f in reader.fields[:30])
                    + (" ..." if len(reader.fields) > 30 else "")
                )
        checker.fields = dict.fromkeys(reader.fields)
    rows_read = 0
    header = getattr(reader, "header_key", None)
    for chunk in reader.chunks():
        if checker.plain(chunk) is None:
            for number, row in zip(chunk.numbers, chunk.rows, strict=True):
                if header is not None:
                    _refuse_repeated_header(plan, header, number, row)
                checker.check_cells(number, row)
                text = checker.text(number, row)
                checker.external_id(number, row, text)
                checker.label(number, row)
        rows_read += len(chunk)
        if progress:
            progress("checking", chunk.position, total)
    if rows_read == 0:
        raise ImportFailed(f"{plan.name}: no data rows; expected at least one row after the header")
    checker.raise_unknown_labels()
    return list(checker.fields)


def _refuse_repeated_header(
    plan: _Plan, header: list[str], number: int, row: dict[str, Any]
) -> None:
    """A data row that repeats the header: files joined with ``cat``, each with its header
    (and often its byte order mark). Imported, it would become an item whose text is the
    text field's name."""
    first = row.get(plan.text_field)
    if not isinstance(first, str) or first.strip(BOM).strip() != plan.text_field.strip():
        return
    cells = [v.strip(BOM).strip() if isinstance(v, str) else v for v in row.values()]
    if cells == header:
        raise ImportFailed(
            f"{plan.name}: row {number} repeats the header ({', '.join(header[:5])}"
            f"{', ...' if len(header) > 5 else ''}); were several files joined into one? "
            "Remove the extra header rows"
        )


# The item columns an import writes, in the order of the tuples it builds.
ITEM_INSERT_COLUMNS = [
    "external_id",
    "text",
    "source",
    "content_hash",
    "split",
    "gold_label",
    "n_labels",
    "rank",
    "batch_id",
    "created_at",
]


def _chunk_values(
    checker: _RowChecker, chunk: _Chunk, drop_from_source: set[str]
) -> tuple[list[str], list[str], list[str | None], Callable[[Sequence[int]], list[str]]]:
    """A checked chunk's ids, texts and labels (None: no label), and a function giving the
    source JSON of the rows at some positions (built only for the rows written)."""
    plain = checker.plain(chunk)
    if plain is None:
        rows = chunk.rows
        ids: list[str] = []
        texts: list[str] = []
        labels: list[str | None] = []
        for number, row in zip(chunk.numbers, rows, strict=True):
            text = checker.text(number, row)
            ids.append(checker.external_id(number, row, text))
            texts.append(text)
            labels.append(checker.label(number, row))

        def row_sources(positions: Sequence[int]) -> list[str]:
            return [
                _SOURCE_JSON.encode(
                    {
                        k: (v.strip(BOM) if isinstance(v, str) else v)
                        for k, v in rows[i].items()
                        if k not in drop_from_source
                    }
                )
                for i in positions
            ]

        return ids, texts, labels, row_sources

    columns = chunk.columns
    assert columns is not None
    names = [name for name in columns if name not in drop_from_source]

    def column_sources(positions: Sequence[int]) -> list[str]:
        whole = len(positions) == len(chunk)
        picked = [
            columns[name] if whole else [columns[name][i] for i in positions] for name in names
        ]
        return _json_objects(names, picked, len(positions))

    labels = (
        [label or None for label in plain.labels]
        if plain.labels is not None
        else [None] * len(chunk)
    )
    return plain.ids, plain.texts, labels, column_sources


def _json_objects(names: list[str], columns: list[list[str]], count: int) -> list[str]:
    """One JSON object per row of text ``columns``, each exactly as ``_SOURCE_JSON`` writes
    ``dict(zip(names, row))``: the cells are escaped a column at a time and set in one
    template, instead of encoding a dictionary per row."""
    if not names:
        return ["{}"] * count
    escape = json.encoder.encode_basestring  # what the encoder uses with ensure_ascii=False
    template = "{" + ", ".join(escape(name).replace("%", "%%") + ": %s" for name in names) + "}"
    escaped = [list(map(escape, values)) for values in columns]
    return [template % cells for cells in zip(*escaped, strict=True)]


def _db_timestamp(session: Any, value: Any) -> Any:
    """A timestamp as the driver-level insert must pass it: SQLite keeps SQLAlchemy's text form."""
    if session.connection().dialect.name == "sqlite":
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


# One encoder for every row's source (json.dumps builds a new one per call with these options).
_SOURCE_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


def _existing_ids(session: Any, ids: list[str]) -> dict[str, int | None]:
    """Ids already in the store (this import's earlier chunks included), with their batch.

    On SQLite and PostgreSQL a driver-level query: compiling SQLAlchemy's IN list of 5,000
    parameters and building its result rows cost more than the look-up itself.
    """
    connection = session.connection()
    backend = connection.dialect.name
    found: dict[str, int | None] = {}
    for start in range(0, len(ids), 5_000):
        part = ids[start : start + 5_000]
        if backend == "postgresql":
            rows: Any = connection.exec_driver_sql(
                "SELECT external_id, batch_id FROM item WHERE external_id = ANY(%s)", (part,)
            ).all()
        elif backend == "sqlite":
            marks = ", ".join("?" * len(part))
            rows = connection.exec_driver_sql(
                f"SELECT external_id, batch_id FROM item WHERE external_id IN ({marks})",
                tuple(part),
            ).all()
        else:
            rows = session.execute(
                select(col(Item.external_id), col(Item.batch_id)).where(
                    col(Item.external_id).in_(part)
                )
            ).all()
        found.update((external_id, batch) for external_id, batch in rows)
    return found


def _existing_hashes(session: Any, hashes: list[str], batch_id: int) -> dict[str, bool]:
    """Content hashes already in the store, each with whether an item outside batch
    ``batch_id`` holds it (True: in the workspace before this import; False: only earlier in
    this file). Read at the driver level, as :func:`_existing_ids`, on the hash's index."""
    connection = session.connection()
    backend = connection.dialect.name
    found: dict[str, bool] = {}
    for start in range(0, len(hashes), 5_000):
        part = hashes[start : start + 5_000]
        if backend == "postgresql":
            rows: Any = connection.exec_driver_sql(
                "SELECT content_hash, batch_id FROM item WHERE content_hash = ANY(%s)", (part,)
            ).all()
        elif backend == "sqlite":
            marks = ", ".join("?" * len(part))
            rows = connection.exec_driver_sql(
                f"SELECT content_hash, batch_id FROM item WHERE content_hash IN ({marks})",
                tuple(part),
            ).all()
        else:
            rows = session.execute(
                select(col(Item.content_hash), col(Item.batch_id)).where(
                    col(Item.content_hash).in_(part)
                )
            ).all()
        for digest, batch in rows:
            found[digest] = found.get(digest, False) or batch != batch_id
    return found


def _skip_repeated_ids(
    session: Any, report: ImportReport, batch_id: int, ids: list[str], text_skipped: set[str]
) -> Sequence[int]:
    """The positions of ``ids`` not seen before, counting the others on ``report``.

    Row by row: an id an earlier import holds is a repeat in the store; one an earlier row of
    this file had (in this chunk, in an earlier chunk, which is in the store already in the
    same transaction, or on a row skipped for its text) is a repeat in the file. So memory
    does not grow with the file, and the counts do not depend on where chunks end.
    """
    in_store = _existing_ids(session, list(set(ids)))
    if not in_store and not text_skipped and len(set(ids)) == len(ids):
        return range(len(ids))
    keep: list[int] = []
    seen: set[str] = set()
    for k, external_id in enumerate(ids):
        stored = external_id in in_store
        if stored and in_store[external_id] != batch_id:
            report.duplicates_in_store += 1
        elif stored or external_id in seen or external_id in text_skipped:
            report.duplicates_in_file += 1
        else:
            seen.add(external_id)
            keep.append(k)
    return keep


def _skip_repeated_texts(
    session: Any,
    report: ImportReport,
    batch_id: int,
    keep: Sequence[int],
    texts: list[str],
    *,
    allow: bool,
) -> tuple[Sequence[int], list[str]]:
    """The rows of ``keep`` to write and their content hashes, less the rows whose text is
    already in the store or earlier in this file (counted on ``report``), unless ``allow``.

    Earlier chunks of the file are in the store already (same transaction), so a repeat of
    an earlier chunk's text is told from one of another import by the batch that holds it.
    """
    hashes = [content_hash(texts[k]) for k in keep]
    if not hashes:
        return keep, hashes
    distinct = set(hashes)
    known = _existing_hashes(session, list(distinct), batch_id)
    if not known and len(distinct) == len(hashes):
        return keep, hashes  # the usual chunk: every text new
    seen: set[str] = set()
    repeated: list[bool] = []
    for digest in hashes:
        before = known.get(digest)
        if before is None and digest in seen:
            before = False
        if before is True:
            report.duplicate_texts_in_store += 1
        elif before is False:
            report.duplicate_texts_in_file += 1
        repeated.append(before is not None)
        seen.add(digest)
    if allow or not any(repeated):
        return keep, hashes
    kept = [(k, digest) for k, digest, r in zip(keep, hashes, repeated, strict=True) if not r]
    return [k for k, _ in kept], [digest for _, digest in kept]


def _new_item_ids(session: Any, batch_id: int, after: int) -> list[tuple[str, int]]:
    """(external id, item id) of the items this batch inserted with ids above ``after``."""
    connection = session.connection()
    backend = connection.dialect.name
    if backend in {"sqlite", "postgresql"}:
        mark = "?" if backend == "sqlite" else "%s"
        return list(
            connection.exec_driver_sql(
                f"SELECT external_id, id FROM item WHERE batch_id = {mark} AND id > {mark}",
                (batch_id, after),
            ).all()
        )
    return list(
        session.execute(
            select(col(Item.external_id), col(Item.id)).where(
                col(Item.batch_id) == batch_id, col(Item.id) > after
            )
        ).all()
    )


def run_import(
    engine: Engine,
    path: Path,
    *,
    labels: tuple[str, ...],
    text_field: str,
    id_field: str | None = None,
    label_field: str | None = None,
    split: str = "pool",
    fmt: str | None = None,
    queue_seed: int = 0,
    progress: ProgressCallback | None = None,
    allow_duplicate_texts: bool = False,
    source_name: str | None = None,
) -> ImportReport:
    """Import ``path`` into the store: all rows or, on any fault, none.

    A row whose text is already in the workspace, or earlier in the file, under another id is
    skipped and counted (``duplicate_texts``) unless ``allow_duplicate_texts``. Messages call
    the file ``source_name`` (the name the person gave it; default: the path).
    """
    started = time.perf_counter()
    if split not in SPLITS:
        raise ImportFailed(f"option '--split': expected pool or gold, found {split!r}")
    if split == "gold" and label_field is None:
        raise ImportFailed("option '--label-field' is required with --split gold")
    name = str(path) if source_name is None else source_name
    _check_file(path, name)
    fmt = detect_format(path, fmt, name=name)
    plan = _Plan(path, fmt, split, text_field, id_field, label_field, labels, name)
    reader = open_reader(path, fmt, name)
    total = path.stat().st_size
    fields = _validate(plan, reader, progress, total)

    report = ImportReport(
        file=Path(name).name,
        format=fmt,
        split=split,
        fields=fields,
        allow_duplicate_texts=allow_duplicate_texts,
    )
    checker = _RowChecker(plan, reader.row_word)
    is_export = set(EXPORT_SIGNATURE) <= set(fields)
    drop_from_source = set(EXPORT_COMPUTED_COLUMNS) & set(fields) if is_export else set()
    item_table = Item.__table__  # type: ignore[attr-defined]
    annotation_table = Annotation.__table__  # type: ignore[attr-defined]
    with db.write_session(engine) as session, db.bulk_cache(session):
        batch = ImportBatch(
            source_name=Path(name).name,
            format=fmt,
            split=split,
            text_field=text_field,
            id_field=id_field,
            label_field=label_field,
            fields=json.dumps([f for f in fields if f not in drop_from_source], ensure_ascii=False),
        )
        session.add(batch)
        session.flush()
        assert batch.id is not None
        batch_id = batch.id
        importer_id = None
        if split == "pool" and label_field is not None:
            importer_id = system_annotator(session).id
        now = _db_timestamp(session, utcnow())
        text_skipped: set[str] = set()  # ids of rows skipped for a repeated text
        for chunk in reader.chunks():
            ids, texts, given, sources = _chunk_values(checker, chunk, drop_from_source)
            report.rows_read += len(chunk)
            keep = _skip_repeated_ids(session, report, batch_id, ids, text_skipped)
            passed = keep
            keep, hashes = _skip_repeated_texts(
                session, report, batch_id, keep, texts, allow=allow_duplicate_texts
            )
            if len(keep) < len(passed):
                # Their ids stay taken for the rest of the file (the first occurrence wins),
                # though no item holds them. Only these rows' ids are remembered: a file that
                # is all repeats (1M rows imported again) holds about 100 MB of them.
                written = set(keep)
                text_skipped.update(ids[k] for k in passed if k not in written)
            if not keep:
                if progress:
                    progress("writing", chunk.position, total)
                continue
            new_ids = [ids[k] for k in keep]
            new_texts = [texts[k] for k in keep]
            new_labels = [given[k] for k in keep]
            gold = split == "gold"
            records = list(
                zip(
                    new_ids,
                    new_texts,
                    sources(keep),
                    hashes,
                    repeat(split),
                    new_labels if gold else repeat(None),
                    repeat(0) if gold else (0 if label is None else 1 for label in new_labels),
                    (queue_rank(queue_seed, external_id) for external_id in new_ids),
                    repeat(batch_id),
                    repeat(now),
                )
            )
            labelled = (
                {i: label for i, label in zip(new_ids, new_labels, strict=True) if label}
                if not gold
                else {}
            )
            before = session.execute(select(func.max(Item.id))).scalar() or 0
            bulk_insert_tuples(session, item_table, ITEM_INSERT_COLUMNS, records)
            report.imported += len(records)
            if labelled:
                bulk_insert_tuples(
                    session,
                    annotation_table,
                    ["item_id", "annotator_id", "label", "skipped", "origin", "created_at"],
                    [
                        (item_id, importer_id, labelled[external_id], False, "import", now)
                        for external_id, item_id in _new_item_ids(session, batch_id, before)
                        if external_id in labelled
                    ],
                )
                report.labels_recorded += len(labelled)
            if progress:
                progress("writing", chunk.position, total)
        report.duplicates = report.duplicates_in_file + report.duplicates_in_store
        report.duplicate_texts = report.duplicate_texts_in_file + report.duplicate_texts_in_store
        if split == "gold":
            report.labels_recorded = report.imported
        batch.rows_read = report.rows_read
        batch.imported = report.imported
        # Every row read and not imported: repeated ids, and repeated texts when skipped.
        batch.duplicates = report.rows_read - report.imported
        session.add(batch)
        report.batch_id = batch.id
        session.commit()  # inside bulk_cache: its pages are clean when the cache shrinks back
    if report.imported:
        db.refresh_statistics(engine, item_table.name, annotation_table.name)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def preview(
    path: Path, *, fmt: str | None = None, rows: int = 20, source_name: str | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    """The field names and first ``rows`` rows of a file, read as ``labelloop import`` reads it.

    For the Data page's field mapping; nothing is validated beyond what parsing needs.
    Messages call the file ``source_name`` (default: the path).
    """
    name = str(path) if source_name is None else source_name
    _check_file(path, name)
    reader = open_reader(path, detect_format(path, fmt, name=name), name)
    first = next(iter(reader.chunks()), None)
    sample = first.rows[:rows] if first is not None else []
    columns: list[str] = list(getattr(reader, "fields", None) or [])
    if not columns:  # JSONL: the keys in order of first appearance
        columns = list(dict.fromkeys(key for row in sample for key in row))
    return columns, sample


def read_labelled(
    path: Path, *, text_field: str, label_field: str, fmt: str | None = None
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Texts, labels and whole rows of a fully labelled file (for ``labelloop simulate``).

    Read as ``labelloop import`` reads files; a missing field, or a row without text or label,
    is an error naming the file, row and field.
    """
    _check_file(path, str(path))
    fmt = detect_format(path, fmt)
    reader = open_reader(path, fmt)
    texts: list[str] = []
    labels: list[str] = []
    rows: list[dict[str, Any]] = []
    row_word = "line" if fmt in ("csv", "tsv", "jsonl") else "row"
    for chunk in reader.chunks():
        for number, row in zip(chunk.numbers, chunk.rows, strict=True):
            for name, option in ((text_field, "--text-field"), (label_field, "--label-field")):
                if name not in row:
                    raise ImportFailed(
                        f"{path}: {row_word} {number}: no field {name!r} (option '{option}'); "
                        f"fields are: {', '.join(map(str, row))}"
                    )
            text = _as_text(row[text_field])
            label = _as_text(row[label_field])
            if text is None or not text.strip():
                raise ImportFailed(f"{path}: {row_word} {number}, field {text_field!r}: empty")
            if label is None or not label.strip():
                raise ImportFailed(f"{path}: {row_word} {number}, field {label_field!r}: empty")
            texts.append(text)
            labels.append(label.strip())
            rows.append(row)
    if not texts:
        raise ImportFailed(f"{path}: no data rows")
    return texts, labels, rows
