"""Sets of labels: how a multi-label answer is stored, and the workspace's task type.

A multi-label workspace stores a set of labels wherever a single-label one stores a label
(``Annotation.label``, ``Item.label``, ``Item.gold_label``): a JSON list of the names in the
toml's label order, e.g. ``["billing","refund"]``; ``[]`` is the empty set, a real answer
("none of these"), distinct from a skip (``label`` None). One set has exactly one encoding, so
equal sets compare equal as strings. Because names are written as JSON strings, the set holds
label ``a`` exactly when its encoding contains ``"a"`` (quotes included): a quote or backslash
inside a name is escaped, so no other name's encoding contains that text.

The task type (``single-label`` or ``multi-label``) is fixed at ``labelloop init``: it is in
``labelloop.toml`` and recorded in the store (``schemainfo``), and a toml that says otherwise
than the store is refused on open. A store without the record predates multi-label: single-label.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session

from labeling.config import SINGLE_LABEL, TASKS
from labeling.errors import BadInput, ConfigError
from labeling.store.models import SchemaInfo

# schemainfo key of the task type the store was created for.
TASK_KEY = "task"
# The default separator of names in a label cell of a CSV/TSV file (``--label-sep``).
DEFAULT_LABEL_SEP = "|"


def encode(names: Iterable[str], labels: tuple[str, ...]) -> str:
    """The stored form of a set of known labels (in label order; duplicates collapse)."""
    chosen = set(names)
    unknown = chosen - set(labels)
    if unknown:
        raise BadInput(
            f"unknown label {sorted(unknown)[0]!r}; expected names from {', '.join(labels)}"
        )
    return _spelt([name for name in labels if name in chosen])


def decode(value: str) -> frozenset[str]:
    """The set a stored value holds."""
    names = json.loads(value)
    if not isinstance(names, list):
        raise ValueError(f"not a stored label set: {value!r}")
    return frozenset(names)


def decode_ordered(value: str) -> list[str]:
    """The names a stored value holds, in label order."""
    names = json.loads(value)
    if not isinstance(names, list):
        raise ValueError(f"not a stored label set: {value!r}")
    return [str(name) for name in names]


def per_label(
    counts: Mapping[str, int], labels: tuple[str, ...], multilabel: bool
) -> dict[str, int]:
    """Answers per label from answers per stored value: a set counts for each label it holds
    (so the figures add up to more than the answers, and the empty set to none of them)."""
    if not multilabel:
        return {label: counts.get(label, 0) for label in labels}
    out = dict.fromkeys(labels, 0)
    for value, n in counts.items():
        if not value:  # "" or None: unlabelled
            continue
        for name in decode(value):
            if name in out:
                out[name] += n
    return out


def indicator(values: list[str], labels: tuple[str, ...]) -> np.ndarray:
    """An ``(len(values), len(labels))`` 0/1 matrix of stored sets, columns in label order
    (names the labels no longer list are left out)."""
    column = {name: k for k, name in enumerate(labels)}
    out = np.zeros((len(values), len(labels)), dtype=np.uint8)
    for row, value in enumerate(values):
        for name in decode(value):
            k = column.get(name)
            if k is not None:
                out[row, k] = 1
    return out


def from_indicator(matrix: np.ndarray, labels: tuple[str, ...]) -> list[str]:
    """The stored set of each row of a 0/1 (or boolean) matrix, columns in label order."""
    return [_spelt([labels[k] for k in np.flatnonzero(row)]) for row in np.asarray(matrix)]


def _spelt(names: list[str]) -> str:
    """The one spelling of a set whose names are already in label order."""
    return json.dumps(names, ensure_ascii=False, separators=(",", ":"))


def contains_pattern(label: str) -> str:
    """A SQL ``LIKE`` pattern matching the stored sets that hold ``label`` (escape ``\\``)."""
    quoted = json.dumps(label, ensure_ascii=False)
    escaped = quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def parse_cell(value: Any, sep: str) -> list[str] | None:
    """The names in one label cell of a file, or None for an empty cell (no label).

    A list (a JSON list in JSONL, a list column in Parquet) holds the names as its items; a
    string cell holds them separated by ``sep``, or a JSON list written as text (``[]`` is
    how a CSV cell says "the empty set"). Names are stripped; empty parts are dropped.
    Raises ValueError with what was expected (the caller adds the file, row and field).
    """
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN: an empty cell in a data frame
        return None
    if isinstance(value, str):
        text = value.strip().strip("\ufeff")
        if not text:
            return None
        if text.startswith("[") and text.endswith("]"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = None
            if not isinstance(value, list):
                raise ValueError(f"expected a JSON list of label names, found {text!r}")
        else:
            return [part.strip() for part in text.split(sep) if part.strip()]
    if isinstance(value, list | tuple) or type(value).__name__ == "ndarray":
        names = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(
                    f"expected label names (text) in the list, found {type(item).__name__} {item!r}"
                )
            if item.strip():
                names.append(item.strip())
        return names
    raise ValueError(
        f"expected label names separated by {sep!r} or a list of names, "
        f"found {type(value).__name__} {value!r}"
    )


def format_cell(value: str | None, sep: str) -> str | None:
    """A stored set as a CSV/TSV cell: names joined by ``sep``; ``[]`` for the empty set."""
    if value is None:
        return None
    names = decode_ordered(value)
    return sep.join(names) if names else "[]"


def readable(value: str | None) -> str | None:
    """A stored value as people read it: a set's names joined by ``|`` (``[]`` for the empty
    set), as ``labelloop correct`` takes them; a single label, or None, as it is."""
    if value is None or not (value.startswith("[") and value.endswith("]")):
        return value
    try:
        return format_cell(value, DEFAULT_LABEL_SEP)
    except (ValueError, TypeError):
        return value


def check_separator(labels: tuple[str, ...], sep: str, option: str = "--label-sep") -> None:
    """Refuse a separator that is empty or that a label name contains."""
    if not sep or sep.isspace():
        raise BadInput(f"option '{option}': expected a separator character, found {sep!r}")
    for name in labels:
        if sep in name:
            raise BadInput(
                f"option '{option}': label {name!r} contains the separator {sep!r}; "
                "pass another separator"
            )


def record_task(engine: Engine, task: str) -> None:
    """Record a new store's task type."""
    with Session(engine) as session:
        session.merge(SchemaInfo(key=TASK_KEY, value=task))
        session.commit()


def stored_task(engine: Engine) -> str:
    """The task type the store was created for (single-label for stores from before)."""
    with Session(engine) as session:
        row = session.get(SchemaInfo, TASK_KEY)
    return row.value if row is not None and row.value in TASKS else SINGLE_LABEL


def check_task(engine: Engine, task: str, source: str) -> None:
    """Refuse a toml whose task type differs from the store's."""
    stored = stored_task(engine)
    if stored != task:
        raise ConfigError(
            f"{source}: key 'task' says {task!r}, but this workspace's store was created as "
            f"{stored!r}; the task type cannot change after `labelloop init` (put back "
            f'task = "{stored}", or create a new workspace and import the data there)'
        )
