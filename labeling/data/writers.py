"""Writing rows to CSV, TSV, JSONL or Parquet (exports, ``labelloop predict``): through a
temporary file beside the target, renamed into place at the end, so a failed write never leaves
a half-written file."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labeling.errors import ExportFailed

# Parquet rows are written in row groups of this many rows.
CHUNK_ROWS = 20_000
# Typed Parquet columns; the others are strings (nested values as JSON).
INT_COLUMNS = {"n_annotations", "annotation_id", "duration_ms", "round_id", "superseded_by"}
FLOAT_COLUMNS = {"weak_confidence", "prediction_confidence"}
BOOL_COLUMNS = {"skipped"}


def flat(value: Any) -> Any:
    """A value for a flat format (CSV, Parquet string column): nested values as JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_csv(handle: Any, columns: list[str], rows: Iterator[dict[str, Any]]) -> int:
    return _write_delimited(handle, columns, rows, ",")


def write_tsv(handle: Any, columns: list[str], rows: Iterator[dict[str, Any]]) -> int:
    """Tab-separated, quoted only where a cell holds a tab, quote or line break."""
    return _write_delimited(handle, columns, rows, "\t")


def _write_delimited(
    handle: Any, columns: list[str], rows: Iterator[dict[str, Any]], delimiter: str
) -> int:
    # RFC 4180 line ends: with "\r\n" as terminator the writer also quotes cells holding a
    # lone "\r", which a "\n" terminator would leave bare (and readers split the row there).
    writer = csv.writer(handle, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(["" if row.get(c) is None else flat(row.get(c)) for c in columns])
        count += 1
    return count


def write_jsonl(handle: Any, columns: list[str], rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    for row in rows:
        handle.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False, default=str))
        handle.write("\n")
        count += 1
    return count


def write_parquet(
    path: Path,
    columns: list[str],
    rows: Iterator[dict[str, Any]],
    list_columns: frozenset[str] = frozenset(),
    int_columns: frozenset[str] = frozenset(),
    float_columns: frozenset[str] = frozenset(),
) -> int:
    """Parquet, with ``list_columns`` (lists of names), ``int_columns`` and ``float_columns``
    typed as such."""
    # pyarrow (~0.2 s to import): only a Parquet export needs it
    import pyarrow as pa
    import pyarrow.parquet as pq

    ints = INT_COLUMNS | int_columns
    floats = FLOAT_COLUMNS | float_columns

    def arrow_type(name: str) -> Any:
        if name in list_columns:
            return pa.list_(pa.string())
        if name in ints:
            return pa.int64()
        if name in floats:
            return pa.float64()
        if name in BOOL_COLUMNS:
            return pa.bool_()
        return pa.string()

    schema = pa.schema([(name, arrow_type(name)) for name in columns])

    def cell(name: str, value: Any) -> Any:
        if value is None or name in ints | floats | BOOL_COLUMNS | list_columns:
            return value
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        buffer: list[dict[str, Any]] = []
        for row in rows:
            buffer.append({c: cell(c, row.get(c)) for c in columns})
            if len(buffer) >= CHUNK_ROWS:
                writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
                count += len(buffer)
                buffer = []
        if buffer or count == 0:
            writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
            count += len(buffer)
    return count


def _text_writer(fmt: str) -> Any:
    """The writer of a text format (looked up when called)."""
    return {"csv": write_csv, "tsv": write_tsv, "jsonl": write_jsonl}[fmt]


def target_folder(out: Path) -> Path:
    """The folder ``out`` is written in; refused when ``out`` is a folder or it is missing."""
    target_dir = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise ExportFailed(f"{out}: is a folder; expected a file path to write")
    if target_dir.exists() and not target_dir.is_dir():
        raise ExportFailed(
            f"{out}: {target_dir} is a file, not a folder; expected a folder to write in"
        )
    if not target_dir.is_dir():
        raise ExportFailed(f"{out}: the folder {target_dir} does not exist")
    return target_dir


def write_in_place(
    out: Path,
    target_dir: Path,
    fmt: str,
    columns: list[str],
    rows: Iterator[dict[str, Any]],
    *,
    list_columns: frozenset[str] = frozenset(),
    int_columns: frozenset[str] = frozenset(),
    float_columns: frozenset[str] = frozenset(),
) -> int:
    """Write ``rows`` (``fmt``: csv, tsv, jsonl or parquet) to a temporary file in
    ``target_dir``, renamed to ``out`` when complete (removed on any failure, a bad row the
    rows' iterator raises on included). Returns the number of rows written. ``list_columns``,
    ``int_columns`` and ``float_columns`` type those columns in Parquet."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=target_dir)
    except OSError as exc:
        raise ExportFailed(f"{out}: cannot write there ({exc.strerror})") from exc
    tmp = Path(tmp_name)
    try:
        if fmt == "parquet":
            os.close(fd)
            count = write_parquet(tmp, columns, rows, list_columns, int_columns, float_columns)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                count = _text_writer(fmt)(handle, columns, rows)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportFailed(f"{out}: cannot write there ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
