"""``labelloop export DIR --format hf``: the labelled items as a Hugging Face dataset folder.

The folder holds one Parquet file per split, ``data/train-00000-of-00001.parquet`` (pool items
with a final label) and ``data/test-00000-of-00001.parquet`` (gold items, with their gold
label), and a ``README.md`` dataset card whose YAML header names the files per split
(``configs``), the features with the label names (``dataset_info``) and the split sizes. The
label is a ``ClassLabel`` (a class index; a multi-label workspace's set is a ``Sequence`` of
them), and each Parquet file carries the same features in its schema metadata, so both
``datasets.load_dataset(DIR)`` and ``datasets.load_dataset("parquet", data_dir=DIR)`` give
the label names, offline. Pushing to a hub is the user's own step (``huggingface-cli upload``,
docs/models.md).

An item's final label is the exporter's (:func:`labeling.data.exporter.item_label_rows`), so
the dataset says what ``labelloop export`` says. The folder is written under a temporary name
and renamed at the end: a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from labeling.data.exporter import ExportReport, item_label_rows
from labeling.errors import ExportFailed
from labeling.store import labelsets

DATA_FOLDER = "data"
CARD = "README.md"
#: Each split's file: the Hub's own naming, which ``load_dataset("parquet", data_dir=...)``
#: also recognises by its split word.
SPLIT_FILE = "{split}-00000-of-00001.parquet"
ROW_GROUP = 20_000
#: Which items go to which split, and which of their columns is the label there.
SPLITS = {"train": ("pool", "label"), "test": ("gold", "gold_label")}


def run_hf_export(
    engine: Engine,
    out: Path,
    *,
    labels: tuple[str, ...],
    multilabel: bool,
    name: str,
) -> ExportReport:
    """Write the dataset folder ``out`` (see the module doc)."""
    target = _check_target(out)
    # A hidden name beside the target (mkdir honours the umask, unlike mkdtemp's 0700).
    scratch = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        scratch.mkdir()
    except OSError as exc:
        raise ExportFailed(f"{out}: cannot write in {out.parent} ({exc.strerror})") from exc
    try:
        (scratch / DATA_FOLDER).mkdir()
        sizes = _write_splits(engine, scratch / DATA_FOLDER, labels, multilabel)
        if not any(sizes.rows.values()):
            raise ExportFailed(
                f"{out}: no item has a final label or a gold label yet; nothing to export"
            )
        (scratch / CARD).write_text(dataset_card(name, labels, multilabel, sizes), "utf-8")
        _replace(target, scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return ExportReport(
        file=str(out), format="hf", rows=sum(sizes.rows.values()), kind="items", splits=sizes.rows
    )


def _check_target(out: Path) -> Path:
    """``out`` as a folder: new, empty, or holding only an earlier export (replaced)."""
    target = out.resolve()
    if target.exists() and not target.is_dir():
        raise ExportFailed(f"{out}: is a file; --format hf writes a folder")
    if not target.parent.is_dir():
        raise ExportFailed(f"{out}: the folder {out.parent} does not exist")
    if target.is_dir():
        held = {p.name for p in target.iterdir()}
        if held - {CARD, DATA_FOLDER}:
            raise ExportFailed(
                f"{out}: the folder holds other files than an earlier export ("
                f"{', '.join(sorted(held - {CARD, DATA_FOLDER})[:3])}); name a new or empty folder"
            )
    return target


def _replace(target: Path, scratch: Path) -> None:
    """Put the finished folder in place of ``target`` (an earlier export goes only then)."""
    if not target.exists():
        scratch.rename(target)
        return
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    try:
        scratch.rename(target)
    except OSError:
        old.rename(target)  # the earlier export stays where it was
        raise
    shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class SplitSizes:
    """Rows per split, and their size in memory as Arrow tables (the card's ``num_bytes``)."""

    rows: dict[str, int]
    nbytes: dict[str, int]


def _write_splits(
    engine: Engine, folder: Path, labels: tuple[str, ...], multilabel: bool
) -> SplitSizes:
    """Write one Parquet file per split in one pass over the items; returns their sizes (a
    split without rows gets no file)."""
    # pyarrow (~0.2 s to import): only a Parquet export needs it
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(labels, multilabel)
    writers: dict[str, Any] = {}
    buffers: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    counts = dict.fromkeys(SPLITS, 0)
    sizes = dict.fromkeys(SPLITS, 0)

    def flush(split: str) -> None:
        if split not in writers:
            writers[split] = pq.ParquetWriter(folder / SPLIT_FILE.format(split=split), schema)
        table = pa.Table.from_pylist(buffers[split], schema=schema)
        writers[split].write_table(table)
        counts[split] += len(buffers[split])
        sizes[split] += table.nbytes
        buffers[split] = []

    try:
        for split, row in _labelled_rows(engine, labels, multilabel):
            buffers[split].append(row)
            if len(buffers[split]) >= ROW_GROUP:
                flush(split)
        for split in SPLITS:
            if buffers[split]:
                flush(split)
    finally:
        for writer in writers.values():
            writer.close()
    return SplitSizes(counts, sizes)


def _labelled_rows(
    engine: Engine, labels: tuple[str, ...], multilabel: bool
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(split, row) of every item with a label for its split, in id order."""
    index = {label: k for k, label in enumerate(labels)}
    by_item_split = {item_split: (split, column) for split, (item_split, column) in SPLITS.items()}
    for item in item_label_rows(engine, labels):
        where = by_item_split.get(item["split"])
        if where is None or item[where[1]] is None:
            continue
        split, column = where
        value = item[column]
        names = labelsets.decode_ordered(value) if multilabel else [value]
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ExportFailed(
                f"item {item['id']!r}: label {unknown[0]!r} is not among the workspace's labels "
                f"({', '.join(labels)}); a ClassLabel cannot hold it"
            )
        codes = [index[n] for n in names]
        label = codes if multilabel else codes[0]
        yield split, {"id": item["id"], "text": item["text"], "label": label}


def hf_features(labels: tuple[str, ...], multilabel: bool) -> dict[str, Any]:
    """The features as ``datasets.Features.to_dict()`` writes them (the Parquet metadata).
    ``Sequence`` rather than the newer ``List``: every version of ``datasets`` reads it."""
    class_label = {"names": list(labels), "_type": "ClassLabel"}
    return {
        "id": {"dtype": "string", "_type": "Value"},
        "text": {"dtype": "string", "_type": "Value"},
        "label": {"feature": class_label, "_type": "Sequence"} if multilabel else class_label,
    }


def arrow_schema(labels: tuple[str, ...], multilabel: bool) -> Any:
    """The Parquet schema, with the ``datasets`` features in its metadata."""
    # pyarrow (~0.2 s to import): only a Parquet export needs it
    import pyarrow as pa

    label = pa.list_(pa.int64()) if multilabel else pa.int64()
    metadata = {"huggingface": json.dumps({"info": {"features": hf_features(labels, multilabel)}})}
    return pa.schema(
        [("id", pa.string()), ("text", pa.string()), ("label", label)], metadata=metadata
    )


def _quoted(value: str) -> str:
    """A YAML scalar: a JSON string is a valid double-quoted YAML one."""
    return json.dumps(value, ensure_ascii=False)


def dataset_card(name: str, labels: tuple[str, ...], multilabel: bool, sizes: SplitSizes) -> str:
    """``README.md``: the YAML header the Hub and ``datasets`` read, then a short description."""
    counts = sizes.rows
    splits = [split for split in SPLITS if counts[split]]
    names = "\n".join(
        f"          {_quoted(str(k))}: {_quoted(label)}" for k, label in enumerate(labels)
    )
    kind = "sequence" if multilabel else "dtype"
    yaml = [
        "---",
        f"pretty_name: {_quoted(name)}",
        "task_categories:",
        "- text-classification",
        "task_ids:",
        f"- {'multi-label-classification' if multilabel else 'multi-class-classification'}",
        "configs:",
        "- config_name: default",
        "  data_files:",
        *(
            f"  - split: {split}\n    path: {_quoted(f'{DATA_FOLDER}/{split}-*.parquet')}"
            for split in splits
        ),
        "dataset_info:",
        "  features:",
        "  - name: id",
        "    dtype: string",
        "  - name: text",
        "    dtype: string",
        "  - name: label",
        f"    {kind}:",
        "      class_label:",
        "        names:",
        names,
        "  splits:",
        *(
            f"  - name: {split}\n    num_bytes: {sizes.nbytes[split]}\n"
            f"    num_examples: {counts[split]}"
            for split in splits
        ),
        "---",
    ]
    return "\n".join(yaml) + "\n" + _prose(name, labels, multilabel, counts)


def _prose(name: str, labels: tuple[str, ...], multilabel: bool, counts: dict[str, int]) -> str:
    label_kind = (
        "a list of class indices (a set of labels; it may be empty)"
        if multilabel
        else "a class index"
    )
    return f"""
# {name}

Texts labelled in a labelloop workspace, exported with `labelloop export DIR --format hf`.

- **train** ({counts["train"]:,} rows): pool items with a final label: a lead's decision when
  there is one, else the majority of the current answers (as `labelloop export` decides it).
- **test** ({counts["test"]:,} rows): gold items with their gold label; they never trained a
  round, so they measure a model fairly.

Columns: `id` (the item's id in the workspace), `text`, and `label`, {label_kind} into the
label names {", ".join(f"`{label}`" for label in labels)}.

```python
from datasets import load_dataset

dataset = load_dataset("path/to/this/folder")
names = dataset["train"].features["label"]{".feature" if multilabel else ""}.names
```

The labelled pool items were chosen by active learning, so they are not a random sample of
the pool: class balance and difficulty differ from the data a model will meet.
"""
