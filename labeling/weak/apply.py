"""Applying the workspace's LFs incrementally and storing their votes.

Each LF row remembers the version its stored votes belong to and the highest item id they
cover, so re-applying touches only new items, and all items only for an LF whose code or spec
changed. Every LF runs before anything is written; the votes and stats are then written in one
transaction, under the apply lock (:mod:`labeling.weak.lock`).
"""

from __future__ import annotations

import functools
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from sqlalchemy import delete, func
from sqlmodel import col, select

from labeling.context import Context, ProgressCallback
from labeling.errors import BadInput
from labeling.store import db
from labeling.store.bulk import bulk_insert
from labeling.store.models import Item, LabelingFunction, LFVote
from labeling.weak.loading import LoadedLFs, resolve
from labeling.weak.lock import ApplyRunning, apply_lock
from labeling.weak.votes import CHUNK, mark_lfs_changed, stored_vote
from weak_supervision import (
    ApplyError,
    ApplyResult,
    LFTimeoutError,
    LoadResult,
    apply_lfs,
    load_lf_dir,
)

if TYPE_CHECKING:
    import pandas as pd

#: Called with (rows done, rows in all) while the LFs run.


class BrokenLFs(BadInput):
    """LF files or rules failed to load, and the caller did not ask to skip them."""


@dataclass
class ApplyReport:
    engine: str
    lfs: list[dict[str, Any]]
    errors: list[str]
    items: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "lfs": self.lfs,
            "errors": self.errors,
            "items": self.items,
            "seconds": round(self.seconds, 3),
        }


class _Run(NamedTuple):
    """One group of LFs run over the items above ``start``: what the store gets from it."""

    start: int
    group: list[Any]
    ids: np.ndarray
    external: list[str]
    result: ApplyResult


def item_frame(
    ws: Context, after: int, *, fields: bool, through: int | None = None
) -> tuple[np.ndarray, list[str], pd.DataFrame]:
    """Items above id ``after`` (up to ``through``): their ids, external ids, and their frame
    (``text`` plus, for code LFs, the source fields)."""
    # pandas and pyarrow (~0.5 s, ~100 MB): loaded only when LFs run or are analysed
    import pandas as pd

    query = select(Item.id, Item.external_id, Item.text, Item.source).where(  # type: ignore[call-overload]
        col(Item.id) > after
    )
    if through is not None:
        query = query.where(col(Item.id) <= through)
    with db.read_session(ws.engine) as session:
        rows = session.execute(query.order_by(col(Item.id))).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    external = [r[1] for r in rows]
    if not fields:
        return ids, external, pd.DataFrame({"text": [r[2] for r in rows]})
    records = []
    for _id, _external, text, source in rows:
        record = {k: v for k, v in json.loads(source).items() if k != "text"}
        record["text"] = text
        records.append(record)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame({"text": []})
    return ids, external, frame


def apply(
    ws: Context,
    *,
    engine: str = "local",
    scheduler: str | None = None,
    progress: ProgressCallback | None = None,
    skip_broken: bool = False,
    everything: bool = False,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
) -> ApplyReport:
    """Apply every active LF to the items it has not voted on yet (all items if it changed).

    One apply runs at a time per workspace (:func:`labeling.weak.lock.apply_lock`; ``wait``
    and ``on_wait`` say what to do when another holds it). Every LF runs before anything is
    written; the LF records, votes and stats are then written in one transaction. An apply
    that fails (an LF call over ``lf_timeout``, an unreachable scheduler) therefore leaves the
    store as it was.

    An LF file that fails to load, or a rule that cannot be built, stops the apply with
    :class:`BrokenLFs` before anything runs, unless ``skip_broken``: then the others are
    applied and the errors are in the report.

    ``everything`` re-applies every active LF to every item, as if each had changed: it
    restores votes that a store lost to an earlier labelloop (0.1.0), whose re-apply after an
    import deleted the LF's earlier votes.
    """
    started = time.perf_counter()
    found = load_lf_dir(ws.lfs_dir, ws.labels)
    if not skip_broken:
        with db.read_session(ws.engine) as session:
            broken = resolve(ws, session, found, record=False).errors
        if broken:
            raise BrokenLFs(_broken_message(broken))
    with apply_lock(ws, wait=wait, on_wait=on_wait):
        return _apply_locked(
            ws,
            found,
            engine=engine,
            scheduler=scheduler,
            progress=progress,
            skip_broken=skip_broken,
            everything=everything,
            started=started,
        )


