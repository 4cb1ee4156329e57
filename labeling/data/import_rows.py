"""A checked chunk as an import writes it: its ids, texts and labels, and the source JSON of
each row written (built only for those rows, a column at a time when the chunk has columns).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from labeling.data.readers import BOM, Chunk
from labeling.data.validation import RowChecker

# One encoder for every row's source (json.dumps builds a new one per call with these options).
_SOURCE_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


def chunk_values(
    checker: RowChecker, chunk: Chunk, drop_from_source: set[str]
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
