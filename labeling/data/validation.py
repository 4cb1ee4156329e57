"""The checks every row of an import passes before anything is written: the mapped fields exist,
each cell is text of bounded size without NUL bytes, each row has a text, an id and a label
from the workspace's label set. A fault is refused with the file, the row and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.data.duplicates import content_id
from labeling.data.exporter import ITEM_COLUMNS
from labeling.data.readers import BOM, MAX_FIELDS, Chunk, cell_text
from labeling.errors import ImportFailed
from labeling.store import labelsets
from labeling.store.labelsets import DEFAULT_LABEL_SEP

# One cell may hold at most this many characters: a 1 MB "text" is a broken file, not an item.
MAX_CELL_CHARS = 1_000_000
MAX_ID_CHARS = 512
# Distinct unknown labels remembered for the error message (a free-text column mapped as the
# label field must not grow a dictionary with the file).
MAX_UNKNOWN_LABELS = 1_000

# Distinct multi-label cells whose parse is remembered (a file has few distinct sets).
MAX_SET_CELLS = 100_000
# Columns that labelloop's own export computes. Re-importing an export keeps them out of the
# items' source rows, so a round trip does not pile up stale copies of them.
EXPORT_COMPUTED_COLUMNS = tuple(c for c in ITEM_COLUMNS if c not in {"id", "text", "label"})
# The computed columns that tell a file is a labelloop export: exports made before the
# ``decided_by`` column are recognised too.
EXPORT_SIGNATURE = tuple(c for c in EXPORT_COMPUTED_COLUMNS if c != "decided_by")


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


@dataclass
class ImportPlan:
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
    # A multi-label workspace's label cells hold sets (labeling.store.labelsets), their names
    # separated by ``label_sep`` in a text cell.
    multilabel: bool = False
    label_sep: str = DEFAULT_LABEL_SEP


@dataclass
class _Plain:
    """A chunk that passed every check (see :meth:`RowChecker.plain`)."""

    texts: list[str]
    ids: list[str]
    # The label cell of each row, stripped; "" where the row has none. None: no label field.
    labels: list[str] | None


class RowChecker:
    """The checks of one import's rows, and what they remember across chunks: the fields seen
    and the unknown labels (refused together at the end, so the message lists them all)."""

    def __init__(self, plan: ImportPlan, row_word: str) -> None:
        self.plan = plan
        self.row_word = row_word
        self.label_set = set(plan.labels)
        # Multi-label: each distinct text cell's stored set, or None when it cannot be one.
        self.set_cells: dict[str, str | None] = {}
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
        as_text = cell_text(value)
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
        as_text = cell_text(value)
        if as_text is not None:
            as_text = as_text.strip()
        if self.plan.multilabel:
            return self.label_set_of(number, name, value)
        if not as_text:
            if self.plan.split == "gold":
                raise ImportFailed(
                    f"{self.where(number, name)}: empty; every gold item needs its label"
                )
            return None
        self.count_unknown(number, [as_text])
        return as_text

    def count_unknown(self, number: int, names: list[str]) -> None:
        for name in names:
            if name in self.label_set:
                continue
            if name in self.unknown_labels or len(self.unknown_labels) < MAX_UNKNOWN_LABELS:
                first, count = self.unknown_labels.get(name, (number, 0))
                self.unknown_labels[name] = (first, count + 1)
            else:
                self.unknown_beyond += 1

    def label_set_of(self, number: int, name: str, value: Any) -> str | None:
        """A multi-label cell as its stored set (None: no label); unknown names are counted."""
        try:
            names = labelsets.parse_cell(value, self.plan.label_sep)
        except ValueError as exc:
            raise ImportFailed(f"{self.where(number, name)}: {exc}") from exc
        if names is None:
            if self.plan.split == "gold":
                raise ImportFailed(
                    f"{self.where(number, name)}: empty; every gold item needs its labels "
                    "(write [] for an item with none of them)"
                )
            return None
        self.count_unknown(number, names)
        known = [n for n in names if n in self.label_set]
        return labelsets.encode(known, self.plan.labels)

    def plain_label_set(self, cell: str) -> str | None:
        """The stored set of a text cell that parses and names only known labels, "" for an
        empty cell; None when the row-by-row checks must look at it."""
        if cell not in self.set_cells:
            try:
                names = labelsets.parse_cell(cell, self.plan.label_sep)
            except ValueError:
                names = None
                stored = None
            else:
                if names is None:
                    stored = ""
                elif set(names) <= self.label_set:
                    stored = labelsets.encode(names, self.plan.labels)
                else:
                    stored = None
            if len(self.set_cells) < MAX_SET_CELLS:
                self.set_cells[cell] = stored
            return stored
        return self.set_cells[cell]

    def check_rows(self, chunk: Chunk, header: list[str] | None) -> None:
        """Check every row of ``chunk`` (``header``: the CSV header a row must not repeat)."""
        for number, row in zip(chunk.numbers, chunk.rows, strict=True):
            if header is not None:
                refuse_repeated_header(self.plan, header, number, row)
            self.check_cells(number, row)
            text = self.text(number, row)
            self.external_id(number, row, text)
            self.label(number, row)

    def plain(self, chunk: Chunk) -> _Plain | None:
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
            if plan.multilabel:
                stored = [self.plain_label_set(cell) for cell in labels]
                if None in stored:
                    return None
                labels = [cell or "" for cell in stored]
            given = set(labels)
            if "" in given and plan.split == "gold":
                return None
            if not plan.multilabel and given - {""} - self.label_set:
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


def refuse_unknown_fields(plan: ImportPlan, fields: list[str]) -> None:
    """Refuse a text, id or label field the file's header does not have."""
    for option, name in (
        ("--text-field", plan.text_field),
        ("--id-field", plan.id_field),
        ("--label-field", plan.label_field),
    ):
        if name is not None and name not in fields:
            raise ImportFailed(
                f"{plan.name}: no field {name!r} ({option}); the file's fields are: "
                + ", ".join(repr(f) for f in fields[:30])
                + (" ..." if len(fields) > 30 else "")
            )


def refuse_repeated_header(
    plan: ImportPlan, header: list[str], number: int, row: dict[str, Any]
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