def _apply_locked(
    ws: Context,
    found: LoadResult,
    *,
    engine: str,
    scheduler: str | None,
    progress: ProgressCallback | None,
    skip_broken: bool,
    everything: bool,
    started: float,
) -> ApplyReport:
    """The apply, once the lock is held: read what is applied, run, store, report."""
    with db.read_session(ws.engine) as session:
        loaded = resolve(ws, session, found, record=False)
        applied = {
            r.name: (r.applied_version, r.applied_through)
            for r in session.exec(select(LabelingFunction)).all()
        }
        last_item = int(session.exec(select(func.max(Item.id))).one() or 0)
    if loaded.errors and not skip_broken:  # broken since the check before the lock
        raise BrokenLFs(_broken_message(loaded.errors))
    groups = _groups_to_run(loaded, applied, last_item, everything=everything)
    runs = _run_groups(ws, loaded, groups, last_item, engine, scheduler, progress)
    rows = _store_runs(ws, found, runs, applied, engine=engine, last_item=last_item)
    n_items = max((len(run.ids) for run in runs), default=0)
    return ApplyReport(engine, rows, loaded.errors, n_items, time.perf_counter() - started)


def _broken_message(errors: list[str]) -> str:
    return (
        f"{len(errors)} LF load error{'s' if len(errors) != 1 else ''}, so nothing was "
        f"applied: {'; '.join(errors)}. Fix the LFs, or apply the others with --skip-broken "
        "(skip_broken=True in Python)"
    )


def _groups_to_run(
    loaded: LoadedLFs,
    applied: dict[str, tuple[str | None, int]],
    last_item: int,
    *,
    everything: bool,
) -> dict[int, list[Any]]:
    """The LFs with items to vote on, grouped by the item id their new votes start above
    (0 for an LF that is new, changed, or re-applied to ``everything``)."""
    groups: dict[int, list[Any]] = defaultdict(list)
    for lf in loaded.lfs:
        version, through = applied.get(lf.name, (None, 0))
        start = through if version == lf.version and not everything else 0
        if start < last_item:
            groups[start].append(lf)
    return groups


def _run_groups(
    ws: Context,
    loaded: LoadedLFs,
    groups: dict[int, list[Any]],
    last_item: int,
    engine: str,
    scheduler: str | None,
    progress: ProgressCallback | None,
) -> list[_Run]:
    """Run each group of LFs over its items (nothing is written yet)."""
    limit = ws.config.lf_timeout or None
    runs = []
    for start, group in sorted(groups.items()):
        needs_fields = any(getattr(lf, "kind", "") == "code" for lf in group)
        ids, external, frame = item_frame(ws, start, fields=needs_fields, through=last_item)
        try:
            result = apply_lfs(
                group,
                frame,
                engine=engine,
                scheduler=scheduler,
                progress=None if progress is None else functools.partial(progress, "applying"),
                lf_timeout=limit if engine == "local" else None,
            )
        except LFTimeoutError as exc:
            file = loaded.files.get(exc.lf)
            raise BadInput(
                f"LF {exc.lf!r}{f' ({file})' if file else ''} did not return within "
                f"{exc.seconds:g} s on item {external[exc.row]!r} (lf_timeout in "
                f"labelloop.toml); it was stopped and nothing was stored. Fix the LF, or raise "
                "lf_timeout if it is only slow"
            ) from exc
        except ApplyError as exc:
            raise BadInput(str(exc)) from exc
        runs.append(_Run(start, group, ids, external, result))
    return runs


