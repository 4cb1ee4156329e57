"""One way to say "the store is unchanged": a fingerprint of every row of every table.

Works on SQLite and PostgreSQL alike (tables from SQLAlchemy's inspector, rows in primary-key
order), so a case can run on both backends. The fingerprint keeps per-table row counts next to
the digest, so a failing comparison says which table changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, inspect


@dataclass(frozen=True)
class Fingerprint:
    """Row counts per table and one digest per table of its rows."""

    counts: dict[str, int]
    digests: dict[str, str]

    def changed_tables(self, other: Fingerprint) -> list[str]:
        names = sorted(set(self.digests) | set(other.digests))
        return [n for n in names if self.digests.get(n) != other.digests.get(n)]


def fingerprint(target: Any, *, ignore: Iterable[str] = ()) -> Fingerprint:
    """Fingerprint of the store behind ``target`` (a Workspace or an Engine).

    ``ignore`` leaves out tables a case is allowed to change (for instance the LF bookkeeping
    when a raising LF is recorded, by design, as faults), and columns named ``table.column``
    (an undo puts labels back, and the feed of label changes records both changes).
    """
    engine: Engine = getattr(target, "engine", target)
    skipped = {name for name in ignore if "." not in name}
    # "table.column": that column is left out of the table's rows.
    columns_out = {tuple(name.split(".", 1)) for name in ignore if "." in name}
    counts: dict[str, int] = {}
    digests: dict[str, str] = {}
    with engine.connect() as conn:
        inspector = inspect(conn)
        for table in sorted(inspector.get_table_names()):
            if table in skipped:
                continue
            keys = inspector.get_pk_constraint(table).get("constrained_columns") or []
            order = ", ".join(f'"{k}"' for k in keys) or "1"
            digest = hashlib.sha256()
            n = 0
            kept = [
                f'"{c["name"]}"'
                for c in inspector.get_columns(table)
                if (table, c["name"]) not in columns_out
            ]
            query = f'SELECT {", ".join(kept)} FROM "{table}" ORDER BY {order}'
            for row in conn.exec_driver_sql(query):
                digest.update(repr(tuple(row)).encode())
                n += 1
            counts[table] = n
            digests[table] = digest.hexdigest()
    return Fingerprint(counts, digests)


def assert_unchanged(before: Fingerprint, target: Any, *, ignore: Iterable[str] = ()) -> None:
    skipped = set(ignore)
    after = fingerprint(target, ignore=skipped)
    changed = [t for t in before.changed_tables(after) if t not in skipped]
    assert not changed, (
        f"the store changed in {changed}: rows before {[before.counts.get(t) for t in changed]}, "
        f"after {[after.counts.get(t) for t in changed]}"
    )


def assert_message(message: str, *facts: str) -> None:
    """Every fact (a file name, row, field, option, what was expected) is in the message."""
    for fact in facts:
        assert fact in message, f"{fact!r} missing from the message: {message!r}"


# What the feed of label changes records (labeling.store.label_feed): an action and its undo
# leave the labels as they were, and the feed says both happened.
LABEL_FEED = ("counter", "item.label_seq", "item.label_changed_at")
