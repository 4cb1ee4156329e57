"""Labelling functions in a workspace: load, store, apply incrementally, weak labels, analysis.

:mod:`weak_supervision` does the work and knows nothing of the database; this module feeds it
the workspace's items and stores what it returns:

* code LFs come from ``lfs/*.py`` (each load also records them in ``labelingfunction``, and
  deactivates the ones whose file is gone or broken); keyword and regex rules are rows of
  that table, created by ``labelloop lf add-rule`` or the LF page;
* votes are stored sparsely (abstains are not) with the LF version that cast them. Each LF
  row remembers the version its stored votes belong to and the highest item id they cover,
  so re-applying touches only new items, and all items only for an LF whose code or spec
  changed;
* weak labels (label and confidence per item) go to ``weaklabel``, where rounds read them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, func
from sqlmodel import col, select

from labeling import db, quality
from labeling.errors import BadInput
from labeling.models import Item, LabelingFunction, LFVote, WeakLabel, utcnow
from labeling.rounds import human_labels
from labeling.workspace import Workspace

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


def load(ws: Workspace) -> LoadedLFs:
    """Load ``lfs/*.py`` and the stored rules; record the code LFs in the store."""
    from weak_supervision import load_lf_dir

    result = load_lf_dir(ws.lfs_dir, ws.labels)
    with db.write_session(ws.engine) as session:
        return _resolve(ws, session, result, record=True)


def _resolve(ws: Workspace, session: Any, result: Any, *, record: bool) -> LoadedLFs:
    """The runnable LFs of a ``load_lf_dir`` result plus the stored rules.

    With ``record``, also write the code LFs to ``labelingfunction`` (new ones, changed
    versions) and deactivate those whose file is gone or broken; without it, only read.
    """
    from weak_supervision import rule_from_spec

    errors = [str(e) for e in result.errors]
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
            row.version, row.label, row.spec, row.active = lf.version, lf.label, spec, True
            row.updated_at = utcnow()
        session.add(row)
    if record:
        for name, row in rows.items():
            if row.kind == "code" and name not in code_names and row.active:
                row.active = False  # file removed or broken: its votes stay but are not used
                row.updated_at = utcnow()
                session.add(row)
    for row in rows.values():
        if row.kind in RULE_KINDS and row.active:
            try:
                lfs.append(rule_from_spec(json.loads(row.spec)).bind(ws.labels))
            except Exception as exc:  # a label removed from the toml, say
                errors.append(f"rule {row.name!r}: {exc}")
    return LoadedLFs(lfs=lfs, errors=errors, files=result.files)


def add_rule(ws: Workspace, spec: dict[str, Any]) -> LabelingFunction:
    """Store a keyword or regex rule after checking it compiles and its label exists."""
    from weak_supervision import LFDefinitionError, rule_from_spec

    try:
        rule = rule_from_spec(spec)
        bound = rule.bind(ws.labels)
    except LFDefinitionError as exc:
        raise BadInput(str(exc)) from exc
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


def set_active(ws: Workspace, name: str, active: bool) -> None:
    """Turn a rule on or off (code LFs follow their file)."""
    with db.write_session(ws.engine) as session:
        row = session.exec(select(LabelingFunction).where(LabelingFunction.name == name)).first()
        if row is None:
            raise BadInput(f"no LF named {name!r}")
        if row.kind == "code":
            raise BadInput(f"{name!r} is a code LF: edit or remove it in lfs/ instead")
        row.active = active
        row.updated_at = utcnow()
        session.add(row)


def list_lfs(ws: Workspace) -> list[dict[str, Any]]:
    with db.read_session(ws.engine) as session:
        rows = session.exec(select(LabelingFunction).order_by(col(LabelingFunction.id))).all()
        votes = dict(
            session.exec(select(LFVote.lf_id, func.count()).group_by(col(LFVote.lf_id))).all()
        )
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "label": r.label,
            "active": r.active,
            "version": r.version[:12],
            "applied": r.applied_version == r.version,
            "votes": int(votes.get(r.id or 0, 0)),
            "spec": json.loads(r.spec or "{}"),
            "stats": json.loads(r.stats or "{}"),
        }
        for r in rows
    ]


# --------------------------------------------------------------------------- applying


def _frame(
    ws: Workspace, after: int, *, fields: bool
) -> tuple[np.ndarray, list[str], pd.DataFrame]:
    """Items above id ``after``: their ids, external ids, and their frame (``text`` plus, for
    code LFs, the source fields)."""
    with db.read_session(ws.engine) as session:
        rows = session.execute(
            select(Item.id, Item.external_id, Item.text, Item.source)  # type: ignore[call-overload]
            .where(col(Item.id) > after)
            .order_by(col(Item.id))
        ).all()
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


def apply(
    ws: Workspace,
    *,
    engine: str = "local",
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> ApplyReport:
    """Apply every active LF to the items it has not voted on yet (all items if it changed).

    Every LF runs before anything is written; the LF records, votes and stats are then
    written in one transaction. An apply that fails (an LF call over ``lf_timeout``, an
    unreachable scheduler) therefore leaves the store as it was.
    """
    import time

    from weak_supervision import ApplyError, LFTimeoutError, apply_lfs, load_lf_dir

    started = time.perf_counter()
    found = load_lf_dir(ws.lfs_dir, ws.labels)
    with db.read_session(ws.engine) as session:
        loaded = _resolve(ws, session, found, record=False)
        applied = {
            r.name: (r.applied_version, r.applied_through)
            for r in session.exec(select(LabelingFunction)).all()
        }
        last_item = int(session.exec(select(func.max(Item.id))).one() or 0)
    groups: dict[int, list[Any]] = defaultdict(list)
    for lf in loaded.lfs:
        version, through = applied.get(lf.name, (None, 0))
        start = through if version == lf.version else 0
        if start < last_item:
            groups[start].append(lf)
    limit = ws.config.lf_timeout or None
    results = []
    for start, group in sorted(groups.items()):
        needs_fields = any(getattr(lf, "kind", "") == "code" for lf in group)
        ids, external, frame = _frame(ws, start, fields=needs_fields)
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
        results.append((group, ids, external, result))
    report_rows: list[dict[str, Any]] = []
    n_items = max((len(ids) for _, ids, _, _ in results), default=0)
    with db.write_session(ws.engine) as session:
        _resolve(ws, session, found, record=True)
        session.flush()
        rows = {r.name: r for r in session.exec(select(LabelingFunction)).all()}
        for group, ids, external, result in results:
            for j, lf in enumerate(group):
                row = rows[lf.name]
                fresh = row.applied_version != lf.version
                votes = _store_votes(
                    session, ws, row.id, lf, ids, result.L[:, j], replace_all=fresh
                )
                stats: dict[str, Any] = {
                    "engine": engine,
                    "seconds": round(result.seconds, 3),
                    "rows": len(ids),
                    "faults": int(result.faults.get(lf.name, 0)),
                    "first_fault": _fault_on_item(result, lf.name, external),
                }
                if not fresh:
                    old = json.loads(row.stats or "{}")
                    stats["faults"] += int(old.get("faults", 0))
                    stats["first_fault"] = old.get("first_fault") or stats["first_fault"]
                row.applied_version = lf.version
                row.applied_through = last_item
                row.stats = json.dumps(stats)
                session.add(row)
                report_rows.append({"lf": lf.name, "new_votes": votes, "rescored": fresh, **stats})
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
    ws: Workspace,
    lf_id: int | None,
    lf: Any,
    ids: np.ndarray,
    column: np.ndarray,
    *,
    replace_all: bool,
) -> int:
    from labeling.importer import _bulk_insert

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
    if replace_all:
        session.execute(delete(LFVote).where(col(LFVote.lf_id) == lf_id))
    else:
        # Re-covering items above applied_through (after a crash, say): no duplicates.
        session.execute(
            delete(LFVote).where(
                col(LFVote.lf_id) == lf_id, col(LFVote.item_id) >= int(ids.min(initial=0))
            )
        )
    for start in range(0, len(records), CHUNK):
        _bulk_insert(session, LFVote.__table__, records[start : start + CHUNK])  # type: ignore[attr-defined]
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


def votes(ws: Workspace) -> Votes:
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


def fit_weak_labels(ws: Workspace, *, model: str = "auto") -> dict[str, Any]:
    """Fit the label model on the stored votes; store each item's weak label and confidence."""
    from weak_supervision import estimate_class_balance, fit_label_model, gold_accuracy
    from weak_supervision.analysis import weak_label_gold_accuracy
    from weak_supervision.errors import LabelModelError

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
    from labeling.importer import _bulk_insert

    with db.write_session(ws.engine) as session:
        session.execute(delete(WeakLabel))
        for start in range(0, len(records), CHUNK):
            _bulk_insert(session, WeakLabel.__table__, records[start : start + CHUNK])  # type: ignore[attr-defined]
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


def analyze(ws: Workspace) -> dict[str, Any]:
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
        totals = quality.coverage(session, ws.labels, ws.config.weak_threshold)
    # The names lf analyze --json used before the figures had one definition, kept for
    # scripts: the same numbers under their old keys.
    totals |= {"items": totals["pool"], "lfs": totals["lf"], "humans": totals["human"]}
    for shares in totals["per_class"].values():
        shares |= {"lfs": shares["lf"], "humans": shares["human"]}
    return {"lfs": records, "totals": totals, "errors": loaded.errors}


def preview_rule(ws: Workspace, spec: dict[str, Any], *, samples: int = 5) -> dict[str, Any]:
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
