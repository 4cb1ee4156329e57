"""Loading a workspace's LFs: the code LFs of ``lfs/*.py`` and the keyword and regex rules
stored in ``labelingfunction``, bound to the workspace's labels.

Each load also records the code LFs in ``labelingfunction`` (new ones, changed versions) and
deactivates the ones whose file is gone or broken; their stored votes stay but stop counting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select

from labeling.context import Context
from labeling.store import db
from labeling.store.models import LabelingFunction, utcnow
from labeling.weak.votes import mark_lfs_changed
from weak_supervision import LoadResult, load_lf_dir, rule_from_spec

#: The kinds of LF stored as data (rules); ``code`` LFs live in files.
RULE_KINDS = ("keyword", "regex")


@dataclass
class LoadedLFs:
    """The bound LFs and rules that can run now, and what could not be loaded."""

    lfs: list[Any]
    errors: list[str]
    files: dict[str, str] = field(default_factory=dict)


def load(ws: Context) -> LoadedLFs:
    """Load ``lfs/*.py`` and the stored rules; record the code LFs in the store."""
    result = load_lf_dir(ws.lfs_dir, ws.labels)
    with db.write_session(ws.engine) as session:
        return resolve(ws, session, result, record=True)


def resolve(ws: Context, session: Any, result: LoadResult, *, record: bool) -> LoadedLFs:
    """The runnable LFs of a ``load_lf_dir`` result plus the stored rules.

    With ``record``, also write the code LFs to ``labelingfunction`` (new ones, changed
    versions) and deactivate those whose file is gone or broken; without it, only read.
    """
    errors = [str(e) for e in result.errors]
    lfs: list[Any] = list(result.lfs)
    rows = {r.name: r for r in session.exec(select(LabelingFunction)).all()}
    for lf in result.lfs:
        row = rows.get(lf.name)
        if row is not None and row.kind != "code":
            errors.append(
                f"{result.files.get(lf.name, '?')}: LF {lf.name!r} has the name of a stored "
                f"{row.kind} rule; rename one of them (the code LF was not used)"
            )
            lfs.remove(lf)
    if record:
        _record_code_lfs(session, result, lfs, rows)
    for row in rows.values():
        if row.kind in RULE_KINDS and row.active:
            try:
                lfs.append(rule_from_spec(json.loads(row.spec)).bind(ws.labels))
            except Exception as exc:  # a label removed from the toml, say
                errors.append(f"rule {row.name!r}: {exc}")
    return LoadedLFs(lfs=lfs, errors=errors, files=result.files)


def _record_code_lfs(
    session: Any, result: LoadResult, code: list[Any], rows: dict[str, LabelingFunction]
) -> None:
    """Write the loaded code LFs to ``labelingfunction`` and deactivate the ones gone; mark
    the votes changed when an LF's version or activity changed."""
    changed = False
    for lf in code:
        row = rows.get(lf.name)
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
    code_names = {lf.name for lf in result.lfs}
    for name, row in rows.items():
        if row.kind == "code" and name not in code_names and row.active:
            row.active = False  # file removed or broken: its votes stay but are not used
            row.updated_at = utcnow()
            session.add(row)
            changed = True
    if changed:
        mark_lfs_changed(session)