def _store_runs(
    ws: Context,
    found: LoadResult,
    runs: list[_Run],
    applied: dict[str, tuple[str | None, int]],
    *,
    engine: str,
    last_item: int,
) -> list[dict[str, Any]]:
    """Record the LFs and store the votes and stats of ``runs`` in one transaction; returns
    the report's row per LF."""
    report_rows: list[dict[str, Any]] = []
    with db.write_session(ws.engine) as session:
        resolve(ws, session, found, record=True)
        session.flush()
        # FOR UPDATE (PostgreSQL): an edit or delete of a rule waits until these votes are in.
        rows = {r.name: r for r in session.exec(select(LabelingFunction).with_for_update()).all()}
        for run in runs:
            for j, lf in enumerate(run.group):
                row = rows.get(lf.name)
                if row is None:
                    continue  # deleted while it ran: nothing to store
                if (row.applied_version, row.applied_through) != applied.get(lf.name, (None, 0)):
                    # Stored by someone else since we read it (an apply that did not take the
                    # lock): adding these votes and faults would count them twice.
                    raise ApplyRunning(
                        f"the votes of LF {lf.name!r} were stored by another apply while this "
                        "one ran; this one stored nothing. Apply again to see what is left"
                    )
                votes = _store_votes(
                    session, ws, row.id, lf, run.ids, run.result.L[:, j], after=run.start
                )
                stats = _lf_stats(row, lf, run, engine=engine)
                row.applied_version = lf.version
                row.applied_through = last_item
                row.stats = json.dumps(stats)
                session.add(row)
                fresh = run.start == 0
                report_rows.append({"lf": lf.name, "new_votes": votes, "rescored": fresh, **stats})
        if report_rows:
            mark_lfs_changed(session)
    return report_rows


def _lf_stats(row: LabelingFunction, lf: Any, run: _Run, *, engine: str) -> dict[str, Any]:
    """The stats stored with an LF after a run: engine, time, rows and faults (summed with the
    faults of earlier runs when this one covered only new items)."""
    stats: dict[str, Any] = {
        "engine": engine,
        "seconds": round(run.result.seconds, 3),
        "rows": len(run.ids),
        "faults": int(run.result.faults.get(lf.name, 0)),
        "first_fault": _fault_on_item(run.result, lf.name, run.external),
    }
    if run.start != 0:
        # Earlier applies counted the faults of the items up to ``start``, this one those
        # above it: the sum counts each item once.
        old = json.loads(row.stats or "{}")
        stats["faults"] += int(old.get("faults", 0))
        stats["first_fault"] = old.get("first_fault") or stats["first_fault"]
    return stats


def _fault_on_item(result: ApplyResult, name: str, external: list[str]) -> str | None:
    """The LF's first fault, naming the item (its external id) instead of a frame row."""
    message = result.first_fault.get(name)
    position = result.first_fault_row.get(name)
    if message is None or position is None:
        return message
    prefix = f"row {position}: "
    if message.startswith(prefix):
        message = message[len(prefix) :]
    return f"item {external[position]!r}: {message}"


def _store_votes(
    session: Any,
    ws: Context,
    lf_id: int | None,
    lf: Any,
    ids: np.ndarray,
    column: np.ndarray,
    *,
    after: int,
) -> int:
    """Replace the LF's stored votes on the items above id ``after`` with ``column``.

    ``ids`` are exactly the items above ``after`` (up to the apply's last item), so the delete
    touches only the range just applied: votes on items up to ``after`` were cast by this
    version before and stay. ``after`` 0 (a new or changed LF) replaces every vote, those of
    its older versions too.
    """
    voted = np.flatnonzero(column >= 0)
    labels = ws.labels
    records = [
        {
            "lf_id": lf_id,
            "item_id": int(ids[i]),
            "lf_version": lf.version,
            "label": stored_vote(int(column[i]), labels),
        }
        for i in voted
    ]
    session.execute(delete(LFVote).where(col(LFVote.lf_id) == lf_id, col(LFVote.item_id) > after))
    for begin in range(0, len(records), CHUNK):
        bulk_insert(session, LFVote.__table__, records[begin : begin + CHUNK])  # type: ignore[attr-defined]
    return len(records)
