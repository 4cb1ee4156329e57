"""Predicting new texts with a round's model: the promoted round (or round N), its classifier and
its fitted featurizer loaded once per process, the texts featurized as that round featurized
its pool, and the round's own decision rule applied.

The result for a text the round has seen is the prediction it stored in ``predictions.npy``
(:mod:`labeling.rounds.predictions`): the same featurizer object, the same classifier, the
same rule (single-label: the most probable class; multi-label: every label at P >= 0.5,
:func:`labeling.rounds.scores.predicted_sets`).

A loaded round is kept per (workspace, round) while its model and featurizer files are
unchanged, so ``POST /predict`` and the pages pay for the load once; which round is promoted
is read from the store at every call, so a newly promoted round is used from the next call on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import col, select

from labeling.context import Context
from labeling.errors import BadInput
from labeling.rounds.learner import predict_proba
from labeling.rounds.pool import round_featurizer
from labeling.rounds.scores import predicted_sets
from labeling.store import db, labelsets
from labeling.store.models import Round

MODEL_FILE = "model.joblib"
# Texts featurized and scored at a time: bounds the feature matrix of one step.
PREDICT_CHUNK_TEXTS = 20_000
# Loaded rounds kept per process (a model and a fitted featurizer: tens of MB each).
CACHED_ROUNDS = 4

_CACHE: dict[tuple[Any, ...], RoundModel] = {}
_LOCK = threading.Lock()


class RoundNotFound(BadInput):
    """No round has the number asked for."""


class NoModel(BadInput):
    """There is no model to predict with: no promoted round, a failed or cold-start round, or a
    round whose fitted featurizer is gone."""


@dataclass(frozen=True)
class Predictions:
    """A round's predictions for some texts, one row per text in the order given.

    ``labels`` are the classes the round's model knows, in the workspace's label order (a
    label nobody had given when the round trained is not among them); ``probabilities`` is
    ``(n_texts, n_labels)``: single-label, a distribution per row; multi-label, P(label
    present) per label. ``predicted``: single-label, the most probable class; multi-label, the
    names of the labels at P >= 0.5 (possibly none), in label order.
    """

    round_id: int
    labels: tuple[str, ...]
    probabilities: np.ndarray
    predicted: list[str | list[str]]

    def as_json(self) -> dict[str, Any]:
        """The shape of ``POST /predict``'s answer: ``{"round": N, "predictions": [{"label":
        ..., "probabilities": {label: p}}]}``, probabilities rounded to 6 decimals."""
        rows = [[round(p, 6) for p in row] for row in self.probabilities.tolist()]
        return {
            "round": self.round_id,
            "predictions": [
                {"label": label, "probabilities": dict(zip(self.labels, row, strict=True))}
                for label, row in zip(self.predicted, rows, strict=True)
            ],
        }


@dataclass(frozen=True)
class RoundModel:
    """A round's fitted classifier and featurizer, ready to predict."""

    round_id: int
    model: Any
    featurizer: Any
    featurizer_name: str
    labels: tuple[str, ...]
    # Column of ``model.classes_`` for each of ``labels``.
    columns: np.ndarray
    multilabel: bool
    metrics: dict[str, Any]

    def predict(self, texts: Sequence[str]) -> Predictions:
        """The round's predictions for ``texts``, featurized a chunk at a time."""
        texts = check_texts(texts)
        classes = tuple(str(c) for c in self.model.classes_)
        parts: list[np.ndarray] = []
        predicted: list[str | list[str]] = []
        for start in range(0, len(texts), PREDICT_CHUNK_TEXTS):
            chunk = texts[start : start + PREDICT_CHUNK_TEXTS]
            proba = predict_proba(self.model, self.featurizer.transform(chunk))
            predicted.extend(self._decide(proba, classes))
            parts.append(proba[:, self.columns])
        probabilities = (
            np.vstack(parts) if parts else np.zeros((0, len(self.labels)), dtype=np.float64)
        )
        return Predictions(self.round_id, self.labels, probabilities, predicted)

    def _decide(self, proba: np.ndarray, classes: tuple[str, ...]) -> list[str | list[str]]:
        """The round's own rule on the model's columns (the order its stored codes index)."""
        if not self.multilabel:
            return [classes[k] for k in proba.argmax(axis=1).tolist()]
        names, codes, _confidence = predicted_sets(proba, classes)
        sets = [labelsets.decode_ordered(name) for name in names]
        return [list(sets[k]) for k in codes.tolist()]


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, refused (naming the first bad position) unless every one is text."""
    if isinstance(texts, str):
        raise BadInput("texts: expected a list of texts, found one text (wrap it in a list)")
    found = list(texts)
    for position, text in enumerate(found):
        if not isinstance(text, str):
            raise BadInput(
                f"texts[{position}]: expected a text (string), found {type(text).__name__}"
            )
    return found


def pick_round(ws: Context, round_id: int | None) -> Round:
    """Round ``round_id``, or the promoted round; refused when it cannot have a model."""
    with db.read_session(ws.engine) as session:
        if round_id is None:
            found = session.exec(
                select(Round).where(col(Round.promoted).is_(True)).order_by(col(Round.id).desc())
            ).first()
            if found is None:
                raise NoModel(
                    "no round is promoted yet, so there is no model to predict with: run a round "
                    "first (labelloop retrain), or name one with --round"
                )
        else:
            found = session.get(Round, round_id)
            if found is None:
                ids = session.exec(select(Round.id).order_by(col(Round.id))).all()
                known = (
                    f"rounds are {ids[0]}-{ids[-1]}"
                    if len(ids) > 1
                    else f"the only round is {ids[0]}"
                    if ids
                    else "no round has run yet"
                )
                raise RoundNotFound(f"option '--round': no round {round_id}; {known}")
    if found.status != "succeeded":
        detail = f": {found.error}" if found.error else ""
        raise NoModel(
            f"round {found.id} is {found.status}{detail}; only a succeeded round has a model"
        )
    return found


def model_file(ws: Context, round_: Round) -> Path:
    """The round's fitted classifier; refused for a round that trained none (a cold start)."""
    path = ws.root / (round_.model_path or "") / MODEL_FILE
    if not round_.model_path or not path.is_file():
        raise NoModel(
            f"round {round_.id} has no model: it was a cold start (fewer than two classes "
            "labelled), so it ranked the queue without one"
        )
    return path


