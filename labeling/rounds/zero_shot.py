"""The zero-shot prior: each item scored against each label's description, before any label.

Pure numbers, no store: :func:`cosine_scores` compares L2-normalised item and description
embeddings; :func:`fit_calibration` turns the cosine vectors into probabilities by a softmax
whose temperature and per-label biases are fitted on gold (maximum likelihood), else
:data:`DEFAULT_TEMPERATURE`; :func:`prior_batch` ranks a pool before the first model (each
label's surest items in turn, interleaved with typical ones); :func:`fade_weight` and
:func:`blend` mix the prior into a model's probabilities as labels arrive. The round's use of
it is :mod:`labeling.rounds.zero_shot_round`; the simulator's, :mod:`labeling.rounds.simulate`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeling.annotation.guidelines import LabelGuide
from strategies.base import batch_first, result
from strategies.diversity import cold_start

#: Softmax temperature without gold: MiniLM cosines of a text with the right and a wrong
#: description differ by about 0.05-0.15, so 0.05 turns a gap of 0.1 into odds of e^2 (7:1).
DEFAULT_TEMPERATURE = 0.05
#: Gold items every label needs before the temperature and biases are fitted on gold.
MIN_GOLD_PER_LABEL = 3
#: The ``zero_shot`` LF votes the prior's label where its probability reaches this.
VOTE_THRESHOLD = 0.6
#: Share of a cold batch taken as labels' surest items (the rest: typical items of the pool).
SURE_SHARE = 0.5
#: Candidates per pick among a label's surest items (the picks are spread over them).
SURE_CANDIDATES = 10
# L2 penalties on the per-label biases and on log(1 / temperature) away from the default's:
# with few gold items, or gold that the cosines separate perfectly, they stay near the default.
_BIAS_PENALTY = 1.0
_SCALE_PENALTY = 1.0
# The fitted temperature stays within [0.01, 1].
_LOG_SCALE_BOUNDS = (0.0, math.log(100.0))
# Rows per matrix product when scoring a big pool (bounds the temporaries).
_CHUNK_ROWS = 100_000


def description_texts(labels: Sequence[str], guides: Mapping[str, LabelGuide] | None) -> list[str]:
    """Each label's description as the prior embeds it: its definition and include notes
    where written (``"NAME: definition include"``), else the label's name alone."""
    texts = []
    for label in labels:
        guide = (guides or {}).get(label)
        parts = [guide.definition.strip(), guide.include.strip()] if guide else []
        written = " ".join(part for part in parts if part)
        texts.append(f"{label}: {written}" if written else label)
    return texts


def all_defined(labels: Sequence[str], guides: Mapping[str, LabelGuide] | None) -> bool:
    """Whether every label has a definition written (what ``zero_shot = "auto"`` asks)."""
    return bool(guides) and all(
        guides is not None and label in guides and guides[label].definition.strip()
        for label in labels
    )


def cosine_scores(items: Any, descriptions: NDArray[np.float32]) -> NDArray[np.float32]:
    """(items, labels) cosine similarities of L2-normalised rows (``items`` may be a
    cached-rows view: it is read ``_CHUNK_ROWS`` at a time)."""
    n_rows = int(items.shape[0])
    out = np.empty((n_rows, descriptions.shape[0]), dtype=np.float32)
    for start in range(0, n_rows, _CHUNK_ROWS):
        block = np.asarray(items[start : start + _CHUNK_ROWS], dtype=np.float32)
        out[start : start + len(block)] = block @ descriptions.T
    return out


@dataclass(frozen=True)
class Calibration:
    """How cosines become probabilities: ``softmax(cosine / temperature + bias)``.

    ``gold`` is how many gold items fitted it (0: the default temperature, no biases)."""

    temperature: float
    bias: NDArray[np.float64]
    gold: int = 0

    def as_dict(self, labels: Sequence[str]) -> dict[str, Any]:
        return {
            "temperature": round(self.temperature, 5),
            "bias": {label: round(float(b), 4) for label, b in zip(labels, self.bias, strict=True)},
            "fitted_on_gold": self.gold,
        }


def default_calibration(n_labels: int) -> Calibration:
    return Calibration(DEFAULT_TEMPERATURE, np.zeros(n_labels))


def softmax_rows(logits: NDArray[Any]) -> NDArray[np.float64]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return np.asarray(weights / weights.sum(axis=1, keepdims=True), dtype=np.float64)


def probabilities(cosines: NDArray[Any], calibration: Calibration) -> NDArray[np.float64]:
    """The prior: one row per item, summing to 1 over the labels."""
    logits = np.asarray(cosines, dtype=np.float64) / calibration.temperature + calibration.bias
    return softmax_rows(logits)


def enough_gold(y: NDArray[np.intp], n_labels: int) -> bool:
    """Whether every label has at least :data:`MIN_GOLD_PER_LABEL` gold items."""
    counts = np.bincount(np.asarray(y, dtype=np.intp), minlength=n_labels)
    return bool(len(y)) and int(counts.min()) >= MIN_GOLD_PER_LABEL


