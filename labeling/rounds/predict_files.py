"""``labelloop predict FILE --out OUT``: a file of texts in, a file of the round's predictions out.

The input is read as ``labelloop import`` reads files (CSV/TSV, JSONL, Parquet; one chunk of
:data:`labeling.data.readers.CHUNK_ROWS` rows at a time) and each chunk is predicted and
written before the next is read, so memory stays bounded however long the file is. The output
(CSV/TSV, JSONL or Parquet, from its extension) has the input's id column when there is one,
then ``label`` (the predicted label; multi-label: the predicted set) and one ``p_<label>``
column per label the round's model knows. It is written to a temporary file beside OUT and
renamed at the end: a bad row anywhere leaves no output at all.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labeling.context import Context
from labeling.data.readers import FORMATS, cell_text, check_file, detect_format, open_reader
from labeling.data.writers import target_folder, write_in_place
from labeling.errors import BadInput, ExportFailed, ImportFailed
from labeling.rounds.predict import Predictions, load_round
from labeling.store import labelsets
from labeling.store.labelsets import DEFAULT_LABEL_SEP

#: The prefix of the probability columns: ``p_billing`` is P(billing).
PROBABILITY_PREFIX = "p_"
LABEL_COLUMN = "label"
OUTPUT_FORMATS = ("csv", "tsv", "jsonl", "parquet")


@dataclass(frozen=True)
class PredictFileReport:
    """What ``labelloop predict`` read and wrote."""

    file: str
    out: str
    format: str
    rows: int
    round_id: int
    labels: list[str]
    id_field: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Fields:
    """The input's text and id fields, as the person named them (or the defaults)."""

    text: str
    id: str | None


def output_format(out: Path) -> str:
    """The output format from ``out``'s extension (the import's table of extensions)."""
    found = FORMATS.get(out.suffix.lower())
    if found not in OUTPUT_FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise ExportFailed(
            f"option '--out': {out}: cannot tell the format from the extension "
            f"{out.suffix or '(none)'!r}; expected one of {known}"
        )
    return str(found)


def predict_file(
    ws: Context,
    path: Path,
    out: Path,
    *,
    round_id: int | None = None,
    text_field: str | None = None,
    id_field: str | None = None,
    fmt: str | None = None,
    label_sep: str = DEFAULT_LABEL_SEP,
) -> PredictFileReport:
    """Predict every row of ``path`` with round ``round_id`` (default: the promoted one) and
    write ``out``; see the module doc for the columns."""
    started = time.perf_counter()
    name = str(path)
    check_file(path, name)
    in_format = detect_format(path, fmt)
    out_format = output_format(out)
    target_dir = target_folder(out)
    if out.resolve() == path.resolve():
        raise ExportFailed(f"option '--out': {out} is the input file; name another file")
    loaded = load_round(ws, round_id)
    if loaded.multilabel and out_format in ("csv", "tsv"):
        labelsets.check_separator(loaded.labels, label_sep)
    reader = open_reader(path, in_format, name)
    chunks = reader.chunks()
    first = next(chunks, None)
    seen = reader.fields if reader.fields is not None else list(first.rows[0]) if first else []
    fields = _fields(name, reader.fields, text_field or ws.config.text_field, id_field, seen)
    columns = ([fields.id] if fields.id else []) + [LABEL_COLUMN]
    columns += [f"{PROBABILITY_PREFIX}{label}" for label in loaded.labels]
    if fields.id in columns[1:]:
        raise BadInput(
            f"option '--id-field': {fields.id!r} is also the name of an output column; "
            "rename the field or leave the id out"
        )
    counted = [0]

    def rows() -> Iterator[dict[str, Any]]:
        for chunk in itertools.chain([first] if first else [], chunks):
            texts, ids = _chunk_cells(name, reader.row_word, chunk, fields)
            found = loaded.predict(texts)
            counted[0] += len(texts)
            yield from _output_rows(found, ids, columns, out_format, label_sep)

    write_in_place(
        out, target_dir, out_format, columns, rows(),
        list_columns=frozenset({LABEL_COLUMN}) if loaded.multilabel else frozenset(),
        float_columns=frozenset(columns[columns.index(LABEL_COLUMN) + 1 :]),
    )  # fmt: skip
    return PredictFileReport(
        file=name,
        out=str(out),
        format=out_format,
        rows=counted[0],
        round_id=loaded.round_id,
        labels=list(loaded.labels),
        id_field=fields.id,
        seconds=round(time.perf_counter() - started, 3),
    )


