"""Schema migrations of the labelloop store, with Alembic.

The scripts live in this package (``env.py``, ``versions/``) and are found through the
package's own path, so an installed labelloop needs no ``alembic.ini``. :mod:`labeling.store.db`
decides when to create, stamp or upgrade a store; this module only wraps Alembic:

- :func:`head` and :func:`is_known` answer from the revision scripts (read once per process);
- :func:`stamp` and :func:`upgrade` work on a connection the caller holds inside its own
  transaction, so the caller decides what is atomic and what is locked;
- :func:`schema_differences` compares a live store with the models, as Alembic's
  autogenerate sees them (``labelloop doctor`` and the tests use it).

Revisions are numbered ``0001``, ``0002``... Revisions 0001-0003 are the three schema versions
labelloop had before Alembic (``schemainfo.schema_version`` 1-3), so an older store maps onto
one of them without guessing (:data:`LEGACY_REVISIONS`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime
from sqlmodel import SQLModel

from labeling.store import (
    models,  # noqa: F401  (registers the tables in SQLModel.metadata)
    search_index,
)
from labeling.store.models import ITEM_LOOKUP_INDEX

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

SCRIPTS = Path(__file__).resolve().parent

# schemainfo.schema_version of a store made before Alembic -> the revision it equals.
LEGACY_REVISIONS = {1: "0001", 2: "0002", 3: "0003"}


def config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code; ``connection`` is handed to ``env.py``."""
    # alembic: only schema upgrades and checks need it
    from alembic.config import Config

    cfg = Config()
    # The ini syntax interpolates "%": a path holding one must not be read as a reference.
    cfg.set_main_option("script_location", str(SCRIPTS).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


@functools.lru_cache(maxsize=1)
def script_directory() -> ScriptDirectory:
    # alembic: only schema upgrades and checks need it
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest revision this labelloop knows."""
    found = script_directory().get_current_head()
    if found is None:  # pragma: no cover - the package always ships its revisions
        raise RuntimeError(f"no Alembic revisions found in {SCRIPTS / 'versions'}")
    return found


def is_known(revision: str) -> bool:
    # alembic: only schema upgrades and checks need it
    from alembic.util import CommandError

    try:
        return script_directory().get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the store's ``alembic_version`` table (None: not stamped)."""
    # alembic: only schema upgrades and checks need it
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def stamp(connection: Connection, revision: str) -> None:
    """Record ``revision`` as the store's revision without running any migration."""
    # alembic: only schema upgrades and checks need it
    from alembic.runtime.migration import MigrationContext

    MigrationContext.configure(connection).stamp(script_directory(), revision)


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Run the migrations from the store's revision to ``revision`` on ``connection``.

    The caller holds the transaction: on PostgreSQL (transactional DDL) and on SQLite (labelloop
    issues BEGIN itself, so DDL does not commit early) a failure leaves the store as it was.
    """
    # alembic: only schema upgrades and checks need it
    from alembic import command

    command.upgrade(config(connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    """Run the downgrades to ``revision`` (for development and tests; labelloop never does)."""
    # alembic: only schema upgrades and checks need it
    from alembic import command

    command.downgrade(config(connection), revision)


def compare_type(
    context: Any,
    inspected_column: Any,
    metadata_column: Any,
    inspected_type: Any,
    metadata_type: Any,
) -> bool | None:
    """SQLite keeps no column types, only affinities: TIMESTAMP and DATETIME are the same there.

    (Schema version 2 added ``round.promoted_at`` as TIMESTAMP; a new store has DATETIME. Both
    hold the same text; on PostgreSQL, where they differ, revision 0004 converts the column.)
    """
    if context.dialect.name == "sqlite" and isinstance(inspected_type, DateTime):
        wanted = getattr(metadata_type, "impl", metadata_type)  # UTCDateTime wraps a DateTime
        return not isinstance(wanted, DateTime)
    return None  # Alembic's own comparison


def schema_differences(connection: Connection) -> list[Any]:
    """What Alembic's autogenerate would change to make the store equal the models.

    Empty when the store's tables, columns, types, indexes and constraints match
    ``SQLModel.metadata`` (server defaults are not compared: stores upgraded in place keep the
    defaults that filled existing rows).
    """
    # alembic: only schema upgrades and checks need it
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    sqlite = connection.dialect.name == "sqlite"

    def include(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
        # The lookup index is SQLite's only (Index.ddl_if), which autogenerate does not read.
        if name == ITEM_LOOKUP_INDEX and not sqlite:
            return False
        return _not_search_index(obj, name, kind, reflected, other)

    context = MigrationContext.configure(
        connection, opts={"compare_type": compare_type, "include_object": include}
    )
    return list(compare_metadata(context, SQLModel.metadata))


def _not_search_index(obj: Any, name: str | None, kind: str, reflected: bool, _other: Any) -> bool:
    """Leave the full-text index out of the comparison: it is made by hand, not by the models
    (labeling.store.search_index), on both paths to a store."""
    del obj, kind, reflected
    return not (name or "").startswith((search_index.FTS_TABLE, search_index.PG_COLUMN)) and (
        name != f"ix_item_{search_index.PG_COLUMN}"
    )
