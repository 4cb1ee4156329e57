"""Drift of new imports: are the new items like the ones the model learned from?

Two signals, computed when a pool import lands:

- **Domain classifier AUC.** A classifier is trained to tell the new items from the reference
  (the labelled pool items, or the rest of the pool while fewer than ``MIN_REFERENCE`` are
  labelled) on hashed word and character n-grams, and scored by cross-validated ROC AUC. Near
  0.5 the two are indistinguishable; near 1.0 they are different kinds of text.
- **Predicted class mix.** With a promoted model, the mix of its predictions on the new items
  is compared with the label mix of the labelled items (total variation distance, 0 to 1).

At ``drift_threshold`` or above, the import is flagged: the warning shows on the Metrics and
Data pages and in ``status --json``. With ``drift_action = "retrain"`` a round is queued and
the new items are served first until ``drift_priority`` of them are labelled.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from sqlmodel import col, select

from labeling.rounds.jobs import queue_round
from labeling.rounds.predict import NoModel, predict_texts
from labeling.store import db, labelsets, outbox
from labeling.store.answers import human_labels
from labeling.store.models import ImportBatch, Item

if TYPE_CHECKING:
    from labeling.context import Context

MAX_PER_SIDE = 3000
MIN_SIDE = 20
MIN_REFERENCE = 50


def domain_auc(new: list[str], reference: list[str], *, seed: int = 0) -> float | None:
    """Cross-validated ROC AUC of a classifier telling ``new`` from ``reference`` texts."""
    import scipy.sparse as sp  # scipy: loaded with scikit-learn, only for this check
    from sklearn.feature_extraction.text import (  # scikit-learn: ~1 s
        HashingVectorizer,
        TfidfTransformer,
    )
    from sklearn.linear_model import LogisticRegression  # scikit-learn: ~1 s
    from sklearn.metrics import roc_auc_score  # scikit-learn: ~1 s
    from sklearn.model_selection import StratifiedKFold, cross_val_predict  # scikit-learn: ~1 s

    if len(new) < MIN_SIDE or len(reference) < MIN_SIDE:
        return None
    rng = np.random.default_rng(seed)
    new = [new[i] for i in rng.permutation(len(new))[:MAX_PER_SIDE]]
    reference = [reference[i] for i in rng.permutation(len(reference))[:MAX_PER_SIDE]]
    texts = new + reference
    y = np.array([1] * len(new) + [0] * len(reference))
    words = HashingVectorizer(
        ngram_range=(1, 2), n_features=2**17, alternate_sign=False, norm=None, lowercase=True
    )
    chars = HashingVectorizer(
        analyzer="char_wb", ngram_range=(3, 4), n_features=2**17, alternate_sign=False, norm=None
    )
    X = sp.hstack([words.transform(texts), chars.transform(texts)]).tocsr()
    X = TfidfTransformer(sublinear_tf=True).fit_transform(X)
    folds = StratifiedKFold(3, shuffle=True, random_state=seed)
    model = LogisticRegression(C=1.0, solver="liblinear", class_weight="balanced")
    proba = cross_val_predict(model, X, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, proba))


def class_mix(labels: list[str] | list[list[str]], order: tuple[str, ...]) -> dict[str, float]:
    """Each label's share of the labels given (a label set gives each of its labels: in a
    multi-label workspace the mix is over all the labels given, so it still sums to 1)."""
    counts: Counter[str] = Counter()
    for label in labels:
        counts.update([label] if isinstance(label, str) else label)
    total = sum(counts.values()) or 1
    return {label: round(counts[label] / total, 6) for label in order}


def _predict(ws: Context, texts: list[str]) -> list[str] | list[list[str]] | None:
    """The promoted round's predictions for ``texts`` (label sets in a multi-label workspace),
    or None without a promoted model to predict with."""
    try:
        found = predict_texts(ws, texts)
    except NoModel:
        return None
    return found.predicted  # type: ignore[return-value]


def check_batch(ws: Context, batch_id: int) -> dict[str, Any]:
    """Compare a pool import with the labelled set; store and return the result."""
    config = ws.config
    imported, first_import = _import_size(ws, batch_id)
    if first_import:  # the first pool import: nothing to compare with, nothing to read
        first: dict[str, Any] = {
            "items": imported,
            "sampled_items": 0,
            "reference": "pool",
            "reference_items": 0,
            "threshold": config.drift_threshold,
            "auc": None,
            "drifted": False,
            "action": None,
            "note": "the first pool import: nothing to compare it with",
        }
        _store(ws, batch_id, first, priority=0)
        return first
    samples = _read_samples(ws, batch_id)
    result: dict[str, Any] = {
        # The import's size; the check reads a seeded sample of at most MAX_PER_SIDE a side.
        "items": max(imported, len(samples.new)),
        "sampled_items": len(samples.new),
        "reference": samples.reference_kind,
        "reference_items": len(samples.reference),
        "threshold": config.drift_threshold,
        "auc": None,
        "drifted": False,
    }
    try:
        _compare(ws, samples, result, seed=batch_id)
    except Exception as exc:  # the import has landed: a failed check must not undo it
        result["error"] = repr(exc)
    result["drifted"] = result["auc"] is not None and result["auc"] >= config.drift_threshold
    result["action"] = None
    if result["drifted"]:
        result["action"] = config.drift_action
        result["message"] = _drift_message(result)
    priority = 0
    if result["drifted"] and config.drift_action == "retrain":
        round_ = queue_round(ws, trigger="drift")
        result["round"] = round_.id
        priority = config.drift_priority
    _store(ws, batch_id, result, priority=priority)
    return result


def _import_size(ws: Context, batch_id: int) -> tuple[int, bool]:
    """How many items the import brought, and whether it is the store's first pool import
    (no pool import before it: a push checked after a later push landed is still the first)."""
    with db.read_session(ws.engine) as session:
        batch = session.get(ImportBatch, batch_id)
        imported = batch.imported if batch is not None else 0
        earlier = session.exec(
            select(ImportBatch.id).where(
                col(ImportBatch.id) < batch_id,
                ImportBatch.split == "pool",
                col(ImportBatch.imported) > 0,
            )
        ).first()
    return imported, earlier is None


class _Samples(NamedTuple):
    """What the check compares: seeded samples of the new items and of the reference."""

    new: list[str]
    reference_kind: str  # "labelled", or "pool" while too few items are labelled
    reference: list[str]
    people: dict[int, str]  # the sampled labelled items' human labels


def _read_samples(ws: Context, batch_id: int) -> _Samples:
    """Up to MAX_PER_SIDE new texts and reference texts, in the seeded rank order."""
    with db.read_session(ws.engine) as session:
        new_rows = session.exec(
            select(Item.id, Item.text)
            .where(Item.batch_id == batch_id, Item.split == "pool")
            .order_by(col(Item.rank))
            .limit(MAX_PER_SIDE)
        ).all()
        others = (Item.split == "pool", col(Item.batch_id) != batch_id)
        # A seeded sample of labelled items from earlier imports (the rank order is random),
        # read without touching the rest: a million-item store answers this in milliseconds.
        labelled_rows = session.exec(
            select(Item.id, Item.text)
            .where(*others, col(Item.n_labels) > 0)
            .order_by(col(Item.rank))
            .limit(MAX_PER_SIDE)
        ).all()
        reference_kind = "labelled"
        reference_rows = labelled_rows
        if len(labelled_rows) < MIN_REFERENCE:
            reference_kind = "pool"
            reference_rows = session.exec(
                select(Item.id, Item.text)
                .where(*others)
                .order_by(col(Item.rank))
                .limit(MAX_PER_SIDE)
            ).all()
        reference = [text for _, text in reference_rows]
        people = (
            human_labels(session, ws.labels, item_ids=[int(i) for i, _ in labelled_rows if i])
            if labelled_rows
            else {}
        )
    new_texts = [text for _, text in new_rows]
    return _Samples(new_texts, reference_kind, reference, people)


def _compare(ws: Context, samples: _Samples, result: dict[str, Any], *, seed: int) -> None:
    """Fill ``result`` with the domain AUC and, with a promoted model, the class mixes."""
    auc = domain_auc(samples.new, samples.reference, seed=seed)
    result["auc"] = None if auc is None else round(auc, 6)
    if auc is None:
        result["note"] = f"too few items to compare (at least {MIN_SIDE} on each side)"
    predicted = _predict(ws, samples.new) if samples.new else None
    if predicted is not None:
        result["predicted_mix"] = class_mix(predicted, ws.labels)
        if samples.people:
            given = list(samples.people.values())
            labelled = [labelsets.decode_ordered(v) for v in given] if ws.multilabel else given
            labelled_mix = class_mix(labelled, ws.labels)
            result["labelled_mix"] = labelled_mix
            result["mix_distance"] = round(
                0.5 * sum(abs(result["predicted_mix"][k] - labelled_mix[k]) for k in ws.labels),
                6,
            )


def _drift_message(result: dict[str, Any]) -> str:
    """The warning for a drifted import: how many items came in, and how many of them (and of
    the reference) the classifier compared when the check took a sample."""
    items, sampled = result["items"], result["sampled_items"]
    reference, kind = result["reference_items"], result["reference"]
    if sampled < items:
        compared = (
            f"a sample of {sampled:,} of them against {reference:,} {kind} items, told apart "
            f"with AUC {result['auc']:.2f}"
        )
    else:
        compared = (
            f"compared with {reference:,} {kind} items, told apart with AUC {result['auc']:.2f}"
        )
    return (
        f"The {items:,} new {'item differs' if items == 1 else 'items differ'} from the {kind} "
        f"items ({compared}; threshold {result['threshold']}): the model may do worse on them."
    )


def _store(ws: Context, batch_id: int, result: dict[str, Any], *, priority: int) -> None:
    """Keep the result on the import batch; a drifted import also tells the webhooks
    (``drift.flagged``, in the same transaction)."""
    with db.write_session(ws.engine) as session:
        batch = session.get(ImportBatch, batch_id)
        if batch is not None:
            batch.drift = json.dumps(result)
            batch.priority_left = priority
            session.add(batch)
            if result["drifted"]:
                data = {"batch": batch_id, "source": batch.source_name, **result}
                outbox.emit(session, ws.config.webhooks, "drift.flagged", data,
                            workspace=ws.config.name)  # fmt: skip
