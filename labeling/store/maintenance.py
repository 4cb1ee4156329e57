"""``labelloop backup`` and ``labelloop doctor``: an online copy of the store, and its checkup.

- **backup**: SQLite through the SQLite backup API (a consistent copy while annotators keep
  labelling; it is written beside the target and renamed, so a failed backup leaves nothing);
  PostgreSQL through ``pg_dump --format=custom`` (restore with ``pg_restore``).
- **doctor**: the database's own integrity check (SQLite), then labelloop's invariants: the
  store's Alembic revision is the newest, its tables match the models (Alembic's autogenerate
  comparison), each item's label count against its current answers, one current answer per
  person and item, one current decision per item, superseded answers pointing at the same
  item and person, no round left running by a dead worker, and the promoted round's model
  folder on disk. ``--fix`` repairs what can be repaired from the annotation log (label
  counts, dead rounds); nothing else is changed.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, text, update
from sqlalchemy.engine import Engine, make_url
from sqlmodel import col, select

from labeling.errors import BadInput, LabelloopError
from labeling.store import db, migrations
from labeling.store.models import ADJUDICATION, Annotation, Annotator, Item, Round

if TYPE_CHECKING:
    from labeling.workspace import Workspace


class BackupFailed(LabelloopError):
    exit_code = 1


def backup(ws: Workspace, out: Path) -> dict[str, Any]:
    """Write a consistent copy of the workspace's store to ``out``."""
    return backup_store(ws.engine, out)


def backup_store(engine: Engine, out: Path) -> dict[str, Any]:
    """Write a consistent copy of the store behind ``engine`` to ``out`` (which must not exist).

    Also what :func:`labeling.store.db.open_store` runs before it upgrades a store's schema.
    """
    if out.exists():
        raise BadInput(f"{out}: already exists; give a new file name")
    if not out.parent.is_dir():
        raise BadInput(f"{out.parent}: folder does not exist")
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if db.is_sqlite(engine):
            source_path = engine.url.database
            assert source_path
            with sqlite3.connect(source_path) as source, sqlite3.connect(tmp) as target:
                source.backup(target)  # pages copied under SQLite's own locking: consistent
            kind = "sqlite"
        else:
            kind = "pg_dump"
            _pg_dump(engine.url.render_as_string(hide_password=False), tmp)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"backup": str(out), "kind": kind, "bytes": out.stat().st_size}


