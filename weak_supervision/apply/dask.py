"""The ``dask`` engine: partitions voted on a ``dask.distributed`` cluster.

Our own applier rather than Snorkel's ``DaskLFApplier``: that one lets Dask infer the output by
running the LFs on a dummy partition, which fails on current Dask; here ``meta`` is explicit.
The frame may be a pandas DataFrame (sent to the workers) or a Dask DataFrame that the workers
read where it lies.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from weak_supervision.apply.core import (
    AnyLF,
    ApplyOptions,
    EngineVotes,
    ProgressCallback,
    frame_row,
    is_dask_frame,
    prepare_frame,
    stack,
    text_array,
    vote_partition,
)
from weak_supervision.errors import ApplyError
from weak_supervision.lf import FAULT, BoundLF, Row

if TYPE_CHECKING:
    import pandas as pd

#: Votes travel from Dask workers as int16 (a quarter of int64's bytes; 32,767 labels).
_WIRE_DTYPE = np.int16


def votes_dask(lfs: Sequence[AnyLF], frame: Any, options: ApplyOptions) -> EngineVotes:
    """Votes computed on a cluster; also a way to fetch one row back for fault messages."""
    # pandas and pyarrow (~0.5 s, ~100 MB): loaded only when LFs run or are analysed
    import pandas as pd

    data = frame if is_dask_frame(frame) else prepare_frame(frame)  # checked before any cluster
    # Local: dask adds about half a second to an import, and only this engine needs it.
    import dask
    import dask.dataframe as dd

    client, cluster = _connect(options.scheduler, options.n_workers)
    try:
        if isinstance(data, pd.DataFrame):
            # Keep object columns as they are: Dask would make Arrow strings with pd.NA.
            with dask.config.set({"dataframe.convert-string": False}):
                n_parts = _n_partitions(len(data), client, options.chunk_rows)
                ddf = dd.from_pandas(data, npartitions=n_parts, sort=False)
            L = _dask_vote_matrix(client, ddf, lfs, options.progress, len(data))
            return EngineVotes(L, lambda position: frame_row(data, position), {})
        L = _dask_vote_matrix(client, data, lfs, options.progress, None)
        lengths = _faulty_partitions(L, data)
        partitions = [client.compute(data.partitions[k]).result() for k in lengths]
        fetched = {k: prepare_frame(p) for k, p in zip(lengths, partitions, strict=True)}
        return EngineVotes(L, lambda position: _row_in_partitions(fetched, lengths, position), {})
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _connect(scheduler: str | None, n_workers: int | None) -> tuple[Any, Any]:
    """A client on ``scheduler``, or on a new LocalCluster (returned so it can be closed)."""
    # Local: slow optional package, imported only when this engine runs.
    from distributed import Client, LocalCluster

    if scheduler is None:
        cluster = LocalCluster(
            n_workers=n_workers or 2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="10s"), None
    except (OSError, TimeoutError) as exc:
        raise ApplyError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc


def _dask_vote_matrix(
    client: Any,
    ddf: Any,
    lfs: Sequence[AnyLF],
    progress: ProgressCallback | None,
    n_rows: int | None,
) -> np.ndarray:
    """Votes per partition on the cluster, gathered in partition order.

    ``n_rows`` is None for a Dask DataFrame read by the workers (counting its rows would read
    it twice): progress then extrapolates the total from the partitions done so far.
    """
    # pandas and pyarrow (~0.5 s, ~100 MB): loaded only when LFs run or are analysed
    import pandas as pd

    # Local: slow optional package, imported only when this engine runs.
    from distributed import as_completed

    if "text" not in ddf.columns:
        raise ApplyError(f"the frame needs a 'text' column, found {list(ddf.columns)}")
    # Explicit meta: without it Dask runs the LFs on a dummy partition to guess the output,
    # which is what breaks Snorkel's own DaskLFApplier. A fresh run id gives fresh task keys,
    # so a second call never reuses results still held by the scheduler.
    meta = pd.DataFrame({f"lf{j}": pd.Series(dtype=_WIRE_DTYPE) for j in range(len(lfs))})
    votes = ddf.map_partitions(_partition_frame, list(lfs), uuid.uuid4().hex, meta=meta)
    with warnings.catch_warnings():
        # A pandas frame travels inside the graph; Dask's advice to load the data on the
        # workers instead is what passing a Dask DataFrame does (documented there).
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        futures = client.compute(votes.to_delayed())
    done = 0
    for finished, future in enumerate(as_completed(futures), start=1):
        done += len(future.result())
        if progress is not None:
            total = n_rows if n_rows is not None else round(done * len(futures) / finished)
            progress(done, total)
    parts = [part.to_numpy(dtype=np.int64) for part in client.gather(futures)]
    return stack(parts, len(lfs))


def _n_partitions(n_rows: int, client: Any, chunk_rows: int) -> int:
    """Enough partitions to keep every worker thread busy, none longer than ``chunk_rows``."""
    threads = max(1, sum(client.nthreads().values()))
    return max(1, min(n_rows, max(2 * threads, -(-n_rows // max(1, chunk_rows)))))


def _partition_frame(partition: pd.DataFrame, lfs: list[AnyLF], run_id: str) -> pd.DataFrame:
    """Votes of one partition (``run_id`` only makes the task keys unique per call).

    As in the local engine, the object copy of the rows is made only for code LFs.
    """
    # pandas and pyarrow (~0.5 s, ~100 MB): loaded only when LFs run or are analysed
    import pandas as pd

    texts = text_array(partition)
    needs_rows = any(isinstance(lf, BoundLF) for lf in lfs)
    rows = prepare_frame(partition) if needs_rows else None
    votes = vote_partition(lfs, rows, texts).astype(_WIRE_DTYPE)
    return pd.DataFrame(votes, columns=[f"lf{j}" for j in range(len(lfs))], index=partition.index)


def _faulty_partitions(L: np.ndarray, ddf: Any) -> dict[int, tuple[int, int]]:
    """Partitions holding a FAULT, as partition number -> (first row, end row) in ``L``."""
    faulty_rows = np.flatnonzero((L == FAULT).any(axis=1))
    if faulty_rows.size == 0:
        return {}
    lengths = ddf.map_partitions(len).compute().tolist()
    bounds = np.cumsum([0, *lengths])
    wanted: dict[int, tuple[int, int]] = {}
    for j in range(L.shape[1]):
        column_faults = np.flatnonzero(L[:, j] == FAULT)
        if column_faults.size:
            k = int(np.searchsorted(bounds, column_faults[0], side="right") - 1)
            wanted[k] = (int(bounds[k]), int(bounds[k + 1]))
    return wanted


def _row_in_partitions(
    fetched: dict[int, pd.DataFrame], bounds: dict[int, tuple[int, int]], position: int
) -> Row:
    for k, (first, end) in bounds.items():
        if first <= position < end:
            return frame_row(fetched[k], position - first)
    raise ApplyError(f"row {position} was not fetched from the cluster")
