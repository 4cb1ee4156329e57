"""Density-weighted uncertainty: uncertain items that are also typical of the pool.

Pure uncertainty loves outliers (spam in a foreign script, a one-word comment); an outlier's
label teaches the model about itself only. Weighting by information density (mean similarity
to the rest of the pool) prefers uncertain items with many neighbours.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from strategies.base import (
    Indices,
    Scores,
    as_matrix,
    as_rng,
    cap_rows,
    check_request,
    probabilities,
    register,
    result,
    top_n,
)
from strategies.uncertainty import uncertainty_scores

# Up to this many rows the density is modAL's exact all-pairs mean; above, each row's mean
# similarity to a seeded sample of this many rows estimates it (all pairs of 1M rows is 10^12).
DENSITY_REFERENCE_ROWS = 2_000
DENSITY_CHUNK_ROWS = 10_000


def information_density(features: Any, rng: np.random.Generator) -> NDArray[np.float64]:
    """Mean similarity ``1 / (1 + euclidean distance)`` of each row to the pool (modAL)."""
    # modAL pulls in torch: ~3 s to import
    from modAL.density import information_density as modal_density
    from sklearn.metrics.pairwise import pairwise_distances

    n_rows = features.shape[0]
    if n_rows <= DENSITY_REFERENCE_ROWS:
        return np.asarray(
            modal_density(as_matrix(features), metric="euclidean"), dtype=np.float64
        ).ravel()
    reference, _ = cap_rows(features, DENSITY_REFERENCE_ROWS, rng)
    rows = features.tocsr() if sp.issparse(features) else features
    density = np.empty(n_rows, dtype=np.float64)
    for start in range(0, n_rows, DENSITY_CHUNK_ROWS):
        part = pairwise_distances(rows[start : start + DENSITY_CHUNK_ROWS], reference)
        density[start : start + len(part)] = (1.0 / (1.0 + part)).mean(axis=1)
    return density


@register("density_weighted")
def density_weighted(
    model: Any,
    features: Any,
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    labelled_features: Any = None,
    labelled_labels: Any = None,
    lf_votes: Any = None,
) -> tuple[Indices, Scores]:
    """Entropy times information density (modAL's ``information_density``, Settles 2008).

    Multi-label: the entropy of the label set, the sum of per-label binary entropies.
    """
    check_request(features, n)
    generator = as_rng(rng)
    proba = probabilities(model, features, strategy="density_weighted")
    scores = uncertainty_scores(proba, features, "entropy") * information_density(
        features, generator
    )
    return result(top_n(scores, n, generator), scores)
