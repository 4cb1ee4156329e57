"""Run LFs and rules over a frame of items: the ``local``, ``snorkel`` and ``dask`` engines.

All three give the same vote matrix ``L`` (rows = frame rows, columns = LFs, ``-1`` abstain):
rules use the same RE2 patterns everywhere and code LFs see the same ``Row`` objects. An LF that
raises on a row abstains there; its faults are counted and the first message kept.

The local engine can also limit how long one code LF call may take (``lf_timeout``): the code
LFs then run in a forked child process that the caller watches and kills when a call overruns,
which stops any hang (a Python loop, a blocking call, a catastrophic ``re`` pattern in C), from
whatever thread the caller runs in.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from weak_supervision.errors import ApplyError, LFProcessDied, LFTimeoutError
from weak_supervision.lf import ABSTAIN, FAULT, BoundLF, Row
from weak_supervision.rules import BoundRule, vote_rules_on_column

ENGINES = ("local", "snorkel", "dask")
#: Rows per step: bounds memory of the per-chunk arrow arrays and sets progress granularity.
DEFAULT_CHUNK_ROWS = 100_000

#: Votes travel from Dask workers as int16 (a quarter of int64's bytes; 32,767 labels).
_WIRE_DTYPE = np.int16

AnyLF = BoundLF | BoundRule
Progress = Callable[[int, int], None]


@dataclass
class ApplyResult:
    """Votes of ``lfs`` on a frame, plus what went wrong per LF."""

    L: np.ndarray
    names: list[str]
    versions: list[str]
    engine: str
    seconds: float
    #: LF name -> rows on which it raised (every LF has an entry, 0 when clean).
    faults: dict[str, int] = field(default_factory=dict)
    #: LF name -> first fault as "row N: ExceptionType: message" (only LFs with faults).
    first_fault: dict[str, str] = field(default_factory=dict)
    #: LF name -> position in the frame of that first fault (only LFs with faults).
    first_fault_row: dict[str, int] = field(default_factory=dict)


def apply_lfs(
    lfs: Sequence[AnyLF],
    frame: Any,
    *,
    engine: str = "local",
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: Progress | None = None,
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
    _check_inputs(lfs, frame, engine, scheduler)
    if lf_timeout is not None and not lf_timeout > 0:
        raise ApplyError(
            f"lf_timeout: expected a number of seconds > 0 or None, found {lf_timeout!r}"
        )
    started = time.perf_counter()
    if not lfs:  # nothing to run: no cluster to start, no Snorkel applier to build
        n_rows = len(_prepare_frame(frame)) if isinstance(frame, pd.DataFrame) else len(frame)
        return ApplyResult(np.full((n_rows, 0), ABSTAIN, np.int64), [], [], engine, 0.0)
    known: dict[int, tuple[int, str]] = {}
    if engine == "dask":
        data = frame if _is_dask_frame(frame) else _prepare_frame(frame)
        L, row_at = _votes_dask(lfs, data, scheduler, n_workers, progress, chunk_rows)
    elif engine == "local":
        L, row_at, known = _votes_local(lfs, frame, progress, chunk_rows, lf_timeout)
    else:
        prepared = _prepare_frame(frame)
        L = _votes_snorkel(lfs, prepared, progress, chunk_rows)

        def row_at(position: int) -> Row:
            return _row_at(prepared, position)

    seconds = time.perf_counter() - started
    result = ApplyResult(
        L=L,
        names=[lf.name for lf in lfs],
        versions=[lf.version for lf in lfs],
        engine=engine,
        seconds=seconds,
    )
    _record_faults(result, lfs, row_at, known)
    return result


def _check_inputs(lfs: Sequence[AnyLF], frame: Any, engine: str, scheduler: str | None) -> None:
    if engine not in ENGINES:
        raise ApplyError(f"unknown engine {engine!r}, expected one of {list(ENGINES)}")
    if scheduler is not None and engine != "dask":
        raise ApplyError(f"a scheduler address only applies to the dask engine, not {engine!r}")
    if engine == "dask" and _is_dask_frame(frame):
        return _check_lfs(lfs)
    if not isinstance(frame, pd.DataFrame):
        raise ApplyError(f"expected a pandas DataFrame, found {type(frame).__name__}")
    if "text" not in frame.columns:
        raise ApplyError(f"the frame needs a 'text' column, found {list(frame.columns)}")
    if not frame.columns.is_unique:
        raise ApplyError(f"the frame's column names must be unique: {list(frame.columns)}")
    _check_lfs(lfs)


def _check_lfs(lfs: Sequence[AnyLF]) -> None:
    bad = [lf for lf in lfs if not isinstance(lf, BoundLF | BoundRule)]
    if bad:
        raise ApplyError(
            f"expected bound LFs and rules (call .bind(labels)), found {type(bad[0]).__name__}"
        )
    names = [lf.name for lf in lfs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ApplyError(f"LF names must be unique, found duplicates {duplicates}")
    label_orders = {lf.labels for lf in lfs}
    if len(label_orders) > 1:
        raise ApplyError(f"LFs are bound to different label lists: {sorted(label_orders)}")


def _is_dask_frame(frame: Any) -> bool:
    """A Dask DataFrame, recognised without importing Dask for the other engines."""
    return type(frame).__module__.startswith("dask") and hasattr(frame, "map_partitions")


def _prepare_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Positions as index and Python objects in every column, the same for every engine.

    Object columns make a code LF see the same values (``int``, ``str``, ``None`` for missing)
    whether a row comes from our loop, Snorkel's ``DataFrame.apply`` or a Dask partition.
    """
    _text_array(frame)  # refuses non-text values before any LF runs
    prepared = frame.reset_index(drop=True).astype(object)
    # One spelling of "missing" (None, as in the stored JSON rows), whatever the source used:
    # NaN from CSV, pd.NA from Parquet or Arrow strings.
    return prepared.where(prepared.notna(), None)


