"""Developer commands for the store's revisions, without an alembic.ini.

    python -m labeling.store.migrations history
    python -m labeling.store.migrations revision -m "what changes" [--autogenerate]
    python -m labeling.store.migrations --db URL upgrade|downgrade REVISION

``revision`` numbers the new script after the newest one and, with ``--autogenerate``, fills
it with the differences between the models and a scratch SQLite store at the newest revision
(review it: autogenerate misses renames and data changes).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from alembic import command

from labeling.store import db, migrations


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labeling.store.migrations")
    parser.add_argument("--db", help="SQLAlchemy URL of the store (upgrade, downgrade)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("history")
    revision = sub.add_parser("revision")
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument("--autogenerate", action="store_true")
    for name in ("upgrade", "downgrade"):
        sub.add_parser(name).add_argument("revision")
    args = parser.parse_args(argv)

    if args.command == "history":
        command.history(migrations.config())
    elif args.command == "revision":
        number = f"{int(migrations.head()) + 1:04d}"
        with tempfile.TemporaryDirectory() as scratch:
            engine = db.make_engine(db.sqlite_url(Path(scratch) / "head.db"))
            with engine.begin() as conn:
                migrations.upgrade(conn, "head")
                command.revision(
                    migrations.config(conn),
                    message=args.message,
                    autogenerate=args.autogenerate,
                    rev_id=number,
                )
            engine.dispose()
    else:
        if not args.db:
            parser.error(f"{args.command} needs --db URL")
        engine = db.make_engine(args.db)
        with engine.begin() as conn:
            getattr(migrations, args.command)(conn, args.revision)
        engine.dispose()


if __name__ == "__main__":
    main()
