"""Readers of CSV/TSV, JSONL and Parquet files: the format from the extension, the CSV dialect
and header from the first bytes, then the rows in chunks of ``CHUNK_ROWS`` so memory stays
bounded however long the file is.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from labeling.data.encoding import check_sample, not_utf8
from labeling.errors import ImportFailed

CHUNK_ROWS = 20_000
MAX_FIELDS = 10_000
# The header record is read whole before the file is parsed; 10,000 names fit well within this.
MAX_HEADER_BYTES = 4 << 20
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


class Chunk:
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
    """A CSV or TSV file: its dialect and header from the first bytes, then its rows through
    pandas' C parser."""

    row_word = "row"

    def __init__(self, path: Path, fmt: str, name: str) -> None:
        self.path = path
        self.name = name
        with path.open("rb") as fh:
            sample = fh.read(SNIFF_BYTES)
            text = check_sample(path, name, sample)
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
                    raise not_utf8(self.path, self.name) from exc
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

    def chunks(self) -> Iterator[Chunk]:
        # pandas (~0.4 s to import): only reading a CSV or TSV file needs it
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
                    yield Chunk(numbers, fh.tell(), columns=columns)
            except UnicodeDecodeError as exc:
                raise not_utf8(self.path, self.name) from exc
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
    """A JSON Lines file: one object per line (lines may differ in fields)."""

    row_word = "line"
    fields: list[str] | None = None

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        with path.open("rb") as fh:
            check_sample(path, name, fh.read(SNIFF_BYTES))

    def chunks(self) -> Iterator[Chunk]:
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
                    yield Chunk(numbers, fh.tell(), rows=rows)
                    rows, numbers = [], []
            if rows:
                yield Chunk(numbers, fh.tell(), rows=rows)


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


class _ParquetReader:
    """A Parquet file: the fields from its schema, the rows a record batch at a time."""

    row_word = "row"

    def __init__(self, path: Path, name: str) -> None:
        # pyarrow (~0.2 s to import): only reading a Parquet file needs it
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

    def chunks(self) -> Iterator[Chunk]:
        # pyarrow: only reading a Parquet file needs it (loaded by __init__ already)
        import pyarrow as pa

        number = 0
        total = max(self.file.metadata.num_rows, 1)
        try:
            for batch in self.file.iter_batches(batch_size=CHUNK_ROWS):
                columns = {name: batch.column(k).to_pylist() for k, name in enumerate(self.fields)}
                numbers = range(number + 1, number + batch.num_rows + 1)
                number += batch.num_rows
                yield Chunk(numbers, self.size * number // total, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise ImportFailed(
                f"{self.name}: Parquet data unreadable after row {number}: {self._cause(exc)}"
            ) from exc


def check_file(path: Path, name: str) -> None:
    """Refuse a path that does not exist or is not a file; ``name`` is what messages call it."""
    if not path.exists():
        raise ImportFailed(f"{name}: no such file")
    if not path.is_file():
        raise ImportFailed(f"{name}: not a file")


class RowsReader:
    """Rows already in memory (the items of an HTTP request), read like a JSONL file: each row
    an object of fields, numbered as the request's array is, from 0 ("item 3" is
    ``items[3]``)."""

    row_word = "item"
    fields: list[str] | None = None

    def __init__(self, rows: Sequence[dict[str, Any]], name: str) -> None:
        self.rows = rows
        self.name = name

    def chunks(self) -> Iterator[Chunk]:
        for start in range(0, len(self.rows), CHUNK_ROWS):
            part = self.rows[start : start + CHUNK_ROWS]
            cleaned = [{_clean_name(k): v for k, v in row.items()} for row in part]
            numbers = range(start, start + len(part))
            yield Chunk(numbers, start + len(part), rows=cleaned)


def open_reader(
    path: Path, fmt: str, name: str | None = None
) -> _CsvReader | _JsonlReader | _ParquetReader:
    """A reader for an existing file (``run_import`` has checked it with ``check_file``).

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


def cell_text(value: Any) -> str | None:
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


def read_labelled(
    path: Path, *, text_field: str, label_field: str, fmt: str | None = None
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Texts, labels and whole rows of a fully labelled file (for ``labelloop simulate``).

    Read as ``labelloop import`` reads files; a missing field, or a row without text or label,
    is an error naming the file, row and field.
    """
    check_file(path, str(path))
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
            text = cell_text(row[text_field])
            label = cell_text(row[label_field])
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