def _fields(
    name: str, known: list[str] | None, text: str, id_field: str | None, seen: list[str]
) -> _Fields:
    """The text and id fields, checked against the file's header when it has one (JSONL
    lines are checked one by one); without ``--id-field``, a field called ``id`` (in the
    header, or JSONL's first line) is kept."""
    if known is not None:
        for field, option in ((text, "--text-field"), (id_field, "--id-field")):
            if field is not None and field not in known:
                raise ImportFailed(
                    f"{name}: no field {field!r} (option '{option}'); fields are: "
                    f"{', '.join(known)}"
                )
    if id_field is None and "id" in seen and text != "id":
        id_field = "id"
    return _Fields(text=text, id=id_field)


def _chunk_cells(
    name: str, row_word: str, chunk: Any, fields: _Fields
) -> tuple[list[str], list[str | None]]:
    """The texts (and ids) of one chunk's rows; a missing or empty one is an error naming the
    file, row and field."""
    texts: list[str] = []
    ids: list[str | None] = []
    wanted = [(fields.text, "--text-field")] + ([(fields.id, "--id-field")] if fields.id else [])
    if chunk.columns is not None:
        for field, _option in wanted:
            if field not in chunk.columns:  # header checked already: cannot happen
                raise ImportFailed(f"{name}: no field {field!r}")
        raw_texts = chunk.columns[fields.text]
        raw_ids = chunk.columns[fields.id] if fields.id else [None] * len(raw_texts)
    else:
        raw_texts, raw_ids = [], []
        for number, row in zip(chunk.numbers, chunk.rows, strict=True):
            for field, option in wanted:
                if field not in row:
                    raise ImportFailed(
                        f"{name}: {row_word} {number}: no field {field!r} (option '{option}'); "
                        f"fields are: {', '.join(map(str, row))}"
                    )
            raw_texts.append(row[fields.text])
            raw_ids.append(row[fields.id] if fields.id else None)
    for number, raw_text, raw_id in zip(chunk.numbers, raw_texts, raw_ids, strict=True):
        text = cell_text(raw_text)
        if text is None or not text.strip():
            what = "empty" if text is not None or raw_text is None else "not a text"
            raise ImportFailed(f"{name}: {row_word} {number}, field {fields.text!r}: {what}")
        texts.append(text)
        if fields.id:
            value = cell_text(raw_id)
            if value is None or not value.strip():
                raise ImportFailed(f"{name}: {row_word} {number}, field {fields.id!r}: empty")
            ids.append(value)
        else:
            ids.append(None)
    return texts, ids


def _output_rows(
    found: Predictions, ids: list[str | None], columns: list[str], fmt: str, sep: str
) -> Iterator[dict[str, Any]]:
    """One output row per prediction; a predicted set is a list, or names joined by ``sep``
    in CSV/TSV (``[]`` for the empty set, as ``export`` writes sets)."""
    id_column = columns[0] if columns[0] != LABEL_COLUMN else None
    p_columns = columns[-len(found.labels) :] if found.labels else []
    flat = fmt in ("csv", "tsv")
    for row_id, label, proba in zip(ids, found.predicted, found.probabilities, strict=True):
        row: dict[str, Any] = {}
        if id_column is not None:
            row[id_column] = row_id
        if isinstance(label, list) and flat:
            row[LABEL_COLUMN] = sep.join(label) if label else "[]"
        else:
            row[LABEL_COLUMN] = label
        row.update(zip(p_columns, (round(float(p), 6) for p in proba), strict=True))
        yield row
