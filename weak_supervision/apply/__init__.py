"""Run LFs and rules over a frame of items: one module per engine, ``local``, ``snorkel`` and
``dask``, sharing :mod:`weak_supervision.apply.core`.

All three give the same vote matrix ``L`` (rows = frame rows, columns = LFs, ``-1`` abstain):
rules use the same RE2 patterns everywhere and code LFs see the same ``Row`` objects. An LF that
raises on a row abstains there; its faults are counted and the first message kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from weak_supervision.apply.core import (
    DEFAULT_CHUNK_ROWS,
    AnyLF,
    ApplyOptions,
    ApplyResult,
    EngineVotes,
    ProgressCallback,
    check_lfs,
    is_dask_frame,
    prepare_frame,
    record_faults,
    vote_partition,
)
from weak_supervision.apply.dask import votes_dask
from weak_supervision.apply.local import votes_local
from weak_supervision.apply.snorkel import votes_snorkel
from weak_supervision.errors import ApplyError
from weak_supervision.lf import ABSTAIN

#: Engine name -> the function that votes; a new engine is one module and one entry here.
ENGINE_VOTES: dict[str, Callable[[Sequence[AnyLF], Any, ApplyOptions], EngineVotes]] = {
    "local": votes_local,
    "snorkel": votes_snorkel,
    "dask": votes_dask,
}
ENGINES = tuple(ENGINE_VOTES)

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "ENGINES",
    "ENGINE_VOTES",
    "ApplyOptions",
    "ApplyResult",
    "EngineVotes",
    "apply_lfs",
    "vote_partition",
]


def apply_lfs(
    lfs: Sequence[AnyLF],
    frame: Any,
    *,
    engine: str = "local",
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: ProgressCallback | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    lf_timeout: float | None = None,
) -> ApplyResult:
    """Apply bound LFs and rules to every row of ``frame``.

    Parameters
    ----------
    lfs
        Bound code LFs (``LabelingFunction.bind``, ``load_lf_dir``) and bound rules
        (``rule.bind``), in the column order wanted in ``L``. Names must be unique.
    frame
        One row per item: a ``text`` column and the source fields as further columns. Row
        order is kept; the index is ignored. With the ``dask`` engine it may also be a Dask
        DataFrame (``dd.read_parquet(...)``), so workers read the data where it lies instead
        of receiving it from this process.
    engine
        ``local`` (vectorised rules, a loop for code LFs), ``snorkel`` (``PandasLFApplier``)
        or ``dask`` (partitions on a ``dask.distributed`` cluster).
    scheduler
        ``dask`` only: address of a running scheduler; without it a ``LocalCluster`` of
        ``n_workers`` processes (default 2) is started and closed around the call.
    progress
        Called as ``progress(rows_done, rows_total)`` as work completes (for a progress bar).
    lf_timeout
        ``local`` only: the longest one code LF call may take, in seconds (None: no limit).
        Code LFs then run in a forked child process; a call that overruns stops the apply with
        ``LFTimeoutError`` naming the LF and the row, and no votes are returned. Needs the
        ``fork`` start method (Linux, macOS); elsewhere the calls run without a limit.
    """
    # pandas and pyarrow (~0.5 s, ~100 MB): loaded only when LFs run or are analysed
    import pandas as pd

    _check_inputs(lfs, frame, engine, scheduler)
    if lf_timeout is not None and not lf_timeout > 0:
        raise ApplyError(
            f"lf_timeout: expected a number of seconds > 0 or None, found {lf_timeout!r}"
        )
    started = time.perf_counter()
    if not lfs:  # nothing to run: no cluster to start, no Snorkel applier to build
        n_rows = len(prepare_frame(frame)) if isinstance(frame, pd.DataFrame) else len(frame)
        return ApplyResult(np.full((n_rows, 0), ABSTAIN, np.int64), [], [], engine, 0.0)
    options = ApplyOptions(progress, chunk_rows, scheduler, n_workers, lf_timeout)
    votes = ENGINE_VOTES[engine](lfs, frame, options)
    result = ApplyResult(
        L=votes.L,
        names=[lf.name for lf in lfs],
        versions=[lf.version for lf in lfs],
        engine=engine,
        seconds=time.perf_counter() - started,
    )
    record_faults(result, lfs, votes.row_at, votes.known)
    return result


def _check_inputs(lfs: Sequence[AnyLF], frame: Any, engine: str, scheduler: str | None) -> None:
    # pandas and pyarrow (~0.5 s, ~100 MB): loaded only when LFs run or are analysed
    import pandas as pd

    if engine not in ENGINES:
        raise ApplyError(f"unknown engine {engine!r}, expected one of {list(ENGINES)}")
    if scheduler is not None and engine != "dask":
        raise ApplyError(f"a scheduler address only applies to the dask engine, not {engine!r}")
    if engine == "dask" and is_dask_frame(frame):
        return check_lfs(lfs)
    if not isinstance(frame, pd.DataFrame):
        raise ApplyError(f"expected a pandas DataFrame, found {type(frame).__name__}")
    if "text" not in frame.columns:
        raise ApplyError(f"the frame needs a 'text' column, found {list(frame.columns)}")
    if not frame.columns.is_unique:
        raise ApplyError(f"the frame's column names must be unique: {list(frame.columns)}")
    check_lfs(lfs)
