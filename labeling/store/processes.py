"""Which process holds something: the ``pid@host`` names that rounds and the LF apply lock
record, and whether such a process is gone."""

from __future__ import annotations

import os
import socket


def process_gone(worker: str | None) -> bool:
    """Whether ``pid@host`` names a process of this machine that no longer exists."""
    if not worker or "@" not in worker:
        return False
    pid, host = worker.split("@", 1)
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