def _pg_dump(url: str, out: Path) -> None:
    tool = shutil.which("pg_dump")
    if tool is None:
        raise BackupFailed(
            "pg_dump is not installed: install PostgreSQL's client tools "
            "(`apt-get install -y postgresql-client`)"
        )
    parsed = make_url(url)
    libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(
        [tool, "--format=custom", f"--file={out}", f"--dbname={libpq}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
        raise BackupFailed(f"pg_dump failed: {message}")


def _check(name: str, problems: list[str], fixed: int = 0) -> dict[str, Any]:
    return {"check": name, "ok": not problems, "problems": problems[:20], "count": len(problems),
            "fixed": fixed}  # fmt: skip


def doctor(ws: Workspace, *, fix: bool = False) -> dict[str, Any]:
    """Check the store; with ``fix``, repair label counts and dead rounds."""
    from labeling.rounds import core as rounds

    checks = []
    engine = ws.engine
    if db.is_sqlite(engine):
        with engine.connect() as conn:
            found = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check").all()]
            checks.append(_check("sqlite integrity", [] if found == ["ok"] else found))
            keys = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            checks.append(
                _check(
                    "foreign keys",
                    [
                        f"{table} row {rowid} points at a missing {parent}"
                        for table, rowid, parent, _ in keys
                    ],  # fmt: skip
                )
            )
    head = migrations.head()
    with engine.connect() as conn:
        revision = migrations.current_revision(conn)
        differences = migrations.schema_differences(conn)
        legacy = conn.execute(
            text("SELECT value FROM schemainfo WHERE key = 'schema_version'")
        ).scalar()
    schema = {"revision": revision, "head": head, "schema_version": legacy}
    checks.append(
        _check(
            "schema revision",
            [] if revision == head else [f"store is at {revision}, labelloop's newest is {head}"],
        )
    )
    checks.append(_check("schema matches the models", [_describe(d) for d in differences]))
    with db.read_session(engine) as session:
        # Label counts: current, non-skip answers other than a lead's decision.
        counted: dict[int, int] = dict(
            session.exec(
                select(Annotation.item_id, func.count())
                .where(
                    col(Annotation.superseded_by).is_(None),
                    col(Annotation.label).is_not(None),
                    Annotation.origin != ADJUDICATION,
                )
                .group_by(col(Annotation.item_id))
            ).all()  # type: ignore[arg-type]
        )
        stored: dict[int, int] = dict(
            session.exec(select(Item.id, Item.n_labels).where(Item.n_labels > 0)).all()  # type: ignore[arg-type]
        )
        wrong = {
            item_id: counted.get(item_id, 0)
            for item_id in set(counted) | set(stored)
            if counted.get(item_id, 0) != stored.get(item_id, 0)
        }
        answers: dict[tuple[int, int], int] = defaultdict(int)
        decisions: dict[int, int] = defaultdict(int)
        chain_problems = []
        rows = session.execute(
            select(  # type: ignore[call-overload]
                Annotation.id,
                Annotation.item_id,
                Annotation.annotator_id,
                Annotation.origin,
                Annotation.superseded_by,
            )
        ).all()
        by_id = {row[0]: row for row in rows}
        for annotation_id, item_id, annotator_id, origin, superseded_by in rows:
            if superseded_by is None:
                if origin == ADJUDICATION:
                    decisions[item_id] += 1
                else:
                    answers[(item_id, annotator_id)] += 1
            else:
                newer = by_id.get(superseded_by)
                if newer is None or newer[1] != item_id or newer[2] != annotator_id:
                    chain_problems.append(
                        f"annotation {annotation_id} is superseded by {superseded_by}, which is "
                        "not a later answer of the same person on the same item"
                    )
        # Messages name items by external id and people by name: read them for the few flagged.
        flagged = set(wrong) | {i for (i, _), n in answers.items() if n > 1}
        flagged |= {i for i, n in decisions.items() if n > 1}
        external: dict[int, str] = dict(
            session.exec(select(Item.id, Item.external_id).where(col(Item.id).in_(flagged))).all()  # type: ignore[arg-type]
        )
        names: dict[int, str] = dict(session.exec(select(Annotator.id, Annotator.name)).all())  # type: ignore[arg-type]
        running = session.exec(select(Round).where(Round.status == "running")).all()
        promoted = session.exec(select(Round).where(col(Round.promoted).is_(True))).all()
    fixed = 0
    if fix and wrong:
        with db.write_session(engine) as session:
            for item_id, n in wrong.items():
                session.execute(update(Item).where(col(Item.id) == item_id).values(n_labels=n))
        fixed = len(wrong)
    checks.append(
        _check(
            "label counts",
            [
                f"item {external.get(i, i)!r}: stored {stored.get(i, 0)}, answers say {n}"
                for i, n in wrong.items()
            ],
            fixed,
        )
    )
    checks.append(
        _check(
            "one current answer per person and item",
            [
                f"item {external.get(i, i)!r}, annotator {names.get(a, a)!r}: {n} current answers"
                for (i, a), n in answers.items()
                if n > 1
            ],  # fmt: skip
        )
    )
    checks.append(
        _check(
            "one current decision per item",
            [
                f"item {external.get(i, i)!r}: {n} current decisions"
                for i, n in decisions.items()
                if n > 1
            ],
        )
    )
    checks.append(_check("superseded answers", chain_problems))
    dead = rounds.recover(ws) if fix else []
    stuck = [
        f"round {r.id} is running (worker {r.worker or 'unknown'})"
        for r in running
        if r.id not in dead and rounds.is_dead(r)
    ]
    checks.append(_check("rounds left running by a dead worker", stuck, len(dead)))
    missing = [
        f"round {r.id} is promoted but {r.model_path} is missing"
        for r in promoted
        if r.model_path and not (Path(ws.root) / r.model_path).exists()
    ]
    if len(promoted) > 1:
        missing.append(f"{len(promoted)} rounds are marked promoted; one at most should be")
    checks.append(_check("promoted round", missing))
    return {
        "ok": all(c["ok"] or c["fixed"] == c["count"] for c in checks),
        "schema": schema,
        "checks": checks,
    }


def _describe(difference: Any) -> str:
    """One line for one of Alembic's autogenerate differences (a tuple, or a list of them)."""
    if isinstance(difference, list):
        return "; ".join(_describe(part) for part in difference)
    kind, *parts = difference
    action, _, what = kind.partition("_")
    # Alembic names what would make the store equal the models: "add" is what the store lacks.
    state = {"add": "missing", "remove": "unexpected", "modify": "different"}.get(action, action)
    shown = [
        str(getattr(part, "name", None) or part)
        for part in parts
        if part is not None and not isinstance(part, dict)
    ]
    return f"{state} {what}: {' '.join(shown)}"
