"""Labelling functions in a workspace: load, store, apply incrementally, weak labels, analysis.

:mod:`weak_supervision` does the work and knows nothing of the database; this module feeds it
the workspace's items and stores what it returns:

* code LFs come from ``lfs/*.py`` (each load also records them in ``labelingfunction``, and
  deactivates the ones whose file is gone or broken); keyword and regex rules are rows of
  that table, created, edited and deleted by ``labelloop lf add-rule|edit-rule|delete`` or
  the LF page;
* votes are stored sparsely (abstains are not) with the LF version that cast them. Each LF
  row remembers the version its stored votes belong to and the highest item id they cover,
  so re-applying touches only new items, and all items only for an LF whose code or spec
  changed. One apply runs at a time per workspace (:func:`apply_lock`);
* weak labels (label and confidence per item) go to ``weaklabel``, where rounds read them;
  a change of the votes since they were fitted makes them stale (:func:`weak_labels_stale`).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, func
from sqlalchemy import text as sql
from sqlmodel import col, select

from labeling.context import Context
from labeling.errors import BadInput, LabelloopError
from labeling.quality.coverage import coverage
from labeling.store import db
from labeling.store.answers import human_labels
from labeling.store.bulk import bulk_insert
from labeling.store.models import Item, LabelingFunction, LFVote, SchemaInfo, WeakLabel, utcnow
from labeling.store.processes import process_gone

RULE_KINDS = ("keyword", "regex")
CHUNK = 20_000

Progress = Callable[[int, int], None]


@dataclass
class LoadedLFs:
    """The bound LFs and rules that can run now, and what could not be loaded."""

    lfs: list[Any]
    errors: list[str]
    files: dict[str, str] = field(default_factory=dict)


def _ws_errors(exc: Exception) -> BadInput:
    return BadInput(str(exc))


def load(ws: Context) -> LoadedLFs:
    """Load ``lfs/*.py`` and the stored rules; record the code LFs in the store."""
    from weak_supervision import load_lf_dir

    result = load_lf_dir(ws.lfs_dir, ws.labels)
    with db.write_session(ws.engine) as session:
        return _resolve(ws, session, result, record=True)


def _resolve(ws: Context, session: Any, result: Any, *, record: bool) -> LoadedLFs:
    """The runnable LFs of a ``load_lf_dir`` result plus the stored rules.

    With ``record``, also write the code LFs to ``labelingfunction`` (new ones, changed
    versions) and deactivate those whose file is gone or broken; without it, only read.
    """
    from weak_supervision import rule_from_spec

    errors = [str(e) for e in result.errors]
    changed = False
    lfs: list[Any] = list(result.lfs)
    code_names = {lf.name for lf in lfs}
    rows = {r.name: r for r in session.exec(select(LabelingFunction)).all()}
    for lf in result.lfs:
        row = rows.get(lf.name)
        if row is not None and row.kind != "code":
            errors.append(
                f"{result.files.get(lf.name, '?')}: LF {lf.name!r} has the name of a stored "
                f"{row.kind} rule; rename one of them (the code LF was not used)"
            )
            lfs.remove(lf)
            continue
        if not record:
            continue
        spec = json.dumps({"file": result.files.get(lf.name)})
        if row is None:
            row = LabelingFunction(
                name=lf.name, kind="code", spec=spec, label=lf.label, version=lf.version
            )
        elif (row.version, row.label, row.spec, row.active) != (
            lf.version,
            lf.label,
            spec,
            True,
        ):
            if (row.version, row.active) != (lf.version, True):
                changed = True  # the votes the label model reads are no longer the same
            row.version, row.label, row.spec, row.active = lf.version, lf.label, spec, True
            row.updated_at = utcnow()
        session.add(row)
    if record:
        for name, row in rows.items():
            if row.kind == "code" and name not in code_names and row.active:
                row.active = False  # file removed or broken: its votes stay but are not used
                row.updated_at = utcnow()
                session.add(row)
                changed = True
        if changed:
            _mark_lfs_changed(session)
    for row in rows.values():
        if row.kind in RULE_KINDS and row.active:
            try:
                lfs.append(rule_from_spec(json.loads(row.spec)).bind(ws.labels))
            except Exception as exc:  # a label removed from the toml, say
                errors.append(f"rule {row.name!r}: {exc}")
    return LoadedLFs(lfs=lfs, errors=errors, files=result.files)


def _bind_rule(ws: Context, spec: dict[str, Any]) -> Any:
    """The rule of ``spec`` bound to the workspace's labels; a bad spec is :class:`BadInput`."""
    from weak_supervision import LFDefinitionError, rule_from_spec

    try:
        return rule_from_spec(spec).bind(ws.labels)
    except LFDefinitionError as exc:
        raise BadInput(str(exc)) from exc


def add_rule(ws: Context, spec: dict[str, Any]) -> LabelingFunction:
    """Store a keyword or regex rule after checking it compiles and its label exists."""
    bound = _bind_rule(ws, spec)
    rule = bound.rule
    code = {lf.name for lf in load(ws).lfs if getattr(lf, "kind", "") == "code"}
    with db.write_session(ws.engine) as session:
        taken = session.exec(
            select(LabelingFunction).where(LabelingFunction.name == rule.name)
        ).first()
        if taken is not None or rule.name in code:
            raise BadInput(f"an LF named {rule.name!r} exists already; pick another name")
        row = LabelingFunction(
            name=rule.name,
            kind=rule.spec["kind"],
            spec=json.dumps(rule.spec),
            label=rule.label,
            version=bound.version,
        )
        session.add(row)
        session.flush()
        session.refresh(row)
        return row


def _stored_rule(session: Any, name: str, *, action: str) -> LabelingFunction:
    """The rule row called ``name`` (locked for update on PostgreSQL); code LFs are refused."""
    row = session.exec(
        select(LabelingFunction).where(LabelingFunction.name == name).with_for_update()
    ).first()
    if row is None:
        names = session.exec(
            select(LabelingFunction.name).order_by(col(LabelingFunction.name))
        ).all()
        raise BadInput(
            f"no LF named {name!r}; the LFs are: {', '.join(names) if names else '(none)'}"
        )
    if row.kind == "code":
        file = json.loads(row.spec or "{}").get("file")
        raise BadInput(
            f"{name!r} is a code LF{f' (in lfs/{file})' if file else ''}: to {action} it, "
            "edit or remove it in its file"
        )
    return row


def rule_spec(ws: Context, name: str) -> dict[str, Any]:
    """The stored spec of rule ``name`` (what an edit starts from)."""
    with db.read_session(ws.engine) as session:
        spec: dict[str, Any] = json.loads(_stored_rule(session, name, action="edit").spec)
        return spec


def set_active(ws: Context, name: str, active: bool) -> None:
    """Turn a rule on or off (code LFs follow their file)."""
    with db.write_session(ws.engine) as session:
        row = _stored_rule(session, name, action="turn off or on")
        if row.active == active:
            return
        row.active = active
        row.updated_at = utcnow()
        session.add(row)
        _mark_lfs_changed(session)


def edit_rule(ws: Context, name: str, spec: dict[str, Any]) -> LabelingFunction:
    """Replace the definition of rule ``name`` with ``spec`` (its name stays ``name``).

    The edited rule is a new version: the votes of the old one stop counting at once, and the
    next apply runs the rule over every item again (as for a changed LF file). Editing back to
    an earlier definition before applying keeps that version's votes.
    """
    bound = _bind_rule(ws, {**spec, "name": name})
    with db.write_session(ws.engine) as session:
        row = _stored_rule(session, name, action="edit")
        if bound.version == row.version:
            return row
        row.kind = bound.rule.spec["kind"]
        row.spec = json.dumps(bound.rule.spec)
        row.label = bound.rule.label
        row.version = bound.version
        row.updated_at = utcnow()
        session.add(row)
        _mark_lfs_changed(session)
        session.flush()
        session.refresh(row)
        return row


def delete_rule(ws: Context, name: str) -> int:
    """Delete rule ``name`` and every vote it cast; returns how many votes went.

    Weak labels fitted with it are marked stale (:func:`weak_labels_stale`) until the label
    model is fitted again. Code LFs live in files: remove the file (or the function) instead.
    """
    with db.write_session(ws.engine) as session:
        row = _stored_rule(session, name, action="delete")
        gone = session.exec(
            select(func.count()).select_from(LFVote).where(col(LFVote.lf_id) == row.id)
        ).one()
        session.execute(delete(LFVote).where(col(LFVote.lf_id) == row.id))
        session.delete(row)
        _mark_lfs_changed(session)
    return int(gone or 0)


# ``schemainfo`` keys: a token that changes whenever the votes the label model reads change
# (an apply that stored votes, a rule edited, deleted or switched, an LF file changed or
# removed), and the token the stored weak labels were fitted at. Different tokens: stale.
_VOTES_STATE = "lf_votes_state"
_WEAK_STATE = "weak_labels_state"


def _put_fact(session: Any, key: str, value: str) -> None:
    """Insert or overwrite one ``schemainfo`` row (an upsert: safe when two writers race)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    statement = upsert(SchemaInfo).values(key=key, value=value)
    session.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def _fact(session: Any, key: str) -> str | None:
    return session.exec(select(SchemaInfo.value).where(SchemaInfo.key == key)).first()


def _mark_lfs_changed(session: Any) -> None:
    _put_fact(session, _VOTES_STATE, uuid.uuid4().hex)


def weak_labels_stale(ws: Context) -> bool:
    """Whether stored weak labels were fitted on votes that have changed since (fit again)."""
    with db.read_session(ws.engine) as session:
        if session.exec(select(WeakLabel.item_id).limit(1)).first() is None:
            return False
        return (_fact(session, _VOTES_STATE) or "") != (_fact(session, _WEAK_STATE) or "")


def list_lfs(ws: Context) -> list[dict[str, Any]]:
    """Every stored LF and rule with its current version's votes and polarity (the labels
    those votes name: a code LF without ``label=`` has no single label)."""
    with db.read_session(ws.engine) as session:
        rows = session.exec(select(LabelingFunction).order_by(col(LabelingFunction.id))).all()
        current = (
            select(LFVote.lf_id, LFVote.label, func.count())
            .join(LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id))
            .where(col(LFVote.lf_version) == col(LabelingFunction.version))
            .group_by(col(LFVote.lf_id), col(LFVote.label))
        )
        counts = session.exec(current).all()
    votes: dict[int, int] = defaultdict(int)
    polarity: dict[int, list[str]] = defaultdict(list)
    order = {label: k for k, label in enumerate(ws.labels)}
    for lf_id, label, n in counts:
        votes[lf_id] += int(n)
        polarity[lf_id].append(label)
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "label": r.label,
            "polarity": sorted(polarity.get(r.id or 0, []), key=lambda x: order.get(x, 99)),
            "active": r.active,
            "version": r.version[:12],
            "applied": r.applied_version == r.version,
            "votes": votes.get(r.id or 0, 0),
            "spec": json.loads(r.spec or "{}"),
            "stats": json.loads(r.stats or "{}"),
        }
        for r in rows
    ]


# --------------------------------------------------------------------------- applying


def _frame(
    ws: Context, after: int, *, fields: bool, through: int | None = None
) -> tuple[np.ndarray, list[str], pd.DataFrame]:
    """Items above id ``after`` (up to ``through``): their ids, external ids, and their frame
    (``text`` plus, for code LFs, the source fields)."""
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


class ApplyRunning(LabelloopError):
    """Another ``lf apply`` holds this workspace's apply lock (exit code 1: try again later)."""


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


# The key of the PostgreSQL advisory lock held while an apply runs. Advisory locks are scoped
# to one database, and a workspace owns its database, so this is one lock per workspace.
_APPLY_LOCK_KEY = 0x6C6C6C6661  # "lllfa"
# The SQLite store's lock row (in ``schemainfo``), holding ``pid@host token`` of its owner.
_APPLY_LOCK_ROW = "lf_apply_lock"
_LOCK_POLL_SECONDS = 0.2
_RUNNING = (
    "another `lf apply` is running on this workspace (the CLI, the LFs page or a notebook); "
    "wait for it to finish, then apply again"
)


@contextmanager
def apply_lock(
    ws: Context, *, wait: bool = True, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold this workspace's apply lock: one ``lf apply`` at a time, on any machine.

    PostgreSQL (team setups, several machines): a session-level advisory lock on a connection
    kept for the whole apply; the server drops it when that connection ends, also when the
    process holding it dies. SQLite (one machine's file): a row in ``schemainfo`` naming its
    owner (``pid@host`` and a random token), written under ``BEGIN IMMEDIATE`` so two writers
    cannot both see it free; a row whose process no longer exists is taken over. A lock held
    by someone else makes the caller wait (``on_wait`` is called once) or, without ``wait``,
    raises :class:`ApplyRunning`.
    """
    if db.is_sqlite(ws.engine):
        with _sqlite_apply_lock(ws, wait=wait, on_wait=on_wait):
            yield
        return
    conn = ws.engine.connect()
    try:
        told = False
        while not conn.execute(
            sql("SELECT pg_try_advisory_lock(:key)"), {"key": _APPLY_LOCK_KEY}
        ).scalar():
            conn.commit()
            if not wait:
                raise ApplyRunning(_RUNNING)
            if on_wait is not None and not told:
                on_wait()
                told = True
            time.sleep(_LOCK_POLL_SECONDS)
        conn.commit()  # the lock is the session's: no transaction stays open during the apply
        try:
            yield
        finally:
            try:
                conn.execute(sql("SELECT pg_advisory_unlock(:key)"), {"key": _APPLY_LOCK_KEY})
                conn.commit()
            except Exception:
                conn.invalidate()  # closes the connection for real, and the lock with it
                raise
    finally:
        conn.close()


@contextmanager
def _sqlite_apply_lock(
    ws: Context, *, wait: bool, on_wait: Callable[[], None] | None
) -> Iterator[None]:
    me = f"{os.getpid()}@{socket.gethostname()} {uuid.uuid4().hex}"
    told = False
    while True:
        with db.write_session(ws.engine) as session:
            row = session.get(SchemaInfo, _APPLY_LOCK_ROW)
            if row is None:
                session.add(SchemaInfo(key=_APPLY_LOCK_ROW, value=me))
                break
            if _owner_gone(row.value):
                row.value = me
                session.add(row)
                break
        if not wait:
            raise ApplyRunning(_RUNNING)
        if on_wait is not None and not told:
            on_wait()
            told = True
        time.sleep(_LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        with db.write_session(ws.engine) as session:
            session.execute(
                delete(SchemaInfo).where(
                    col(SchemaInfo.key) == _APPLY_LOCK_ROW, col(SchemaInfo.value) == me
                )
            )


def _owner_gone(owner: str) -> bool:
    """Whether the ``pid@host token`` owner of a lock row is a process of this host that ended."""
    return process_gone(owner.split(" ", 1)[0])


def apply(
    ws: Context,
    *,
    engine: str = "local",
    scheduler: str | None = None,
    progress: Progress | None = None,
    skip_broken: bool = False,
    everything: bool = False,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
) -> ApplyReport:
    """Apply every active LF to the items it has not voted on yet (all items if it changed).

    One apply runs at a time per workspace (:func:`apply_lock`; ``wait`` and ``on_wait`` say
    what to do when another holds it). Every LF runs before anything is written; the LF
    records, votes and stats are then written in one transaction. An apply that fails (an LF
    call over ``lf_timeout``, an unreachable scheduler) therefore leaves the store as it was.

    An LF file that fails to load, or a rule that cannot be built, stops the apply with
    :class:`BrokenLFs` before anything runs, unless ``skip_broken``: then the others are
    applied and the errors are in the report.

    ``everything`` re-applies every active LF to every item, as if each had changed: it
    restores votes that a store lost to an earlier labelloop (0.1.0), whose re-apply after an
    import deleted the LF's earlier votes.
    """
    from weak_supervision import load_lf_dir

    started = time.perf_counter()
    found = load_lf_dir(ws.lfs_dir, ws.labels)
    if not skip_broken:
        with db.read_session(ws.engine) as session:
            broken = _resolve(ws, session, found, record=False).errors
        if broken:
            raise BrokenLFs(_broken_message(broken))
    with apply_lock(ws, wait=wait, on_wait=on_wait):
        return _apply_locked(
            ws, found, engine, scheduler, progress, skip_broken, everything, started
        )


def _broken_message(errors: list[str]) -> str:
    return (
        f"{len(errors)} LF load error{'s' if len(errors) != 1 else ''}, so nothing was "
        f"applied: {'; '.join(errors)}. Fix the LFs, or apply the others with --skip-broken "
        "(skip_broken=True in Python)"
    )


def _apply_locked(
    ws: Context,
    found: Any,
    engine: str,
    scheduler: str | None,
    progress: Progress | None,
    skip_broken: bool,
    everything: bool,
    started: float,
) -> ApplyReport:
    from weak_supervision import ApplyError, LFTimeoutError, apply_lfs

    with db.read_session(ws.engine) as session:
        loaded = _resolve(ws, session, found, record=False)
        applied = {
            r.name: (r.applied_version, r.applied_through)
            for r in session.exec(select(LabelingFunction)).all()
        }
        last_item = int(session.exec(select(func.max(Item.id))).one() or 0)
    if loaded.errors and not skip_broken:  # broken since the check before the lock
        raise BrokenLFs(_broken_message(loaded.errors))
    groups: dict[int, list[Any]] = defaultdict(list)
    for lf in loaded.lfs:
        version, through = applied.get(lf.name, (None, 0))
        start = through if version == lf.version and not everything else 0
        if start < last_item:
            groups[start].append(lf)
    limit = ws.config.lf_timeout or None
    results = []
    for start, group in sorted(groups.items()):
        needs_fields = any(getattr(lf, "kind", "") == "code" for lf in group)
        ids, external, frame = _frame(ws, start, fields=needs_fields, through=last_item)
        try:
            result = apply_lfs(
                group,
                frame,
                engine=engine,
                scheduler=scheduler,
                progress=progress,
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
        results.append((start, group, ids, external, result))
    report_rows: list[dict[str, Any]] = []
    n_items = max((len(ids) for _, _, ids, _, _ in results), default=0)
    with db.write_session(ws.engine) as session:
        _resolve(ws, session, found, record=True)
        session.flush()
        # FOR UPDATE (PostgreSQL): an edit or delete of a rule waits until these votes are in.
        rows = {r.name: r for r in session.exec(select(LabelingFunction).with_for_update()).all()}
        for start, group, ids, external, result in results:
            for j, lf in enumerate(group):
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
                fresh = start == 0
                votes = _store_votes(session, ws, row.id, lf, ids, result.L[:, j], after=start)
                stats: dict[str, Any] = {
                    "engine": engine,
                    "seconds": round(result.seconds, 3),
                    "rows": len(ids),
                    "faults": int(result.faults.get(lf.name, 0)),
                    "first_fault": _fault_on_item(result, lf.name, external),
                }
                if not fresh:
                    # Earlier applies counted the faults of the items up to ``start``, this one
                    # those above it: the sum counts each item once.
                    old = json.loads(row.stats or "{}")
                    stats["faults"] += int(old.get("faults", 0))
                    stats["first_fault"] = old.get("first_fault") or stats["first_fault"]
                row.applied_version = lf.version
                row.applied_through = last_item
                row.stats = json.dumps(stats)
                session.add(row)
                report_rows.append({"lf": lf.name, "new_votes": votes, "rescored": fresh, **stats})
        if report_rows:
            _mark_lfs_changed(session)
    return ApplyReport(engine, report_rows, loaded.errors, n_items, time.perf_counter() - started)


def _fault_on_item(result: Any, name: str, external: list[str]) -> str | None:
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
            "label": labels[int(column[i])],
        }
        for i in voted
    ]
    session.execute(delete(LFVote).where(col(LFVote.lf_id) == lf_id, col(LFVote.item_id) > after))
    for begin in range(0, len(records), CHUNK):
        bulk_insert(session, LFVote.__table__, records[begin : begin + CHUNK])  # type: ignore[attr-defined]
    return len(records)


# --------------------------------------------------------------------------- votes as a matrix


@dataclass
class Votes:
    """The vote matrix of the active, applied LFs over every item (rows in item-id order)."""

    L: np.ndarray
    names: list[str]
    item_ids: np.ndarray
    split: np.ndarray
    gold: np.ndarray  # label index or -1
    human: np.ndarray  # majority human label index or -1 (pool items only)
    faults: dict[str, int]
    kinds: dict[str, str]


def votes(ws: Context) -> Votes:
    labels = ws.labels
    index = {label: k for k, label in enumerate(labels)}
    with db.read_session(ws.engine) as session:
        items = session.execute(
            select(Item.id, Item.split, Item.gold_label).order_by(col(Item.id))  # type: ignore[call-overload]
        ).all()
        lf_rows = session.exec(
            select(LabelingFunction)
            .where(
                col(LabelingFunction.active).is_(True),
                col(LabelingFunction.applied_version) == col(LabelingFunction.version),
            )
            .order_by(col(LabelingFunction.id))
        ).all()
        vote_rows = session.execute(
            select(LFVote.lf_id, LFVote.item_id, LFVote.label)  # type: ignore[call-overload]
            .join(LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id))
            .where(
                col(LabelingFunction.active).is_(True),
                col(LFVote.lf_version) == col(LabelingFunction.version),
            )
        ).all()
        people = human_labels(session, labels)
    item_ids = np.array([r[0] for r in items], dtype=np.int64)
    position = {int(item_id): row for row, item_id in enumerate(item_ids)}
    column = {r.id: j for j, r in enumerate(lf_rows)}
    L = np.full((len(item_ids), len(lf_rows)), -1, dtype=np.int64)
    for lf_id, item_id, label in vote_rows:
        if lf_id in column and item_id in position and label in index:
            L[position[item_id], column[lf_id]] = index[label]
    split = np.array([r[1] for r in items], dtype=object)
    gold = np.array([index.get(r[2], -1) if r[1] == "gold" else -1 for r in items], np.int64)
    human = np.full(len(item_ids), -1, dtype=np.int64)
    for item_id, label in people.items():
        row = position.get(item_id)
        if row is not None:
            human[row] = index[label]
    return Votes(
        L=L,
        names=[r.name for r in lf_rows],
        item_ids=item_ids,
        split=split,
        gold=gold,
        human=human,
        faults={r.name: int(json.loads(r.stats or "{}").get("faults", 0)) for r in lf_rows},
        kinds={r.name: r.kind for r in lf_rows},
    )


# --------------------------------------------------------------------------- weak labels


def fit_weak_labels(ws: Context, *, model: str = "auto") -> dict[str, Any]:
    """Fit the label model on the stored votes; store each item's weak label and confidence."""
    from weak_supervision import estimate_class_balance, fit_label_model, gold_accuracy
    from weak_supervision.analysis import weak_label_gold_accuracy
    from weak_supervision.errors import LabelModelError

    with db.read_session(ws.engine) as session:
        fitted_at = _fact(session, _VOTES_STATE)  # read first: a change after it reads as stale
    v = votes(ws)
    n_classes = len(ws.labels)
    if not v.names:
        raise BadInput("no applied LFs: add LFs to lfs/ or rules, then run `labelloop lf apply`")
    pool = v.split == "pool"
    try:
        balance = estimate_class_balance(v.human[pool], n_classes)
        weak = fit_label_model(v.L, n_classes, model=model, class_balance=balance, seed=0)
    except LabelModelError as exc:
        raise BadInput(str(exc)) from exc
    records = [
        {
            "item_id": int(v.item_ids[i]),
            "label": ws.labels[int(weak.labels[i])],
            "confidence": round(float(weak.confidence[i]), 6),
            "model": weak.model,
            "updated_at": utcnow(),
        }
        for i in np.flatnonzero(weak.labels >= 0)
    ]
    with db.write_session(ws.engine) as session:
        session.execute(delete(WeakLabel))
        for start in range(0, len(records), CHUNK):
            bulk_insert(session, WeakLabel.__table__, records[start : start + CHUNK])  # type: ignore[attr-defined]
        _put_fact(session, _WEAK_STATE, fitted_at or "")
    gold_rows = v.gold >= 0
    human_rows = v.human >= 0
    covered = weak.labels >= 0
    human_hits = int((weak.labels[human_rows & covered] == v.human[human_rows & covered]).sum())
    report: dict[str, Any] = {
        "model": weak.model,
        "message": weak.message,
        "lfs": len(v.names),
        "coverage": round(float(covered[pool].mean()) if pool.any() else 0.0, 6),
        "weak_labels": len(records),
        "class_balance": None if balance is None else [round(float(b), 4) for b in balance],
        "gold_accuracy": None,
        "gold_correct": None,
        "gold_n": int(gold_rows.sum()),
        "human_accuracy": (
            round(human_hits / int((human_rows & covered).sum()), 6)
            if (human_rows & covered).any()
            else None
        ),
        "human_n": int((human_rows & covered).sum()),
        "human_correct": human_hits,
    }
    if gold_rows.any():
        scored = gold_accuracy(weak, v.gold, seed=0)
        report["gold_accuracy"] = round(float(scored["accuracy"]), 6)
        report["gold_correct"] = int(scored["correct"])
    # The same gold items, counting only those with a weak label (no tie, some LF voted):
    # the figure to read next to the LF table's right/gold counts.
    report |= weak_label_gold_accuracy(weak.labels, v.gold)
    return report


# --------------------------------------------------------------------------- analysis


def analyze(ws: Context) -> dict[str, Any]:
    """Per-LF polarity, coverage, overlaps, conflicts, accuracy (with counts), faults; totals."""
    from weak_supervision import analyze_lfs

    loaded = load(ws)
    v = votes(ws)
    pool = v.split == "pool"
    records = (
        analyze_lfs(v.L[pool], v.names, ws.labels, human=v.human[pool], faults=v.faults)
        if v.names
        else []
    )
    if v.names and (v.gold >= 0).any():
        gold_records = analyze_lfs(v.L, v.names, ws.labels, gold=v.gold)
        for record, gold in zip(records, gold_records, strict=True):
            record.update({k: val for k, val in gold.items() if k.startswith("gold")})
    for record in records:
        record["kind"] = v.kinds.get(record["lf"])
        record["file"] = loaded.files.get(record["lf"])
    with db.read_session(ws.engine) as session:
        totals = coverage(session, ws.labels, ws.config.weak_threshold)
    # The names lf analyze --json used before the figures had one definition, kept for
    # scripts: the same numbers under their old keys.
    totals |= {"items": totals["pool"], "lfs": totals["lf"], "humans": totals["human"]}
    for shares in totals["per_class"].values():
        shares |= {"lfs": shares["lf"], "humans": shares["human"]}
    return {"lfs": records, "totals": totals, "errors": loaded.errors}


def preview_rule(ws: Context, spec: dict[str, Any], *, samples: int = 5) -> dict[str, Any]:
    """What a rule would do on the pool, for the rule builder: matches, accuracy, examples."""
    from weak_supervision import LFDefinitionError, apply_lfs, rule_from_spec

    try:
        bound = rule_from_spec(spec).bind(ws.labels)
    except LFDefinitionError as exc:
        raise BadInput(str(exc)) from exc
    ids, _external, frame = _frame(ws, 0, fields=False)
    with db.read_session(ws.engine) as session:
        pool_ids = set(session.exec(select(Item.id).where(Item.split == "pool")).all())
    mask = np.array([int(i) in pool_ids for i in ids], dtype=bool)
    result = apply_lfs([bound], frame[mask].reset_index(drop=True), engine="local")
    hits = np.flatnonzero(result.L[:, 0] >= 0)
    with db.read_session(ws.engine) as session:
        people = human_labels(session, ws.labels)
    human_by_id = {item_id: ws.labels.index(label) for item_id, label in people.items()}
    pool_ids_sorted = ids[mask]
    labelled = [
        human_by_id[int(pool_ids_sorted[i])] for i in hits if int(pool_ids_sorted[i]) in human_by_id
    ]
    target = ws.labels.index(bound.rule.label)
    correct = sum(1 for h in labelled if h == target)
    texts = frame[mask]["text"].tolist()
    return {
        "matches": int(len(hits)),
        "pool": int(mask.sum()),
        "coverage": round(len(hits) / int(mask.sum()), 6) if mask.any() else 0.0,
        "human_labelled_matches": len(labelled),
        "correct": correct,
        "accuracy": round(correct / len(labelled), 6) if labelled else None,
        "samples": [texts[i] for i in hits[:samples]],
    }


def weak_labels_for_file(
    path: Any, labels: list[str], rows: list[dict[str, Any]], texts: list[str]
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Weak labels for rows of a data file from one LF file (``simulate --lfs``).

    The file's code LFs load as in ``lfs/``; a module-level ``RULES`` list of rule specs (as
    in docs/examples/youtube_lfs.py) adds keyword and regex rules. Returns the label index
    (or -1) and confidence per row, and a short report.
    """
    import importlib.util
    from pathlib import Path

    from weak_supervision import apply_lfs, fit_label_model, load_lf_file, rule_from_spec

    file = Path(path)
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
