"""A throwaway PostgreSQL server for the test run (Debian's postgresql package).

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user on a
data folder it owns. The server listens on 127.0.0.1 on a free port, with fsync off.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def _bindir() -> Path:
    explicit = os.environ.get("LABELLOOP_PG_BINDIR")
    if explicit:
        return Path(explicit)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    # Debian and Ubuntu keep the server binaries out of PATH, one folder per major version.
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb) found: install them "
        "(`apt-get install -y postgresql`) or run the tests with `--backend sqlite`"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    folder: Path
    port: int
    bindir: Path
    prefix: list[str]

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def halt(self) -> None:
        """Stop the server at once (as a crash would), keeping its data for :meth:`resume`."""
        self._pg_ctl("-m", "immediate", "stop")

    def resume(self) -> None:
        """Start a halted server again on the same port and data."""
        done = self._pg_ctl(*_start_options(self.folder, self.port))
        if done.returncode != 0:
            raise PostgresUnavailable(f"pg_ctl start failed: {done.stderr.strip()}")

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    def stop(self) -> None:
        subprocess.run(
            [
                *self.prefix,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def _start_options(folder: Path, port: int) -> list[str]:
    return [
        "-l",
        str(folder / "server.log"),
        "-w",
        "-o",
        f"-h 127.0.0.1 -p {port} -k {folder} -F -c max_connections=200",
        "start",
    ]


def start() -> PostgresServer:
    bindir = _bindir()
    folder = Path(tempfile.mkdtemp(prefix="labelloop-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, user="postgres", group="postgres")
        folder.chmod(0o700)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    port = _free_port()
    steps = [
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), *_start_options(folder, port)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            raise PostgresUnavailable(
                f"{Path(step[len(prefix)]).name} failed: {done.stderr.strip()} {log[-2000:]}"
            )
    return PostgresServer(folder=folder, port=port, bindir=bindir, prefix=prefix)