def featurizer_name(metrics: dict[str, Any]) -> str:
    """The registry name of the featurizer a round trained on (``tfidf``, ``hybrid``, ...)."""
    chosen = (metrics.get("representation") or {}).get("featurizer")
    if chosen:
        return str(chosen)
    return str(metrics.get("featurizer", "")).split("-")[0] or "unknown"


def load_round(ws: Context, round_id: int | None = None) -> RoundModel:
    """Round ``round_id``'s (default: the promoted round's) model and featurizer, loaded once
    per process while their files are unchanged."""
    round_ = pick_round(ws, round_id)
    assert round_.id is not None
    path = model_file(ws, round_)
    features = ws.models_dir / "features"
    stamps = tuple(
        p.stat().st_mtime_ns if p.exists() else 0
        for p in (path, *(features / f"featurizer-{n}.joblib" for n in ("tfidf", "hashing")))
    )
    key = (str(ws.root.resolve()), round_.id, stamps)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        loaded = _load(ws, round_, path)
        if len(_CACHE) >= CACHED_ROUNDS:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = loaded
        return loaded


def forget_loaded() -> None:
    """Drop every loaded round (a benchmark's cold start; files changed under a process)."""
    with _LOCK:
        _CACHE.clear()


def _load(ws: Context, round_: Round, path: Path) -> RoundModel:
    import joblib  # ~0.1 s: only loading a round's model needs it

    assert round_.id is not None
    metrics = json.loads(round_.metrics or "{}")
    name = featurizer_name(metrics)
    featurizer = round_featurizer(ws, metrics)
    if featurizer is None:
        raise NoModel(
            f"round {round_.id}'s featurizer ({name}) was refitted or deleted since it ran "
            "(models/features/), so new texts cannot be featurized as its model expects; "
            "predict with a newer round or retrain"
        )
    model = joblib.load(path)
    classes = [str(c) for c in model.classes_]
    order = [label for label in ws.labels if label in classes]
    order += [label for label in classes if label not in order]
    return RoundModel(
        round_id=round_.id,
        model=model,
        featurizer=featurizer,
        featurizer_name=name,
        labels=tuple(order),
        columns=np.array([classes.index(label) for label in order], dtype=np.int64),
        multilabel=bool(getattr(model, "multilabel_", False)),
        metrics=metrics,
    )


def predict_texts(ws: Context, texts: Sequence[str], *, round_id: int | None = None) -> Predictions:
    """The promoted round's (or round ``round_id``'s) predictions for ``texts``."""
    return load_round(ws, round_id).predict(texts)
