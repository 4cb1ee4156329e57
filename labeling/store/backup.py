"""``labelloop backup``: an online, consistent copy of the store.

SQLite through the SQLite backup API (a consistent copy while annotators keep labelling; it is
written beside the target and renamed, so a failed backup leaves nothing); PostgreSQL through
``pg_dump --format=custom`` (restore with ``pg_restore``). The store also backs itself up here
before labelloop upgrades its schema (:func:`labeling.store.db.open_store`).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine, make_url

from labeling.errors import BadInput, LabelloopError


class BackupFailed(LabelloopError):
    exit_code = 1


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
        if engine.dialect.name == "sqlite":
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
