"""The embedding pass on a ``dask.distributed`` cluster: chunks of texts out, vectors back.

The client reads each chunk's texts from the store, sends them to a worker, and writes the
vectors it gets back to the feature cache at once, so a kill loses only the chunks in flight
(at most two per worker). Tasks carry texts and a thread count, never the model: each worker
process loads the bundled model on its first task and keeps it
(:func:`labeling.rounds.embeddings.load_model` is a per-process cache). Workers need
labelloop (with the embedding package) installed, as for the LF engine (docs/scaling.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeling.context import ProgressCallback
from labeling.errors import BadInput
from labeling.rounds.embeddings import embed

#: How long to wait for a scheduler (and for its first worker) before saying it does not answer.
CONNECT_SECONDS = 5
#: Chunks in flight per worker: one running, one queued behind it so the worker never idles.
IN_FLIGHT_PER_WORKER = 2
STAGE = "embedding"

Chunk = tuple[NDArray[np.str_], list[str]]  # item keys and their texts


def check_dask_options(scheduler: str | None, workers: int | None) -> None:
    """Refuse options that cannot work together, before any cluster is started."""
    if scheduler is not None and workers is not None:
        raise BadInput(
            "--workers sets the size of a local cluster; with --scheduler the cluster's own "
            "workers embed (drop one of the two)"
        )
    if workers is not None and workers < 1:
        raise BadInput(f"--workers: expected at least 1, found {workers}")
    if scheduler is not None and not scheduler.strip():
        raise BadInput("--scheduler: expected an address such as tcp://HOST:8786, found ''")


def embed_chunk(texts: list[str], threads: int | None) -> NDArray[np.float32]:
    """One chunk's vectors, on a worker: ``threads`` torch threads, the process's one model."""
    if threads:
        # Set in the thread that runs the model: torch's thread count is per thread here.
        import torch  # torch: ~2 s, loaded with the model anyway

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return embed(texts)


class DaskEmbedder:
    """A client on ``scheduler``, or on a LocalCluster of ``workers`` processes on 127.0.0.1,
    for the duration of a ``with`` block."""

    def __init__(self, scheduler: str | None, workers: int | None) -> None:
        check_dask_options(scheduler, workers)
        self.scheduler = scheduler
        self.n_workers = workers or 2
        self.client: Any = None
        self.cluster: Any = None
        self.workers = 0
        self.threads: int | None = None

    def __enter__(self) -> DaskEmbedder:
        from distributed import Client, LocalCluster  # distributed: ~0.5 s, this engine only

        if self.scheduler is None:
            self.cluster = LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(self.scheduler, timeout=f"{CONNECT_SECONDS}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise BadInput(
                    f"--scheduler: the Dask scheduler at {self.scheduler} did not answer within "
                    f"{CONNECT_SECONDS} s ({exc})"
                ) from exc
        try:
            self._size_workers()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _size_workers(self) -> None:
        """Count the workers and give each a share of its machine's cores for torch."""
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except TimeoutError as exc:
            raise BadInput(
                f"--scheduler: the Dask scheduler at {self.scheduler} has no worker "
                f"(waited {CONNECT_SECONDS} s)"
            ) from exc
        info = self.client.scheduler_info()["workers"]
        self.workers = len(info)
        cores = self.client.run(os.cpu_count)
        per_host: dict[str, int] = {}
        for worker in info.values():
            per_host[worker["host"]] = per_host.get(worker["host"], 0) + 1
        # Workers of one machine share its cores; torch would otherwise start one thread per
        # core in every worker and they would fight (2 workers x 2 threads on 2 cores).
        self.threads = max(
            1,
            min(
                (cores.get(address) or 1) // per_host[worker["host"]]
                for address, worker in info.items()
            ),
        )

    def __exit__(self, *_exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def run(
        self,
        chunks: Iterator[Chunk],
        store: Callable[[NDArray[np.str_], NDArray[np.float32]], None],
        progress: ProgressCallback | None,
        total: int,
    ) -> int:
        """Embed every chunk on the cluster, storing each as it comes back; returns the rows."""
        from distributed import as_completed  # distributed: ~0.5 s, this engine only

        in_flight: dict[Any, NDArray[np.str_]] = {}
        limit = IN_FLIGHT_PER_WORKER * max(1, self.workers)

        def submit() -> Any:
            found = next(chunks, None)
            if found is None:
                return None
            keys, texts = found
            future = self.client.submit(embed_chunk, texts, self.threads, pure=False)
            in_flight[future] = keys
            return future

        started = [f for f in (submit() for _ in range(limit)) if f is not None]
        done = 0
        finished = as_completed(started)
        for future in finished:
            keys = in_flight.pop(future)
            store(keys, np.asarray(future.result(), dtype=np.float32))
            future.release()
            done += len(keys)
            if progress is not None:
                progress(STAGE, done, total)
            following = submit()
            if following is not None:
                finished.add(following)
        return done
