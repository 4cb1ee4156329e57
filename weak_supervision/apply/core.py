"""What every engine shares: input checks, the prepared frame, the votes of one partition, and
fault counting on the finished vote matrix.

An engine only marks the cells where a code LF raised (``FAULT``); :func:`record_faults` counts
them per LF, describes the first one and turns them into ``ABSTAIN``, the same for all engines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from weak_supervision.errors import ApplyError
from weak_supervision.lf import ABSTAIN, FAULT, BoundLF, Row
from weak_supervision.rules import BoundRule, vote_rules_on_column

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: Rows per step: bounds memory of the per-chunk arrow arrays and sets progress granularity.
DEFAULT_CHUNK_ROWS = 100_000

AnyLF = BoundLF | BoundRule
ProgressCallback = Callable[[int, int], None]
#: The row at a position of the frame, as the LFs saw it (to describe a fault).
RowAt = Callable[[int], Row]


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


@dataclass(frozen=True)
class ApplyOptions:
    """How ``apply_lfs`` was asked to run; each engine reads the fields that concern it."""

    progress: ProgressCallback | None = None
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    #: ``dask`` only: scheduler address, or the size of the LocalCluster started without one.
    scheduler: str | None = None
    n_workers: int | None = None
    #: ``local`` only: the longest one code LF call may take, in seconds.
    lf_timeout: float | None = None


class EngineVotes(NamedTuple):
    """What an engine hands back to ``apply_lfs``."""

    #: rows of the frame x LFs, ``FAULT`` where a code LF raised.
    L: np.ndarray
    row_at: RowAt
    #: LF column -> (row, message) of a first fault the engine already described.
    known: dict[int, tuple[int, str]]


def check_lfs(lfs: Sequence[AnyLF]) -> None:
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


def is_dask_frame(frame: Any) -> bool:
    """A Dask DataFrame, recognised without importing Dask for the other engines."""
    return type(frame).__module__.startswith("dask") and hasattr(frame, "map_partitions")


def prepare_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Positions as index and Python objects in every column, the same for every engine.

    Object columns make a code LF see the same values (``int``, ``str``, ``None`` for missing)
    whether a row comes from our loop, Snorkel's ``DataFrame.apply`` or a Dask partition.
    """
    text_array(frame)  # refuses non-text values before any LF runs
    prepared = frame.reset_index(drop=True).astype(object)
    # One spelling of "missing" (None, as in the stored JSON rows), whatever the source used:
    # NaN from CSV, pd.NA from Parquet or Arrow strings.
    return prepared.where(prepared.notna(), None)


def text_array(frame: pd.DataFrame) -> pa.Array:
    """The text column as an Arrow string array (missing values null), checked on the way."""
    # pandas and pyarrow (~0.5 s, ~100 MB): loaded only when LFs run or are analysed
    import pandas as pd
    import pyarrow as pa

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


def frame_rows(frame: pd.DataFrame) -> list[Row]:
    columns = [str(c) for c in frame.columns]
    return [Row(**dict(zip(columns, values, strict=True))) for values in frame.itertuples(False)]


def frame_row(frame: pd.DataFrame, position: int) -> Row:
    return frame_rows(frame.iloc[position : position + 1])[0]


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
        column = texts if texts is not None else text_array(frame)  # type: ignore[arg-type]
        L[:, rule_columns] = vote_rules_on_column(rules, column)  # type: ignore[arg-type]
    if code_columns:
        if frame is None:
            raise ApplyError("code LFs need the frame, not only its text column")
        rows = frame_rows(frame)
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
        except Exception:  # counted as a fault and reported by record_faults
            votes.append(FAULT)
    return votes


def chunks(n_rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    step = max(1, chunk_rows)
    return [(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def stack(parts: list[np.ndarray], n_lfs: int) -> np.ndarray:
    if not parts:
        return np.full((0, n_lfs), ABSTAIN, dtype=np.int64)
    return np.concatenate(parts, axis=0)


def record_faults(
    result: ApplyResult,
    lfs: Sequence[AnyLF],
    row_at: RowAt,
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


def _fault_message(lf: AnyLF, row_at: RowAt, position: int) -> str:
    try:
        lf.vote(row_at(position))
    except Exception as exc:  # the fault being described
        return f"row {position}: {type(exc).__name__}: {exc}"
    return f"row {position}: raised when applied, but not when run again (non-deterministic LF)"
