"""Work the API server does after a push has been answered: the drift check of each pushed
pool batch (as an import runs it, in push order) and, on PostgreSQL, the planner's statistics
now and then. One thread; a failed check is logged and the next goes on."""

from __future__ import annotations

import logging
import queue
import threading
import time

from labeling.workspace import Workspace

log = logging.getLogger("labelloop.api")
# The planner's statistics are refreshed at most this often while pushes come in.
STATISTICS_SECONDS = 30.0


class Background:
    """The API server's background thread (see the module)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._batches: queue.Queue[int | None] = queue.Queue()
        self._analyzed = 0.0
        self._stale = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labelloop-api-bg", daemon=True)

    def start(self) -> Background:
        self._thread.start()
        return self

    def pushed(self, batch_id: int, *, pool: bool) -> None:
        """A push landed as import batch ``batch_id``."""
        self._stale.set()
        if pool:
            self._batches.put(batch_id)

    def idle(self, timeout: float = 60.0) -> bool:
        """Wait until every pushed batch has been checked (tests, and a clean stop)."""
        deadline = time.monotonic() + timeout
        while self._batches.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._batches.unfinished_tasks

    def stop(self) -> None:
        self._batches.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            try:
                batch_id = self._batches.get(timeout=1.0)
            except queue.Empty:
                self._refresh()
                continue
            try:
                if batch_id is None:
                    return
                self._refresh()
                self.ws.check_drift(batch_id)
            except Exception:  # noqa: BLE001  the next check still runs; the log says why
                log.exception("drift check of import batch %s failed", batch_id)
            finally:
                self._batches.task_done()

    def _refresh(self) -> None:
        if not self._stale.is_set() or time.monotonic() - self._analyzed < STATISTICS_SECONDS:
            return
        self._stale.clear()
        self._analyzed = time.monotonic()
        try:
            self.ws.refresh_statistics()
        except Exception:  # noqa: BLE001  statistics are an optimisation
            log.exception("refreshing the planner's statistics failed")
