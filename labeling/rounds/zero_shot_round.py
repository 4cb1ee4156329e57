"""The zero-shot start in a round: the prior from the labels' descriptions, its LF, its blend.

When ``zero_shot`` is on (``"auto"``: every label has a definition in the current guidelines),
a round scores every item against each label's description (:mod:`labeling.rounds.zero_shot`),
from the first source there is: the sentence embeddings (the round's own block, or the feature
cache's when few rows are missing), else the kept votes of the LLM LF (``llm``; no call is made
here), else none (today's diversity start). Before two classes are labelled the prior ranks the
queue (:func:`labeling.rounds.zero_shot.prior_batch`); with a model the queue's scores read
``w * prior + (1 - w) * model``, ``w = zero_shot_fade / (zero_shot_fade + human labels)``.
The embedding prior is also stored as the votes of the LF ``zero_shot`` (kind ``zero_shot``),
so ``lf analyze`` measures it on gold and the label model can weigh it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete
from sqlmodel import Session, col, select

from labeling.annotation import guidelines
from labeling.context import Context
from labeling.errors import BadInput
from labeling.rounds.embeddings import embed, embeddings_installed
from labeling.rounds.feature_cache import FeatureCache
from labeling.rounds.featurizers import digest
from labeling.rounds.jobs import StageCallback
from labeling.rounds.pool import (
    EMBEDDINGS,
    INLINE_EMBED_ROWS,
    FeatureBlocks,
    PoolData,
    fitted_featurizer,
    texts_of,
)
from labeling.rounds.scores import SQLITE_WRITE_CHUNK
from labeling.rounds.zero_shot import (
    Calibration,
    align_columns,
    all_defined,
    blend,
    cosine_scores,
    description_texts,
    fade_weight,
    fit_calibration,
    prior_batch,
    prior_from_votes,
    probabilities,
    vote_codes,
)
from labeling.store import db
from labeling.store.bulk import bulk_insert
from labeling.store.models import LabelingFunction, LFVote
from labeling.weak.llm import LF_NAME as LLM_LF
from labeling.weak.votes import CHUNK, mark_lfs_changed

LF_NAME = "zero_shot"
LF_KIND = "zero_shot"
# Above this many open items, the prior's cold ranking reads feature rows from the cache.
IN_MEMORY_ROWS = 100_000


@dataclass(frozen=True)
class RoundPrior:
    """A round's prior: P(label) per item (rows of :class:`PoolData`, columns in label
    order), where it came from, and how it was calibrated (None: from the LLM's votes)."""

    proba: NDArray[np.float64]
    source: str  # "embeddings" or "llm"
    calibration: Calibration | None


def zero_shot_on(ws: Context, guides: guidelines.Guidelines) -> bool:
    """Whether the workspace's rounds use the prior (``zero_shot`` and its ``auto`` rule)."""
    mode = ws.config.zero_shot
    if mode == "off" or ws.multilabel:
        return False
    return mode == "on" or all_defined(ws.labels, guides.labels)


def round_prior(
    ws: Context, data: PoolData, blocks: FeatureBlocks, stage: StageCallback
) -> tuple[RoundPrior | None, dict[str, Any]]:
    """The round's prior and what the round's metrics say of it (``{}``: zero-shot is off).

    Also stores the ``zero_shot`` LF's votes when the prior comes from the embeddings."""
    with db.read_session(ws.engine) as session:
        guides = guidelines.current(session, ws.labels)
    if not zero_shot_on(ws, guides):
        return None, {}
    stage("zero-shot prior")
    gold_rows, gold_y = _gold(ws, data)
    if embeddings_installed():
        rows, embedding_version, note = _embedding_rows(ws, data, blocks, stage)
        if rows is None:
            return None, {"source": "none", "note": note}
        texts = description_texts(ws.labels, guides.labels)
        cosines = cosine_scores(rows, embed(texts))
        calibration = fit_calibration(cosines[gold_rows], gold_y)
        proba = probabilities(cosines, calibration)
        version = digest(texts, embedding_version, calibration.as_dict(ws.labels))[:16]
        stored = store_votes(ws, data.item_ids, vote_codes(proba), version)
        prior = RoundPrior(proba, "embeddings", calibration)
        described = sum(text != label for text, label in zip(texts, ws.labels, strict=True))
        return prior, {
            "source": "embeddings",
            "descriptions": described,
            "calibration": calibration.as_dict(ws.labels),
            "lf_votes": stored,
        }
    codes = llm_codes(ws, data)
    if codes is None:
        return None, {
            "source": "none",
            "note": "no embedding package and no LLM LF votes: the diversity start",
        }
    gold_votes = codes[gold_rows]
    voted = gold_votes >= 0
    accuracy = float((gold_votes[voted] == gold_y[voted]).mean()) if voted.any() else None
    proba = prior_from_votes(codes, len(ws.labels), accuracy)
    return RoundPrior(proba, "llm", None), {"source": "llm", "llm_gold_accuracy": accuracy}


def _gold(ws: Context, data: PoolData) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Rows of the gold items with a workspace label, and that label's index."""
    index = {label: k for k, label in enumerate(ws.labels)}
    rows = [r for r in np.flatnonzero(data.split == "gold") if (data.gold[r] or "") in index]
    y = [index[data.gold[r] or ""] for r in rows]
    return np.asarray(rows, dtype=np.intp), np.asarray(y, dtype=np.intp)


def _embedding_rows(
    ws: Context, data: PoolData, blocks: FeatureBlocks, stage: StageCallback
) -> tuple[Any, str, str]:
    """Every item's embedding: the round's block, or the feature cache's when at most
    :data:`INLINE_EMBED_ROWS` are missing (computed now); with the embeddings' version.
    Else None and why."""
    if EMBEDDINGS in blocks.rows:
        return blocks.rows[EMBEDDINGS], blocks.version(EMBEDDINGS), ""
    featurizer = fitted_featurizer(ws, data, stage, EMBEDDINGS)
    cache = FeatureCache(ws.models_dir / "features" / "cache")
    missing = cache.missing(featurizer, data.keys)
    if missing > INLINE_EMBED_ROWS:
        return (
            None,
            "",
            (
                f"the sentence embeddings of {missing:,} items are not computed yet (`labelloop "
                "features build` computes them), so this round has no zero-shot prior"
            ),
        )
    rows = cache.rows(
        featurizer, data.keys, lambda positions: texts_of(ws, data.item_ids[positions])
    )
    return rows, str(featurizer.version), ""


def llm_codes(ws: Context, data: PoolData) -> NDArray[np.intp] | None:
    """The LLM LF's current votes as label indices per item row (-1: none); None when it
    has no votes."""
    index = {label: k for k, label in enumerate(ws.labels)}
    with db.read_session(ws.engine) as session:
        row = session.exec(select(LabelingFunction).where(LabelingFunction.name == LLM_LF)).first()
        if row is None:
            return None
        found = session.exec(
            select(LFVote.item_id, LFVote.label).where(
                LFVote.lf_id == row.id, LFVote.lf_version == row.version
            )
        ).all()
    if not found:
        return None
    position = {int(item_id): r for r, item_id in enumerate(data.item_ids)}
    codes = np.full(len(data.item_ids), -1, dtype=np.intp)
    for item_id, label in found:
        r = position.get(int(item_id))
        if r is not None and label in index:
            codes[r] = index[label]
    return codes


def store_votes(
    ws: Context, item_ids: NDArray[np.int64], codes: NDArray[np.intp], version: str
) -> int:
    """The ``zero_shot`` LF's row and its votes at ``version`` (every item where the prior is
    sure enough); an unchanged version adds only the votes of items without one (new items,
    or those a killed round did not reach). Returns how many votes were written.

    Written in short transactions on SQLite (one writer: a million votes at once would hold
    annotators' claims for many seconds), as the queue's scores are."""
    with db.write_session(ws.engine) as session:
        row = _lf_row(session, version)
        assert row.id is not None
        lf_id = row.id
        have = set(session.exec(select(LFVote.item_id).where(LFVote.lf_id == lf_id)).all())
    records = [
        {"lf_id": lf_id, "item_id": int(item_id), "lf_version": version, "label": ws.labels[code]}
        for item_id, code in zip(item_ids.tolist(), codes.tolist(), strict=True)
        if code >= 0 and int(item_id) not in have
    ]
    chunk = SQLITE_WRITE_CHUNK if db.is_sqlite(ws.engine) else CHUNK
    for start in range(0, len(records), chunk):
        with db.write_session(ws.engine) as session:
            bulk_insert(session, LFVote.__table__, records[start : start + chunk])  # type: ignore[attr-defined]
    if records:
        with db.write_session(ws.engine) as session:
            mark_lfs_changed(session)
    return len(records)


def _lf_row(session: Session, version: str) -> LabelingFunction:
    """The LF ``zero_shot`` at ``version`` (made on first use; old votes dropped on a change)."""
    row = session.exec(select(LabelingFunction).where(LabelingFunction.name == LF_NAME)).first()
    if row is None:
        row = LabelingFunction(name=LF_NAME, kind=LF_KIND, spec="{}", version=version)
    elif row.kind != LF_KIND:
        raise BadInput(
            f"an LF named {LF_NAME!r} exists already ({row.kind}); rename it to use the "
            "zero-shot start"
        )
    if row.version != version:
        session.execute(delete(LFVote).where(col(LFVote.lf_id) == row.id))
        mark_lfs_changed(session)
    row.version = version
    row.applied_version = version
    session.add(row)
    session.flush()
    return row


def rank_with_prior(
    prior: RoundPrior,
    features: Any,
    open_rows: NDArray[np.intp],
    n: int,
    round_id: int,
) -> NDArray[np.float64]:
    """Before the first model: the open rows' scores from the prior's cold ranking."""
    rows = features[open_rows] if len(open_rows) <= IN_MEMORY_ROWS else features.subset(open_rows)
    _chosen, scores = prior_batch(
        prior.proba[open_rows], rows, min(n, len(open_rows)), rng=np.random.default_rng(round_id)
    )
    return scores


def blended(
    prior: RoundPrior,
    proba_open: NDArray[Any],
    open_rows: NDArray[np.intp],
    labels: tuple[str, ...],
    classes: list[str],
    n_human: int,
    fade: float,
) -> NDArray[np.float64]:
    """The open rows' probabilities the queue's strategy reads, blended with the prior
    (columns in the model's ``classes``) at weight :func:`fade_weight`."""
    aligned = align_columns(prior.proba[open_rows], labels, classes)
    return blend(aligned, proba_open, fade_weight(n_human, fade))
