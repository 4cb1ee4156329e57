"""The ``local`` engine: rules vectorised on the Arrow text column, code LFs in a loop here.

It can also limit how long one code LF call may take (``lf_timeout``): the code LFs then run in
a forked child process that the caller watches and kills when a call overruns, which stops any
hang (a Python loop, a blocking call, a catastrophic ``re`` pattern in C), from whatever thread
the caller runs in.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from weak_supervision.apply.core import (
    AnyLF,
    ApplyOptions,
    EngineVotes,
    chunks,
    frame_row,
    frame_rows,
    prepare_frame,
    stack,
    text_array,
    vote_partition,
)
from weak_supervision.errors import LFProcessDied, LFTimeoutError
from weak_supervision.lf import ABSTAIN, FAULT, BoundLF, Row
from weak_supervision.rules import BoundRule, vote_rules_on_column

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: How often the parent looks at the child running code LFs under a time limit (seconds).
_WATCH_INTERVAL = 0.05


def votes_local(lfs: Sequence[AnyLF], frame: pd.DataFrame, options: ApplyOptions) -> EngineVotes:
    """Rules on the Arrow text column; the object copy of the frame only if code LFs need it.

    Under a time limit, also returns the first fault per LF column found by the child
    (position, message), so those LFs are not run again unguarded to describe it.
    """
    texts = text_array(frame)
    needs_rows = any(isinstance(lf, BoundLF) for lf in lfs)
    prepared = prepare_frame(frame) if needs_rows else None
    lf_timeout = options.lf_timeout
    limited = lf_timeout is not None and needs_rows and _can_fork()
    parts = []
    known: dict[int, tuple[int, str]] = {}
    for start, stop in chunks(len(frame), options.chunk_rows):
        rows = prepared.iloc[start:stop] if prepared is not None else None
        column = texts.slice(start, stop - start)
        if limited:
            part, found = _vote_partition_limited(lfs, rows, column, lf_timeout, start)  # type: ignore[arg-type]
            for j, fault in found.items():
                known.setdefault(j, fault)
            parts.append(part)
        else:
            parts.append(vote_partition(lfs, rows, column))
        if options.progress is not None:
            options.progress(stop, len(frame))

    def row_at(position: int) -> Row:
        return frame_row(prepare_frame(frame.iloc[position : position + 1]), 0)

    return EngineVotes(stack(parts, len(lfs)), row_at, known)


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
    _start_frozen(child)
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


def _start_frozen(child: Any) -> None:
    """Start ``child`` with the collector frozen across the fork.

    The child's collections then never walk (and so never write to, and copy) the parent's
    objects.
    """
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
    rows = frame_rows(frame)
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
