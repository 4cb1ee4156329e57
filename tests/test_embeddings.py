"""The bundled sentence-embedding model (labeling.rounds.embeddings): its settings are the ones
the fingerprint names, rows are unit float32 vectors one per text, no texts load nothing, and
loading never reaches for the network."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from labeling.errors import BadInput
from labeling.rounds import embeddings
from labeling.rounds.embeddings import (
    EMBEDDING_DIMENSIONS,
    MAX_SEQ_LENGTH,
    PRECISION,
    THREADS_VARIABLE,
    embed,
    embedding_threads,
    load_model,
    settings_fingerprint,
)

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "Refund please, I was charged twice",
    "The app crashes on start since the update",
    "Where is my parcel? Tracking says delivered",
    "ok",
]


def test_no_texts_give_no_rows_and_load_no_model(monkeypatch):
    def refuse() -> None:
        raise AssertionError("the model was loaded for no texts")

    monkeypatch.setattr(embeddings, "load_model", refuse)
    rows = embed([])
    assert rows.shape == (0, EMBEDDING_DIMENSIONS)
    assert rows.dtype == np.float32


def test_rows_are_unit_float32_vectors_one_per_text_in_order():
    rows = embed([*TEXTS, TEXTS[0]])
    assert rows.shape == (len(TEXTS) + 1, EMBEDDING_DIMENSIONS)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(rows[0], rows[-1], atol=1e-5)
    # Texts of one topic land nearer each other than texts of different topics.
    charged_again = embed(["I was billed two times, please refund me"])[0]
    assert rows[0] @ charged_again > rows[1] @ charged_again


def test_the_batch_size_does_not_change_the_vectors():
    np.testing.assert_allclose(embed(TEXTS, batch_size=1), embed(TEXTS, batch_size=64), atol=1e-5)


def test_the_loaded_model_keeps_the_settings_the_fingerprint_names():
    assert load_model().max_seq_length == MAX_SEQ_LENGTH
    assert settings_fingerprint() == f"{PRECISION}-msl{MAX_SEQ_LENGTH}-mean-l2"


def test_words_past_the_word_piece_limit_do_not_change_the_vector():
    long_text = " ".join(["refund"] * (MAX_SEQ_LENGTH + 50))
    first, longer = embed([long_text, long_text + " the app crashes on start"])
    np.testing.assert_allclose(first, longer, atol=1e-5)


def test_the_fingerprint_changes_with_a_setting_that_changes_vectors(monkeypatch):
    before = settings_fingerprint()
    monkeypatch.setattr(embeddings, "MAX_SEQ_LENGTH", 128)
    assert settings_fingerprint() != before
    monkeypatch.setattr(embeddings, "MAX_SEQ_LENGTH", MAX_SEQ_LENGTH)
    monkeypatch.setattr(embeddings, "PRECISION", "int8")
    assert settings_fingerprint() != before


def test_threads_come_from_the_variable_else_all_cores_but_one(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "3")
    assert embedding_threads() == 3
    monkeypatch.delenv(THREADS_VARIABLE)
    assert embedding_threads() == max(1, len(os.sched_getaffinity(0)))
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_VARIABLE, bad)
        with pytest.raises(BadInput, match=f"expected a positive integer, found '{bad}'"):
            embedding_threads()


def test_a_fresh_process_loads_offline_with_no_connection_and_the_threads_asked_for():
    # A fresh process: the hub library reads HF_HUB_OFFLINE once, when first imported, and
    # torch's thread count is set once, by the load.
    script = textwrap.dedent(
        """
        import os, socket

        def refuse(*args, **kwargs):
            raise AssertionError(f"network use while loading: {args!r}")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        os.environ.pop("HF_HUB_OFFLINE", None)
        os.environ.pop("TRANSFORMERS_OFFLINE", None)
        os.environ.pop("OMP_WAIT_POLICY", None)
        from labeling.rounds.embeddings import embed
        rows = embed(["hello there"])
        import torch
        from huggingface_hub import constants
        print(os.environ["HF_HUB_OFFLINE"], constants.HF_HUB_OFFLINE, torch.get_num_threads())
        print(os.environ["OMP_WAIT_POLICY"], rows.shape)
        """
    )
    env = {**os.environ, THREADS_VARIABLE: "2"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "True", "2", "PASSIVE", "(1,", "384)"]