def _text_array(frame: pd.DataFrame) -> pa.Array:
    """The text column as an Arrow string array (missing values null), checked on the way."""
    try:
        return pa.array(frame["text"], type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        texts = frame["text"].tolist()
        for position, value in enumerate(texts):
            if not (isinstance(value, str) or value is None or bool(pd.isna(value))):
                raise ApplyError(
                    f"row {position}: text must be a string or missing, found "
                    f"{type(value).__name__} {value!r}"
                ) from None
        raise


def _rows(frame: pd.DataFrame) -> list[Row]:
    columns = [str(c) for c in frame.columns]
    return [Row(**dict(zip(columns, values, strict=True))) for values in frame.itertuples(False)]


def vote_partition(
    lfs: Sequence[AnyLF], frame: pd.DataFrame | None, texts: pa.Array | None = None
) -> np.ndarray:
    """Votes of ``lfs`` on a prepared frame, ``FAULT`` where a code LF raised.

    The body of the local engine and of every Dask partition. Rules need only ``texts``;
    ``frame`` may be None when there are no code LFs.
    """
    n_rows = len(texts) if texts is not None else len(frame) if frame is not None else 0
    L = np.full((n_rows, len(lfs)), ABSTAIN, dtype=np.int64)
    rule_columns = [j for j, lf in enumerate(lfs) if isinstance(lf, BoundRule)]
    code_columns = [j for j, lf in enumerate(lfs) if isinstance(lf, BoundLF)]
    if rule_columns:
        rules = [lfs[j] for j in rule_columns]
        column = texts if texts is not None else _text_array(frame)  # type: ignore[arg-type]
        L[:, rule_columns] = vote_rules_on_column(rules, column)  # type: ignore[arg-type]
    if code_columns:
        if frame is None:
            raise ApplyError("code LFs need the frame, not only its text column")
        rows = _rows(frame)
        for j in code_columns:
            L[:, j] = _code_votes(lfs[j], rows)  # type: ignore[arg-type]
    return L


def _code_votes(lf: BoundLF, rows: list[Row]) -> list[int]:
    """One code LF over many rows; any exception on a row is a FAULT there, never a stop."""
    votes = []
    vote = lf.vote
    for row in rows:
        try:
            votes.append(vote(row))
        except Exception:  # counted as a fault and reported by _record_faults
            votes.append(FAULT)
    return votes


def _chunks(n_rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    step = max(1, chunk_rows)
    return [(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def _votes_local(
    lfs: Sequence[AnyLF],
    frame: pd.DataFrame,
    progress: Progress | None,
    chunk_rows: int,
    lf_timeout: float | None = None,
) -> tuple[np.ndarray, Callable[[int], Row], dict[int, tuple[int, str]]]:
    """Rules on the Arrow text column; the object copy of the frame only if code LFs need it.

    Also returns the first fault per LF column found under a time limit (position, message),
    so those LFs are not run again unguarded to describe it.
    """
    texts = _text_array(frame)
    needs_rows = any(isinstance(lf, BoundLF) for lf in lfs)
    prepared = _prepare_frame(frame) if needs_rows else None
    limited = lf_timeout is not None and needs_rows and _can_fork()
    parts = []
    known: dict[int, tuple[int, str]] = {}
    for start, stop in _chunks(len(frame), chunk_rows):
        rows = prepared.iloc[start:stop] if prepared is not None else None
        column = texts.slice(start, stop - start)
        if limited:
            part, found = _vote_partition_limited(lfs, rows, column, lf_timeout, start)  # type: ignore[arg-type]
            for j, fault in found.items():
                known.setdefault(j, fault)
            parts.append(part)
        else:
            parts.append(vote_partition(lfs, rows, column))
        if progress is not None:
            progress(stop, len(frame))

    def row_at(position: int) -> Row:
        return _row_at(_prepare_frame(frame.iloc[position : position + 1]), 0)

    return _stack(parts, len(lfs)), row_at, known


# --------------------------------------------------------------------------- per-call time limit

#: How often the parent looks at the child running code LFs under a time limit (seconds).
_WATCH_INTERVAL = 0.05


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _vote_partition_limited(
    lfs: Sequence[AnyLF], frame: pd.DataFrame, texts: pa.Array, limit: float, offset: int
) -> tuple[np.ndarray, dict[int, tuple[int, str]]]:
    """``vote_partition`` with the code LFs in a watched child process (rules stay here)."""
    L = np.full((len(texts), len(lfs)), ABSTAIN, dtype=np.int64)
    rule_columns = [j for j, lf in enumerate(lfs) if isinstance(lf, BoundRule)]
    code_columns = [j for j, lf in enumerate(lfs) if isinstance(lf, BoundLF)]
    if rule_columns:
        L[:, rule_columns] = vote_rules_on_column([lfs[j] for j in rule_columns], texts)  # type: ignore[misc]
    found: dict[int, tuple[int, str]] = {}
    if code_columns:
        code = [lfs[j] for j in code_columns]
        votes, faults = _code_votes_in_child(code, frame, limit, offset)  # type: ignore[arg-type]
        L[:, code_columns] = votes
        found = {code_columns[k]: (offset + row, message) for k, (row, message) in faults.items()}
    return L, found


def _code_votes_in_child(
    lfs: Sequence[BoundLF], frame: pd.DataFrame, limit: float, offset: int
) -> tuple[np.ndarray, dict[int, tuple[int, str]]]:
    """Votes of code LFs computed in a forked child that is killed when one call overruns.

    A fork, not a spawned interpreter: the child starts in milliseconds with the LFs and the
    rows already in memory (nothing to pickle, so any LF works), whatever thread forks it.
    Before each call the child writes the call's number (see :func:`_call_number`) to shared
    memory, one integer; the parent reads it every ``_WATCH_INTERVAL`` seconds (a tenth of
    ``limit`` if less) and stops the child when one number stays longer than ``limit``. A call
    is timed from when the parent first saw its number, so it is never stopped early and at
    most one interval late. Only the votes travel back.

    The collector is frozen across the fork: the child's collections then never walk (and so
    never write to, and copy) the parent's objects.
    """
    context = multiprocessing.get_context("fork")
    watch = context.RawArray("q", 1)
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_votes,
        args=(lfs, frame, watch, sender),
        name="labelloop-lfs",
        daemon=True,
    )
    collecting, ours = gc.isenabled(), gc.get_freeze_count() == 0  # the caller's freeze stays
    gc.disable()
    if ours:
        gc.freeze()
    try:
        child.start()
    finally:
        if ours:
            gc.unfreeze()
        if collecting:
            gc.enable()
    sender.close()
    interval = min(_WATCH_INTERVAL, limit / 10)
    seen, since = 0, time.monotonic()
    try:
        while True:
            if receiver.poll(interval):
                try:
                    votes, faults = receiver.recv()
                except EOFError:
                    raise _child_died(lfs, child, watch, offset, len(frame)) from None
                return votes, faults
            now, current = time.monotonic(), watch[0]
            if current != seen:
                seen, since = current, now
            elif current and now - since > limit:
                j, row = _which_call(current, len(frame))
                raise LFTimeoutError(lfs[j].name, offset + row, limit)
            if not child.is_alive() and not receiver.poll():
                raise _child_died(lfs, child, watch, offset, len(frame))
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()


def _call_number(lf_column: int, row: int, n_rows: int) -> int:
    """What the child writes before a call: 1 + its position in the run (0: no call runs)."""
    return lf_column * n_rows + row + 1


def _which_call(number: int, n_rows: int) -> tuple[int, int]:
    """The LF column and row of a call number (the inverse of :func:`_call_number`)."""
    return divmod(number - 1, n_rows)


def _child_died(
    lfs: Sequence[BoundLF], child: Any, watch: Any, offset: int, n_rows: int
) -> LFProcessDied:
    child.join(1)
    where = ""
    if watch[0]:
        j, row = _which_call(watch[0], n_rows)
        where = f" while LF {lfs[j].name!r} ran on row {offset + row}"
    return LFProcessDied(
        f"the process running the code LFs ended without answering (exit code "
        f"{child.exitcode}){where}; no votes were kept"
    )


def _child_votes(lfs: Sequence[BoundLF], frame: pd.DataFrame, watch: Any, sender: Any) -> None:
    """The child's work: every code LF over every row, announcing each call by its number."""
    gc.enable()  # frozen objects (the parent's) stay out of its collections
    rows = _rows(frame)
    L = np.full((len(rows), len(lfs)), ABSTAIN, dtype=np.int64)
    faults: dict[int, tuple[int, str]] = {}
    at = memoryview(watch).cast("B").cast("q")  # a plain store per call, no ctypes wrapper
    for j, lf in enumerate(lfs):
        vote = lf.vote
        votes = []
        first = _call_number(j, 0, len(rows))
        for i, row in enumerate(rows):
            at[0] = first + i
            try:
                votes.append(vote(row))
            except Exception as exc:  # a fault, counted by the parent as in the other engines
                votes.append(FAULT)
                if j not in faults:
                    faults[j] = (i, f"{type(exc).__name__}: {exc}")
        L[:, j] = votes
    at[0] = 0
    sender.send((L, faults))
    sender.close()


class _SnorkelCall:
    """Snorkel's view of one of our LFs: a Series in, an int out, faults noted by row."""

    def __init__(self, lf: AnyLF, fault_rows: list[int]) -> None:
        self.lf = lf
        self.fault_rows = fault_rows

    def __call__(self, x: pd.Series) -> int:
        try:
            return self.lf.vote(Row(**{str(k): v for k, v in x.items()}))
        except Exception:  # Snorkel drops negative votes, so faults are noted here by row
            self.fault_rows.append(int(x.name))
            return ABSTAIN


def _votes_snorkel(
    lfs: Sequence[AnyLF], frame: pd.DataFrame, progress: Progress | None, chunk_rows: int
) -> np.ndarray:
    from snorkel.labeling import LabelingFunction as SnorkelLF
    from snorkel.labeling import PandasLFApplier

    fault_rows: list[list[int]] = [[] for _ in lfs]
    wrapped = [
        SnorkelLF(name=lf.name, f=_SnorkelCall(lf, rows))
        for lf, rows in zip(lfs, fault_rows, strict=True)
    ]
    applier = PandasLFApplier(wrapped)
    parts = []
    for start, stop in _chunks(len(frame), chunk_rows):
        votes = applier.apply(frame.iloc[start:stop], progress_bar=False)
        parts.append(np.asarray(votes, dtype=np.int64).reshape(stop - start, len(lfs)))
        if progress is not None:
            progress(stop, len(frame))
    L = _stack(parts, len(lfs))
    for j, rows in enumerate(fault_rows):
        L[rows, j] = FAULT
    return L


def _votes_dask(
    lfs: Sequence[AnyLF],
    frame: Any,
    scheduler: str | None,
    n_workers: int | None,
    progress: Progress | None,
    chunk_rows: int,
) -> tuple[np.ndarray, Callable[[int], Row]]:
    """Votes computed on a cluster; also a way to fetch one row back for fault messages."""
    import dask
    import dask.dataframe as dd

    client, cluster = _connect(scheduler, n_workers)
    try:
        if isinstance(frame, pd.DataFrame):
            # Keep object columns as they are: Dask would make Arrow strings with pd.NA.
            with dask.config.set({"dataframe.convert-string": False}):
                n_parts = _n_partitions(len(frame), client, chunk_rows)
                ddf = dd.from_pandas(frame, npartitions=n_parts, sort=False)
            L = _dask_vote_matrix(client, ddf, lfs, progress, len(frame))
            return L, lambda position: _row_at(frame, position)
        L = _dask_vote_matrix(client, frame, lfs, progress, None)
        lengths = _faulty_partitions(L, frame)
        partitions = [client.compute(frame.partitions[k]).result() for k in lengths]
        fetched = {k: _prepare_frame(p) for k, p in zip(lengths, partitions, strict=True)}
        return L, lambda position: _row_in_partitions(fetched, lengths, position)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _connect(scheduler: str | None, n_workers: int | None) -> tuple[Any, Any]:
    """A client on ``scheduler``, or on a new LocalCluster (returned so it can be closed)."""
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
    client: Any, ddf: Any, lfs: Sequence[AnyLF], progress: Progress | None, n_rows: int | None
) -> np.ndarray:
    """Votes per partition on the cluster, gathered in partition order.

    ``n_rows`` is None for a Dask DataFrame read by the workers (counting its rows would read
    it twice): progress then extrapolates the total from the partitions done so far.
    """
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
    return _stack(parts, len(lfs))


def _n_partitions(n_rows: int, client: Any, chunk_rows: int) -> int:
    """Enough partitions to keep every worker thread busy, none longer than ``chunk_rows``."""
    threads = max(1, sum(client.nthreads().values()))
    return max(1, min(n_rows, max(2 * threads, -(-n_rows // max(1, chunk_rows)))))


def _partition_frame(partition: pd.DataFrame, lfs: list[AnyLF], run_id: str) -> pd.DataFrame:
    """Votes of one partition (``run_id`` only makes the task keys unique per call).

    As in the local engine, the object copy of the rows is made only for code LFs.
    """
    texts = _text_array(partition)
    needs_rows = any(isinstance(lf, BoundLF) for lf in lfs)
    rows = _prepare_frame(partition) if needs_rows else None
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
            return _row_at(fetched[k], position - first)
    raise ApplyError(f"row {position} was not fetched from the cluster")


def _row_at(frame: pd.DataFrame, position: int) -> Row:
    return _rows(frame.iloc[position : position + 1])[0]


def _stack(parts: list[np.ndarray], n_lfs: int) -> np.ndarray:
    if not parts:
        return np.full((0, n_lfs), ABSTAIN, dtype=np.int64)
    return np.concatenate(parts, axis=0)


def _record_faults(
    result: ApplyResult,
    lfs: Sequence[AnyLF],
    row_at: Callable[[int], Row],
    known: dict[int, tuple[int, str]] | None = None,
) -> None:
    """Count FAULT cells per LF, keep the first message, and turn FAULT into ABSTAIN.

    Engines only mark where an LF raised (a Dask worker cannot hand back exceptions cheaply);
    the message comes from re-running the LF on its first faulting row here, unless the engine
    already knows it (``known``: column -> (row, message), from the time-limited child).
    """
    known = known or {}
    for j, lf in enumerate(lfs):
        rows = np.flatnonzero(result.L[:, j] == FAULT)
        result.faults[lf.name] = int(rows.size)
        if rows.size:
            first = int(rows[0])
            result.first_fault_row[lf.name] = first
            if j in known and known[j][0] == first:
                result.first_fault[lf.name] = f"row {first}: {known[j][1]}"
            else:
                result.first_fault[lf.name] = _fault_message(lf, row_at, first)
    result.L[result.L == FAULT] = ABSTAIN


def _fault_message(lf: AnyLF, row_at: Callable[[int], Row], position: int) -> str:
    try:
        lf.vote(row_at(position))
    except Exception as exc:  # the fault being described
        return f"row {position}: {type(exc).__name__}: {exc}"
    return f"row {position}: raised when applied, but not when run again (non-deterministic LF)"
