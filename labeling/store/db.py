"""The one module that owns database engines: URL handling, SQLite pragmas, the schema.

Nothing here runs at import time; :func:`open_store` builds an engine for a URL when asked.
SQLite gets WAL, foreign keys and a busy timeout, and write transactions that must see a
stable view (claiming an item, importing a file) start with ``BEGIN IMMEDIATE``.

The schema is versioned with Alembic (:mod:`labeling.store.migrations`): :func:`open_store` creates
a new store at the newest revision, upgrades an older one (after a backup) and refuses one
written by a newer labelloop.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, inspect, literal, select, table, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlmodel import Session, SQLModel, create_engine

from labeling.store import backup, migrations, models, search_index

try:
    import fcntl
except ImportError:  # not on Windows: SQLite's busy timeout alone queues the writers there
    fcntl = None  # type: ignore[assignment]
from labeling.errors import BadInput, LabelloopError, SchemaTooNew, StoreError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path.resolve()}"


def display_url(url: str) -> str:
    """A URL safe to print: the password is masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself, so a transaction can ask
        # for BEGIN IMMEDIATE (take the write lock up front instead of failing mid-way).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite files get the pragmas labelloop relies on."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadInput(f"database URL {url!r} is not a valid SQLAlchemy URL") from exc
    if parsed.drivername == "postgresql":
        # A plain postgresql:// URL means psycopg 2 to SQLAlchemy; labelloop ships psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(
                parsed,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            _configure_sqlite(engine)
        else:
            engine = create_engine(parsed, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise BadInput(
            f"database URL {display_url(url)}: no driver for {parsed.drivername!r} "
            f"is installed ({exc})"
        ) from exc
    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@dataclass(frozen=True)
class StoreState:
    """Where a store's schema stands."""

    revision: str  # its Alembic revision, or the one its pre-Alembic schema_version equals
    stamped: bool  # whether it has an alembic_version table (False: made before Alembic)


def _read_state(conn: Connection, shown: str) -> StoreState | None:
    """The store's schema state; None for an empty database."""
    tables = set(inspect(conn).get_table_names())
    if not tables:
        return None
    if "alembic_version" in tables:
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(found) != 1:
            raise StoreError(
                f"database {shown} records {len(found)} schema revisions where one is expected: "
                "it is damaged; restore a backup"
            )
        return StoreState(revision=str(found[0]), stamped=True)
    if "schemainfo" not in tables:
        raise StoreError(
            f"database {shown} already holds tables but no labelloop schema version: "
            "it is not a labelloop database"
        )
    value = conn.execute(text("SELECT value FROM schemainfo WHERE key = 'schema_version'")).scalar()
    if value is None:
        raise StoreError(
            f"database {shown} has no schema_version row: it is damaged or not labelloop's; "
            "restore a backup"
        )
    try:
        version = int(value)
    except ValueError as exc:
        raise StoreError(f"database {shown}: schema_version {value!r} is not an integer") from exc
    revision = migrations.LEGACY_REVISIONS.get(version)
    if revision is None:
        newest = max(migrations.LEGACY_REVISIONS)
        if version > newest:
            raise SchemaTooNew(
                f"database {shown} has schema version {version}, but this labelloop "
                f"understands versions up to {newest} (schema revision {migrations.head()}): "
                "upgrade labelloop to open it; the database was not changed"
            )
        raise StoreError(f"database {shown}: schema_version {version} was never labelloop's")
    return StoreState(revision=revision, stamped=False)


def _refuse_unknown(state: StoreState, shown: str) -> None:
    if not migrations.is_known(state.revision):
        raise SchemaTooNew(
            f"database {shown} is at schema revision {state.revision!r}, which this labelloop "
            f"does not know (the newest it knows is {migrations.head()!r}): a newer labelloop "
            "wrote it. Upgrade labelloop to open it; the database was not changed"
        )


# Any constant will do: the key of PostgreSQL's advisory lock that serialises schema changes.
_SCHEMA_LOCK_KEY = 0x6C6C6F6F70  # "lloop"


@contextmanager
def _schema_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that alone may change the schema: others wait, then see the result.

    SQLite: this writer's turn and ``BEGIN IMMEDIATE`` (the database's write lock). PostgreSQL:
    a transaction-scoped advisory lock; its DDL is transactional, so a failure changes nothing.
    """
    if is_sqlite(engine):
        bound = engine.execution_options(sqlite_begin="IMMEDIATE")
        with _sqlite_writer_turn(engine), bound.begin() as conn:
            yield conn
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        yield conn


def _notice(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def open_store(
    url: str,
    *,
    create: bool,
    backup_dir: Path | None = None,
    notify: Callable[[str], None] = _notice,
) -> Engine:
    """Connect to the store at ``url``, creating the schema when ``create`` and it is empty.

    An existing store at an older schema revision (or made before labelloop used Alembic) is
    backed up into ``backup_dir`` (default: a ``backups`` folder beside a SQLite file) and
    upgraded in one transaction; ``notify`` is told where the backup is.

    Raises :class:`SchemaTooNew` for a database written by a newer labelloop and
    :class:`StoreError` when the database cannot be reached or is not labelloop's.
    """
    engine = make_engine(url)
    shown = display_url(url)
    try:
        with engine.connect() as conn:
            state = _read_state(conn, shown)
        if state is None:
            if not create:
                raise StoreError(
                    f"database {shown} is empty: create the workspace with `labelloop init` first"
                )
            _create_at_head(engine, shown)
        elif create:
            raise StoreError(
                f"database {shown} already holds a labelloop store (another workspace's?); "
                "give init an empty database, or open the workspace that owns it"
            )
        else:
            _refuse_unknown(state, shown)
            if not state.stamped or state.revision != migrations.head():
                _upgrade(engine, shown, backup_dir=backup_dir, notify=notify)
    except DBAPIError as exc:
        engine.dispose()
        raise StoreError(f"cannot use database {shown}: {exc.orig}") from exc
    except Exception:
        engine.dispose()
        raise
    return engine


def _create_at_head(engine: Engine, shown: str) -> None:
    """A new store: the models' tables as they are now, stamped with the newest revision.

    ``create_all`` plus a stamp instead of running every revision: one pass of CREATEs instead
    of four revisions' worth of ALTERs, and no revision scripts to run. The migration tests
    check that upgrading through the revisions gives the same schema.
    """
    with _schema_transaction(engine) as conn:
        if _read_state(conn, shown) is not None:  # another init got there first
            raise StoreError(f"database {shown} already holds a labelloop store")
        SQLModel.metadata.create_all(conn)
        search_index.create(conn)
        conn.execute(
            insert(models.SchemaInfo).values(  # type: ignore[arg-type]
                key="schema_version", value=str(models.SCHEMA_VERSION)
            )
        )
        conn.execute(insert(models.Counter).values(name="label", value=0))  # type: ignore[arg-type]
        migrations.stamp(conn, "head")


def _holds_data(conn: Connection) -> bool:
    for name in inspect(conn).get_table_names():
        if name in ("alembic_version", "schemainfo"):
            continue
        if conn.execute(select(literal(1)).select_from(table(name)).limit(1)).first():
            return True
    return False


def _upgrade(
    engine: Engine, shown: str, *, backup_dir: Path | None, notify: Callable[[str], None]
) -> None:
    """Back up, stamp (a store from before Alembic) and upgrade to the newest revision.

    All under the schema lock, in one transaction: a second process opening the store at the
    same time waits, then finds it upgraded and does nothing.
    """
    head = migrations.head()
    with _schema_transaction(engine) as conn:
        state = _read_state(conn, shown)
        assert state is not None
        _refuse_unknown(state, shown)
        if state.stamped and state.revision == head:
            return
        if _holds_data(conn):
            out = _backup_before_upgrade(engine, shown, state, backup_dir)
            notify(
                f"database {shown} is at schema revision {state.revision}; backed it up to "
                f"{out} before upgrading it to {head}"
            )
        if not state.stamped:
            migrations.stamp(conn, state.revision)
        migrations.upgrade(conn, head)
    notify(f"database {shown} upgraded from schema revision {state.revision} to {head}")


def _backup_before_upgrade(
    engine: Engine, shown: str, state: StoreState, backup_dir: Path | None
) -> Path:
    if backup_dir is None and is_sqlite(engine) and engine.url.database:
        backup_dir = Path(engine.url.database).parent / "backups"
    if backup_dir is None:
        raise StoreError(
            f"database {shown} needs an upgrade from schema revision {state.revision}: open it "
            "through its workspace, so that a backup can be written there first"
        )
    when = models.utcnow().strftime("%Y%m%dT%H%M%SZ")
    suffix = ".db" if is_sqlite(engine) else ".pgdump"
    out = backup_dir / f"before-upgrade-from-{state.revision}-{when}{suffix}"
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
        backup.backup_store(engine, out)
    except (LabelloopError, OSError) as exc:
        raise StoreError(
            f"database {shown} needs an upgrade from schema revision {state.revision}, but "
            f"the backup before it failed, so nothing was changed: {exc}"
        ) from exc
    return out


_WRITER = threading.local()
_PROCESS_WRITER_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_WRITER_LOCKS_GUARD = threading.Lock()


@contextmanager
def _sqlite_writer_turn(engine: Engine) -> Iterator[None]:
    """Queue the writers of one SQLite file, so each gets the write lock as soon as it is free.

    SQLite's own busy handler retries with sleeps that grow to 100 ms, so under contention a
    writer can wait seconds while others slip in (measured: p99 2-3 s with 8 annotators
    labelling flat out). Here writers first wait their turn on a lock per process (threads)
    and an ``flock`` on ``<database>-writer.lock`` (processes), polled every millisecond. A
    writer that cannot get its turn within the busy timeout goes on and leaves the waiting to
    SQLite, as before. Re-entrant within a thread; other programs writing the file without
    this lock are still handled by SQLite's busy timeout.
    """
    path = engine.url.database
    depth: int = getattr(_WRITER, "depth", 0)
    if not path or path == ":memory:" or depth:
        _WRITER.depth = depth + 1
        try:
            yield
        finally:
            _WRITER.depth -= 1
        return
    with _PROCESS_WRITER_LOCKS_GUARD:
        local = _PROCESS_WRITER_LOCKS.setdefault(path, threading.Lock())
    timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
    have_local = local.acquire(timeout=timeout)
    fd = None
    try:
        if fcntl is not None:
            try:
                fd = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                fd = None
            deadline = time.monotonic() + timeout
            while fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(fd)
                        fd = None
                        break
                    time.sleep(0.001)
        _WRITER.depth = 1
        try:
            yield
        finally:
            _WRITER.depth = 0
    finally:
        if fd is not None:
            os.close(fd)  # closing the file releases the flock
        if have_local:
            local.release()


@contextmanager
def write_session(engine: Engine, *, connection: Connection | None = None) -> Iterator[Session]:
    """A session whose transaction holds the write lock from its first statement.

    On SQLite this is ``BEGIN IMMEDIATE``, after waiting for this writer's turn (see
    :func:`_sqlite_writer_turn`); on other databases an ordinary transaction (row locks are
    taken by the queries themselves). Commits on success, rolls back on error. ``connection``:
    one of ``engine``'s to run the transaction on, instead of one from the pool.
    """
    sqlite = is_sqlite(engine)
    target: Engine | Connection = engine if connection is None else connection
    bound = target.execution_options(sqlite_begin="IMMEDIATE") if sqlite else target
    turn = _sqlite_writer_turn(engine) if sqlite else nullcontext()
    with turn, Session(bound, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# Page cache of a bulk write on SQLite (MiB). The default 2 MiB thrashes once the item indexes on
# random keys (rank, content hash) outgrow it: a 1M-row import spent a third of its time there.
BULK_CACHE_MIB = 256


@contextmanager
def bulk_cache(session: Session, mib: int = BULK_CACHE_MIB) -> Iterator[None]:
    """A larger SQLite page cache for the session's connection while a bulk write runs.

    Commit inside the block: the previous size is restored on leaving it, which frees the
    pages once they are clean (a pooled connection must not keep hundreds of MiB). The pragmas
    go to the driver connection directly, so they start no transaction. Other databases are
    left alone.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    previous = int(raw.execute("PRAGMA cache_size").fetchone()[0])
    raw.execute(f"PRAGMA cache_size = {-int(mib) * 1024}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {previous}")
        raw.execute("PRAGMA shrink_memory")
        _release_free_memory()


def _release_free_memory() -> None:
    """Hand freed heap memory back to the system (glibc keeps it otherwise: after a 1M-row
    import a long-running server would hold 300 MB of freed cache pages). Best effort: only
    where the C library has ``malloc_trim``."""
    try:
        libc = ctypes.CDLL(None)
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)
    except OSError:
        pass


def refresh_statistics(engine: Engine, *tables: str) -> None:
    """Update the planner's statistics of ``tables`` after a bulk write (PostgreSQL: ANALYZE).

    Without it the planner keeps the row counts it saw when the tables were nearly empty until
    autovacuum gets round to them (a minute or more): it then read every open score and sorted
    them on each claim, 90-180 ms a claim on a 4,000-item pool instead of one index step.
    ANALYZE takes no lock that holds up reads or writes of rows. SQLite's planner is steered by
    the queries' own index hints and is left alone.
    """
    if engine.dialect.name != "postgresql":
        return
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {quote(table)}")


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def schema_revision(engine: Engine) -> str | None:
    """The store's Alembic revision (None when it has none)."""
    with engine.connect() as conn:
        return migrations.current_revision(conn)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