def fit_calibration(cosines: NDArray[Any], y: NDArray[np.intp]) -> Calibration:
    """Temperature and per-label biases by maximum likelihood on gold (``y``: label index of
    each row of ``cosines``), the biases held near 0 by an L2 penalty; with too little gold
    (:func:`enough_gold`), the default. K + 1 numbers only, each held near the default by an
    L2 penalty (a full logistic regression on the cosine vector would overfit a few gold
    items per label), and the temperature within [0.01, 1]: gold the cosines separate
    perfectly would otherwise drive it to 0."""
    from scipy.optimize import minimize  # scipy.optimize: ~0.3 s, only with gold

    n_labels = cosines.shape[1]
    y = np.asarray(y, dtype=np.intp)
    if not enough_gold(y, n_labels):
        return default_calibration(n_labels)
    x = np.asarray(cosines, dtype=np.float64)
    onehot = np.eye(n_labels)[y]
    default = math.log(1 / DEFAULT_TEMPERATURE)

    def loss(params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        scale, bias = math.exp(params[0]), params[1:]
        proba = softmax_rows(x * scale + bias)
        nll = -float(np.log(proba[np.arange(len(y)), y] + 1e-12).sum())
        diff = proba - onehot
        away = params[0] - default
        grad_scale = float((diff * x).sum()) * scale + 2 * _SCALE_PENALTY * away
        grad_bias = diff.sum(axis=0) + 2 * _BIAS_PENALTY * bias
        penalty = _BIAS_PENALTY * float(bias @ bias) + _SCALE_PENALTY * away**2
        return nll + penalty, np.concatenate([[grad_scale], grad_bias])

    start = np.concatenate([[default], np.zeros(n_labels)])
    bounds = [_LOG_SCALE_BOUNDS] + [(-5.0, 5.0)] * n_labels
    found = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    params = found.x if found.success else start
    return Calibration(math.exp(-params[0]), np.asarray(params[1:]), gold=len(y))


def prior_from_votes(
    codes: NDArray[np.intp], n_labels: int, accuracy: float | None
) -> NDArray[np.float64]:
    """A prior from one LF's votes (label index or -1): ``accuracy`` on the voted label (its
    gold accuracy, else 0.8), the rest shared; uniform where it abstained."""
    sure = 0.8 if accuracy is None else min(max(accuracy, 1 / n_labels), 0.99)
    proba = np.full((len(codes), n_labels), 1 / n_labels)
    voted = np.flatnonzero(codes >= 0)
    proba[voted] = (1 - sure) / max(n_labels - 1, 1)
    proba[voted, codes[voted]] = sure
    return proba


def vote_codes(prior: NDArray[np.float64], threshold: float = VOTE_THRESHOLD) -> NDArray[np.intp]:
    """The ``zero_shot`` LF's votes: the prior's label where it is at least ``threshold``
    sure, else -1 (abstain)."""
    best = prior.argmax(axis=1)
    return np.where(prior.max(axis=1) >= threshold, best, -1).astype(np.intp)


def fade_weight(n_human: int, fade: float) -> float:
    """The prior's weight in the blend: ``fade / (fade + n_human)`` (1 before any label,
    one half at ``fade`` labels; 0 with ``fade = 0``)."""
    if fade <= 0:
        return 0.0
    return fade / (fade + max(n_human, 0))


def blend(
    prior: NDArray[np.float64], model_proba: NDArray[Any], weight: float
) -> NDArray[np.float64]:
    """``weight * prior + (1 - weight) * model`` (columns in the same label order)."""
    return weight * prior + (1 - weight) * np.asarray(model_proba, dtype=np.float64)


def align_columns(
    prior: NDArray[np.float64], labels: Sequence[Any], classes: Sequence[Any]
) -> NDArray[np.float64]:
    """The prior's columns for a model's ``classes`` (a subset of ``labels``), renormalised:
    a model that has seen some labels only ranks among those."""
    index = {label: k for k, label in enumerate(labels)}
    picked = prior[:, [index[c] for c in classes]]
    total = picked.sum(axis=1, keepdims=True)
    return np.asarray(np.where(total > 0, picked / np.maximum(total, 1e-12), 1 / len(classes)))


def prior_batch(
    prior: NDArray[np.float64],
    features: Any,
    n: int,
    *,
    rng: np.random.Generator,
    sure_share: float | None = None,
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Before the first model: rows to label first, and a score for every row.

    Half the batch (``sure_share``) goes round-robin over the labels, each taking an item the
    prior gives to it with the most confidence, spread over its :data:`SURE_CANDIDATES`
    surest (so a rare label gets candidates in the first batch, and not ten copies of one
    text); the other half is ``cold_start``'s typical items of the pool's clusters (so the
    batch also covers what the descriptions miss). The batch comes first; the other rows
    follow by the prior's confidence.
    """
    n_rows, n_labels = prior.shape
    n = min(n, n_rows)
    share = SURE_SHARE if sure_share is None else sure_share
    n_sure = min(n, math.ceil(n * share))
    chosen: list[int] = []
    taken = np.zeros(n_rows, dtype=bool)
    best = prior.argmax(axis=1)
    queues = []
    for k in range(n_labels):
        own = np.flatnonzero(best == k)
        if not len(own):
            own = np.arange(n_rows)
        order = own[np.argsort(-prior[own, k], kind="stable")]
        queues.append(order[: SURE_CANDIDATES * max(1, math.ceil(n_sure / n_labels))])
    turn = 0
    while len(chosen) < n_sure and any(len(q) for q in queues):
        k = turn % n_labels
        turn += 1
        candidates = queues[k][~taken[queues[k]]]
        if not len(candidates):
            continue
        pick = int(rng.choice(candidates[:SURE_CANDIDATES]))
        chosen.append(pick)
        taken[pick] = True
    rest = n - len(chosen)
    if rest > 0:
        _, typical = cold_start(None, features, min(n_rows, n), rng=rng)
        typical[taken] = -np.inf
        for row in np.argsort(-typical, kind="stable")[:rest]:
            chosen.append(int(row))
            taken[row] = True
    picked = np.asarray(chosen, dtype=np.intp)
    return result(picked, batch_first(prior.max(axis=1), picked))
