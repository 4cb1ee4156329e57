"""Weak labels for the rows of a data file, from one LF file and without a store
(``labelloop simulate --lfs``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labeling.errors import BadInput
from weak_supervision import apply_lfs, fit_label_model, load_lf_file, rule_from_spec

if TYPE_CHECKING:
    pass


def weak_labels_for_file(
    path: Any, labels: list[str], rows: list[dict[str, Any]], texts: list[str]
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Weak labels for rows of a data file from one LF file (``simulate --lfs``).

    The file's code LFs load as in ``lfs/``; a module-level ``RULES`` list of rule specs (as
    in docs/examples/youtube_lfs.py) adds keyword and regex rules. Returns the label index
    (or -1) and confidence per row, and a short report.
    """
    # pandas and pyarrow (~0.5 s, ~100 MB): loaded only when LFs run or are analysed
    import pandas as pd

    file = Path(path)
    bound = _load_file(file, labels)
    records = [
        {**{k: v for k, v in row.items() if k != "text"}, "text": text}
        for row, text in zip(rows, texts, strict=True)
    ]
    result = apply_lfs(bound, pd.DataFrame.from_records(records), engine="local")
    weak = fit_label_model(result.L, len(labels), seed=0)
    report = {
        "lfs": len(bound),
        "model": weak.model,
        "message": weak.message,
        "coverage": round(weak.coverage, 6),
        "faults": {k: v for k, v in result.faults.items() if v},
    }
    return weak.labels, weak.confidence, report


def _load_file(file: Path, labels: list[str]) -> list[Any]:
    """The code LFs and ``RULES`` of one LF file, bound to ``labels``; any error is
    :class:`BadInput` naming the ``--lfs`` option."""
    if not file.is_file():
        raise BadInput(f"option '--lfs': {file}: no such file")
    code, errors = load_lf_file(file, labels)
    bound: list[Any] = list(code)
    if errors:
        raise BadInput(f"option '--lfs': {'; '.join(str(e) for e in errors)}")
    spec = importlib.util.spec_from_file_location(f"_labelloop_sim_{file.stem}", file)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for rule_spec in getattr(module, "RULES", []) or []:
            try:
                bound.append(rule_from_spec(rule_spec).bind(labels))
            except Exception as exc:
                raise BadInput(f"option '--lfs': {file.name}: {exc}") from exc
    if not bound:
        raise BadInput(f"option '--lfs': {file.name} holds no LFs or RULES")
    return bound
