"""Where the featurizers and the feature cache used to be: the names other rounds modules import.

Temporary: :mod:`labeling.rounds.featurizers` holds the featurizers and
:mod:`labeling.rounds.feature_cache` the on-disk cache. Delete this module once
``labeling/rounds/core.py`` and ``labeling/rounds/simulate.py`` import from those two.
"""

from labeling.rounds.feature_cache import FeatureCache
from labeling.rounds.featurizers import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_FEATURIZER,
    featurize_in_chunks,
    make_featurizer,
)

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_FEATURIZER",
    "FeatureCache",
    "featurize_in_chunks",
    "make_featurizer",
]
