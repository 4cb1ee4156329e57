"""Strategies that spread a batch over the pool: cold start, ranked batch, diverse uncertainty.

Uncertainty alone fills a batch with near-copies of one confusing item; labelling ten of them
teaches little more than labelling one. These strategies trade some uncertainty for coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from strategies.base import (
    Indices,
    ProbabilityView,
    Scores,
    StrategyError,
    as_matrix,
    as_rng,
    batch_first,
    cap_rows,
    check_request,
    probabilities,
    register,
    result,
    seed_from,
    top_n,
)
from strategies.uncertainty import uncertainty_scores

# k-means is fitted on at most this many rows, then every row is assigned: the centroids of a
# 20k sample describe a 1M pool well, and fitting on all of it would dominate the round.
KMEANS_FIT_ROWS = 20_000
MINIBATCH_ABOVE_ROWS = 5_000
# Ranked batch compares each candidate with every labelled row, once per pick: cap both sides.
RANKED_BATCH_MIN_CANDIDATES = 1_000
RANKED_BATCH_MAX_LABELLED = 2_000
# Diverse uncertainty clusters the ``DIVERSE_BETA * n`` most uncertain rows (Zhdanov, 2019).
DIVERSE_BETA = 10
# While fewer than this many items are labelled, the model's uncertainty is unreliable: the
# candidates widen to ``DIVERSE_BETA * n * ceil(DIVERSE_WIDEN_BELOW / labelled)`` rows, so an
# early batch is as much representative of the pool as uncertain (see diverse_uncertainty).
DIVERSE_WIDEN_BELOW = 200
ASSIGN_CHUNK_ROWS = 50_000
# Features wider than this are randomly projected to PROJECT_TO columns before k-means.
PROJECT_ABOVE_COLUMNS = 4_096
PROJECT_TO = 256
# k-means runs in a 50-d SVD projection of sparse n-gram features: in 10^5+ raw dimensions
# nearly all texts are equally far apart and clusters come out as one blob plus outliers.
SVD_COMPONENTS = 50


def reduce_for_clustering(features: Any, rng: np.random.Generator) -> Any:
    """Rows projected on the top SVD directions of (a sample of) the pool, unit length.

    High-dimensional features only; a matrix with few columns is returned as it is.
    """
    # scikit-learn: ~1 s to import; loaded when first used
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    n_rows, n_columns = features.shape
    if n_columns <= 2 * SVD_COMPONENTS or n_rows <= 2 * SVD_COMPONENTS:
        return as_matrix(features)
    fit_rows, _ = cap_rows(features, KMEANS_FIT_ROWS, rng)
    svd = TruncatedSVD(n_components=SVD_COMPONENTS, random_state=seed_from(rng))
    svd.fit(fit_rows.astype(np.float64))
    rows = features.tocsr() if sp.issparse(features) else features
    reduced = np.empty((n_rows, SVD_COMPONENTS), dtype=np.float64)
    for start in range(0, n_rows, ASSIGN_CHUNK_ROWS):
        part = rows[start : start + ASSIGN_CHUNK_ROWS].astype(np.float64)
        reduced[start : start + part.shape[0]] = svd.transform(part)
    return normalize(reduced)


def cluster_pool(
    features: Any,
    k: int,
    rng: np.random.Generator,
    *,
    sample_weight: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """k-means over the pool: each row's cluster and its distance to that cluster's centre."""
    # scikit-learn: ~1 s to import; loaded when first used
    from sklearn.cluster import KMeans, MiniBatchKMeans

    n_rows = features.shape[0]
    k = min(k, n_rows)
    project = _projection(features, rng)
    fit_rows, kept = cap_rows(features, KMEANS_FIT_ROWS, rng)
    fit_rows = project(fit_rows)
    weights = sample_weight if kept is None or sample_weight is None else sample_weight[kept]
    seed = seed_from(rng)
    # Full k-means is quicker and steadier on small sets; mini-batches pay off on large ones.
    kmeans = (
        KMeans(n_clusters=k, n_init=3, max_iter=100, random_state=seed)
        if fit_rows.shape[0] <= MINIBATCH_ABOVE_ROWS
        else MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=2048, random_state=seed)
    )
    # float64 in: scikit-learn computes float32 distances by upcasting dense copies of the
    # centres block by block, which took seconds per call on hashed 2^19-column features.
    kmeans.fit(fit_rows, sample_weight=weights)
    labels = np.empty(n_rows, dtype=np.intp)
    distances = np.empty(n_rows, dtype=np.float64)
    rows = features.tocsr() if sp.issparse(features) else features
    for start in range(0, n_rows, ASSIGN_CHUNK_ROWS):
        part = kmeans.transform(project(rows[start : start + ASSIGN_CHUNK_ROWS]))
        labels[start : start + len(part)] = part.argmin(axis=1)
        distances[start : start + len(part)] = part.min(axis=1)
    return labels, distances


def _projection(features: Any, rng: np.random.Generator) -> Any:
    """A function giving k-means its input: float64 rows, wide sparse ones projected.

    k-means keeps dense centres: with hashed features (2^19 columns) 50 centres are 200 MB
    and a fit took 11 s on 500 rows. A sparse random projection to :data:`PROJECT_TO` columns
    keeps distances within a small factor (Johnson-Lindenstrauss) at a fraction of the cost;
    it is applied chunk by chunk, so a big pool is never dense all at once.
    """
    if not sp.issparse(features) or features.shape[1] <= PROJECT_ABOVE_COLUMNS:
        return lambda rows: rows.astype(np.float64)
    # scikit-learn: ~1 s to import; loaded when first used
    from sklearn.random_projection import SparseRandomProjection

    projection = SparseRandomProjection(n_components=PROJECT_TO, random_state=seed_from(rng))
    projection.fit(features[:1])

    def project(rows: Any) -> NDArray[np.float64]:
        out = projection.transform(rows)
        return np.asarray(out.todense() if sp.issparse(out) else out, dtype=np.float64)

    return project


def best_per_cluster(
    labels: NDArray[np.intp], scores: NDArray[np.float64], n: int, rng: np.random.Generator
) -> Indices:
    """The best-scoring row of each cluster, best clusters first, topped up to ``n`` rows."""
    order = np.lexsort((-scores, labels))
    first = order[np.r_[True, labels[order][1:] != labels[order][:-1]]]
    chosen = first[np.argsort(-scores[first], kind="stable")][:n]
    if len(chosen) < n:
        rest = np.setdiff1d(np.arange(len(scores)), chosen)
        extra = rest[top_n(scores[rest], n - len(chosen), rng)]
        chosen = np.concatenate([chosen, extra])
    return chosen.astype(np.intp)


@dataclass(frozen=True)
class SetVotes:
    """LF votes on a multi-label pool, for ``cold_start``'s ``lf_votes``.

    ``L`` has one row per pool row and one column per LF: code ``k`` votes label ``k``
    present, ``n_labels + k`` votes it absent, ``-1`` abstains (labeling.weak's encoding).
    """

    L: Any
    n_labels: int


def lf_disagreement(lf_votes: Any, n_rows: int) -> NDArray[np.float64]:
    """Entropy of the non-abstaining LF votes per row (``-1`` = abstain); 0 below two votes.

    Multi-label votes (:class:`SetVotes`): LFs disagree about a label only when one votes it
    present and another absent (two LFs naming different labels agree: a set holds both), so
    the score is the sum over labels of the entropy of that label's present/absent votes.
    """
    if isinstance(lf_votes, SetVotes):
        return _set_disagreement(_vote_matrix(lf_votes.L, n_rows), lf_votes.n_labels)
    votes = _vote_matrix(lf_votes, n_rows)
    if votes.shape[1] == 0:
        return np.zeros(n_rows)
    n_classes = int(votes.max()) + 1 if votes.size and votes.max() >= 0 else 1
    counts = np.stack([(votes == c).sum(axis=1) for c in range(n_classes)], axis=1)
    return _entropy(counts)


def _vote_matrix(lf_votes: Any, n_rows: int) -> NDArray[Any]:
    votes = np.asarray(lf_votes)
    if votes.ndim != 2 or votes.shape[0] != n_rows:
        raise StrategyError(
            f"expected LF votes of shape ({n_rows}, LFs), one row per pool row, "
            f"found shape {votes.shape}"
        )
    return votes


def _entropy(counts: NDArray[Any]) -> NDArray[np.float64]:
    """Entropy of each row of vote ``counts`` (rows without votes: 0)."""
    total = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)
    logs = np.log(share, out=np.zeros_like(share), where=share > 0)
    return np.asarray(-(share * logs).sum(axis=1), dtype=np.float64)


def _set_disagreement(votes: NDArray[Any], n_labels: int) -> NDArray[np.float64]:
    score = np.zeros(votes.shape[0])
    for k in range(n_labels):
        present = (votes == k).sum(axis=1)
        absent = (votes == n_labels + k).sum(axis=1)
        score += _entropy(np.stack([present, absent], axis=1))
    return score


@register("cold_start")
def cold_start(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """Before the first model: one typical item from each of ``n`` k-means clusters.

    Needs no model (``model`` is ignored). Clusters are found in a 50-d SVD projection of the
    pool (see :func:`reduce_for_clustering`). Each pick is the row nearest its centre, so
    the first batch covers the pool's main kinds of text rather than its first rows. With LF
    votes (``-1`` = abstain), rows where LFs disagree come first within their cluster: those
    are the labels that settle which LFs to trust.
    """
    n_rows = check_request(features, n)
    generator = as_rng(rng)
    labels, distances = cluster_pool(reduce_for_clustering(features, generator), n, generator)
    scores = 1.0 / (1.0 + distances)
    if lf_votes is not None:
        # Disagreement dominates; typicality (< 1) only orders rows with equal disagreement.
        scores = lf_disagreement(lf_votes, n_rows) + scores
    chosen = best_per_cluster(labels, scores, n, generator)
    return result(chosen, batch_first(scores, chosen))


@register("ranked_batch")
def ranked_batch(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """modAL's ranked batch mode (Cardoso et al. 2017): uncertainty against distance.

    Each pick maximises ``alpha * distance-to-labelled-and-picked + (1 - alpha) * uncertainty``
    (modAL's ``uncertainty_batch_sampling``). To stay fast on big pools it runs over the most
    uncertain ``max(1000, 10 n)`` rows and at most 2,000 labelled rows (``labelled_features``;
    without them the batch starts from the most central candidate). Multi-label: the
    uncertainty is least confidence over label sets (``set_uncertainty``).
    """
    # modAL pulls in torch: ~3 s to import
    from modAL.batch import ranked_batch as modal_ranked_batch

    n_rows = check_request(features, n)
    generator = as_rng(rng)
    proba = probabilities(model, features, strategy="ranked_batch")
    uncertainty = uncertainty_scores(proba, features)
    n_candidates = min(n_rows, max(RANKED_BATCH_MIN_CANDIDATES, 10 * n))
    candidates = np.sort(top_n(uncertainty, n_candidates, generator))
    labelled, _ = cap_rows(labelled_features, RANKED_BATCH_MAX_LABELLED, generator)
    if labelled is not None and labelled.shape[0] == 0:
        labelled = None
    view = ProbabilityView(proba[candidates], X_training=labelled)
    # modAL's uncertainty_batch_sampling with the uncertainty handed in: its own would read
    # multi-label probabilities as classes.
    picked, _ = modal_ranked_batch(
        view,
        unlabeled=features[candidates],
        uncertainty_scores=uncertainty[candidates],
        n_instances=n,
        metric="euclidean",
        n_jobs=None,
    )
    chosen = candidates[np.asarray(picked, dtype=np.intp)]
    return result(chosen, batch_first(uncertainty, chosen))


@register("diverse_uncertainty")
def diverse_uncertainty(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """The most uncertain rows, clustered, one per cluster (Zhdanov's diverse mini-batch).

    Takes the ``10 n`` rows with the smallest margin, runs k-means with ``n`` clusters weighted
    by uncertainty, and asks for the row nearest each centre. (Unlike ``cold_start`` it
    clusters the raw features: an SVD projection measured worse here, since the candidates
    are few and already alike.) A good default for batches of
    ten or more: uncertain like ``margin``, but never ten copies of one question.

    With few labels (``labelled_features`` holds fewer than :data:`DIVERSE_WIDEN_BELOW`
    rows) the candidates widen in proportion, so the clusters cover more of the pool, and
    k-means runs in the 50-d projection cold start uses (in raw n-gram space many candidates
    cluster as one blob plus outliers): early models are unsure in the wrong places, and
    plain uncertainty fell below random on TREC with tfidf between 20 and 90 labels; with
    ``auto`` the projection lifted macro-F1 at 20 labels from 0.85 to 0.91 on YouTube and
    from 0.39 to 0.45 on TREC (5 seeds; docs/active_learning.md).

    Multi-label: the margin is that of the two most likely label sets (``set_uncertainty``);
    the clustering is the same.
    """
    n_rows = check_request(features, n)
    generator = as_rng(rng)
    proba = probabilities(model, features, strategy="diverse_uncertainty")
    uncertainty = uncertainty_scores(proba, features, "margin")
    n_labelled = 0 if labelled_features is None else int(labelled_features.shape[0])
    widen = math.ceil(DIVERSE_WIDEN_BELOW / max(n_labelled, 1))
    n_candidates = min(n_rows, DIVERSE_BETA * n * max(1, widen))
    candidates = top_n(uncertainty, n_candidates, generator)
    rows = features[candidates]
    if widen > 1:  # many candidates: cluster as cold start does, in a 50-d projection
        rows = reduce_for_clustering(rows, generator)
    weights = uncertainty[candidates] + 1e-6
    labels, distances = cluster_pool(rows, n, generator, sample_weight=weights)
    # Nearest the centre, ties to the more uncertain: representative of its uncertain region.
    closeness = 1.0 / (1.0 + distances) + 1e-3 * weights
    chosen = candidates[best_per_cluster(labels, closeness, n, generator)]
    return result(chosen, batch_first(uncertainty, chosen))
