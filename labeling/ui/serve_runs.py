"""Run files: which running ``serve`` holds which launch sign-in link.

A server revokes its link when it stops, but a server killed with SIGKILL never gets there. So
each server records its link in ``<workspace>/.serve/<token_id>.json`` (pid, process start,
host name), and the next ``serve`` on the same host revokes the links of servers that are gone.
Files of other hosts are left alone: their processes cannot be checked from here.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from labeling.errors import LabelloopError

RUN_DIR = ".serve"
_PROC = Path("/proc")


@dataclass(frozen=True)
class RunFile:
    """What one server wrote about itself; ``started`` is None where it cannot be read."""

    token_id: str
    pid: int
    started: str | None
    host: str


@dataclass(frozen=True)
class Sweep:
    """What :func:`sweep_stale` found: run files removed, links revoked, files not readable."""

    removed: int
    revoked: int
    unreadable: list[Path]


def this_host() -> str:
    return socket.gethostname()


def process_started(pid: int) -> str | None:
    """When ``pid`` started, as boot id and start tick (from /proc): equal values mean the same
    process, so a pid the kernel has handed to a newer process does not pass for the server.
    None when the process is gone or there is no /proc."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold spaces; the start
    # tick is field 22 of the whole line, so index 19 after the name.
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        boot = (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{boot}/{fields[19]}" if len(fields) > 19 else None


def pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no safe check here (os.kill would end the process): never call it gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def is_gone(run: RunFile) -> bool:
    """Whether the server of a run file on this host has stopped."""
    if not pid_alive(run.pid):
        return True
    return run.started is not None and process_started(run.pid) != run.started


def run_dir(root: Path) -> Path:
    return root / RUN_DIR


def record(root: Path, token_id: str) -> Path:
    """Write this process's run file for the link ``token_id``, atomically (temp file and
    rename), so a reader never sees half a file.

    A server that cannot record its link does not start: killed, it would leave a link that
    nothing revokes.
    """
    folder = run_dir(root)
    pid = os.getpid()
    run = RunFile(token_id=token_id, pid=pid, started=process_started(pid), host=this_host())
    path = folder / f"{token_id}.json"
    try:
        folder.mkdir(exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{token_id}.", suffix=".tmp")
    except OSError as exc:
        raise LabelloopError(
            f"{folder}: cannot write the server's run file ({exc.strerror}); the workspace "
            "folder must be writable for `serve`"
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(run), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def read(path: Path) -> RunFile:
    """A run file; ValueError when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        run = RunFile(
            token_id=str(data["token_id"]),
            pid=int(data["pid"]),
            started=None if data.get("started") is None else str(data["started"]),
            host=str(data["host"]),
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path.name}: not a serve run file ({exc})") from exc
    return run


def sweep_stale(root: Path, revoke: Callable[[list[str]], int]) -> Sweep:
    """Revoke the links of this host's servers that are gone and remove their run files.

    ``revoke`` takes token ids and returns how many links it deleted (a link may have expired
    and been removed already). Files are removed only after ``revoke`` returned, so a store
    that fails here leaves them for the next try.
    """
    folder = run_dir(root)
    if not folder.is_dir():
        return Sweep(removed=0, revoked=0, unreadable=[])
    host = this_host()
    stale: list[tuple[Path, RunFile]] = []
    unreadable: list[Path] = []
    for path in sorted(folder.glob("*.json")):
        try:
            run = read(path)
        except ValueError:
            unreadable.append(path)
            continue
        if run.host == host and is_gone(run):
            stale.append((path, run))
    if not stale:
        return Sweep(removed=0, revoked=0, unreadable=unreadable)
    revoked = revoke([run.token_id for _path, run in stale])
    for path, _run in stale:
        path.unlink(missing_ok=True)
    return Sweep(removed=len(stale), revoked=revoked, unreadable=unreadable)


def forget(path: Path) -> None:
    path.unlink(missing_ok=True)
