"""The simulator's representations: every block featurized once, and the per-step choice.

A fixed featurizer gives one view (pool and test rows). ``auto`` featurizes the tfidf and the
embedding blocks once, composes the hybrid from them (as rounds do), and at every simulated
round picks the view by :func:`labeling.rounds.representations.select` on the labels so far,
so the learning curve is the one a workspace with ``featurizer = "auto"`` would follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeling.rounds.featurizers import (
    AUTO,
    HYBRID_SCALES,
    featurize_in_chunks,
    make_featurizer,
    side_by_side,
)
from labeling.rounds.representations import CANDIDATES, Selection, fixed, select

EMBEDDINGS = "sentence-embeddings"


@dataclass(frozen=True)
class Views:
    """Pool and test rows per featurizer name, and the workspace-like setting they serve."""

    setting: str
    pool: dict[str, Any]
    test: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return list(self.pool)

    def cold_start_rows(self, default: str) -> Any:
        """Rows cold start clusters: the embeddings when featurized (meanings group better
        than words), else the given view's."""
        return self.pool.get(EMBEDDINGS, self.pool[default])


def featurize_views(setting: str, pool_texts: Sequence[str], test_texts: Sequence[str]) -> Views:
    """Each needed block fitted on the pool and featurized once; the hybrid composed."""
    blocks = ["tfidf", EMBEDDINGS] if setting in (AUTO, "hybrid") else [setting]
    if setting == EMBEDDINGS:
        blocks = [EMBEDDINGS]
    pool: dict[str, Any] = {}
    test: dict[str, Any] = {}
    for name in blocks:
        featurizer = make_featurizer(name).fit(pool_texts)
        pool[name] = featurize_in_chunks(featurizer, pool_texts)
        test[name] = featurize_in_chunks(featurizer, test_texts)
    if setting in (AUTO, "hybrid"):
        pool["hybrid"] = side_by_side([pool["tfidf"], pool[EMBEDDINGS]], HYBRID_SCALES)
        test["hybrid"] = side_by_side([test["tfidf"], test[EMBEDDINGS]], HYBRID_SCALES)
    if setting == "hybrid":  # the embeddings stay: cold start clusters them
        del pool["tfidf"], test["tfidf"]
    return Views(setting, pool, test)


def trained_view(views: Views, default_classifier: str) -> list[tuple[str, str]]:
    """The (featurizer, classifier) pairs whose full-supervision score sets the target."""
    if views.setting == AUTO:
        return [(c.featurizer, c.classifier) for c in CANDIDATES]
    return [(views.setting, default_classifier)]


def choose(
    views: Views,
    labelled: NDArray[np.intp],
    y: NDArray[Any],
    classifier: str,
    seed: int,
) -> Selection:
    """The view a simulated round trains on, chosen as a round with this setting would."""
    if views.setting != AUTO:
        return fixed(views.setting, classifier)
    return select(lambda name: views.pool[name][labelled], y, seed=seed)
