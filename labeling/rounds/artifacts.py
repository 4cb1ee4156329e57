"""A round's folder: ``models/round-NNNN`` with its model, metrics and the files its checks write.

A round writes everything to ``models/.round-NNNN.tmp`` and renames that folder at the end, so
a round folder is either complete or absent; a failed round's temporary folder is removed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from labeling.context import Context


def round_dir(ws: Context, round_id: int) -> Path:
    return ws.models_dir / f"round-{round_id:04d}"


def _tmp_dir(ws: Context, round_id: int) -> Path:
    return ws.models_dir / f".round-{round_id:04d}.tmp"


def save_model(
    ws: Context,
    round_id: int,
    model: Any,
    metrics: dict[str, Any],
    extras: dict[str, Any] | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> str:
    """Write the round's folder: ``model.joblib`` (when there is a model), ``metrics.json``,
    each of ``extras`` as JSON and each of ``arrays`` as ``.npy``; returns its path relative
    to the workspace."""
    import joblib  # ~0.1 s: only a running round needs it

    final = round_dir(ws, round_id)
    tmp = _tmp_dir(ws, round_id)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    if model is not None:
        joblib.dump(model, tmp / "model.joblib")
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    for name, content in (extras or {}).items():
        (tmp / name).write_text(json.dumps(content))
    for name, array in (arrays or {}).items():
        np.save(tmp / name, array, allow_pickle=False)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return str(final.relative_to(ws.root))


def cleanup_tmp(ws: Context, round_id: int) -> None:
    """Remove what a failed round left half-written."""
    tmp = _tmp_dir(ws, round_id)
    if tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)
