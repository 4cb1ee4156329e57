"""Query strategies: pure functions from model outputs to the items worth labelling next.

Every strategy is registered by name; ``get_strategy(name)`` returns it and ``STRATEGIES`` lists
them all (``MULTILABEL_ONLY``: those that refuse single-label input). See :mod:`strategies.base`
for the contract they share and how a problem is marked multi-label (``as_multilabel``).
"""

from strategies import (  # noqa: F401  (registers)
    committee,
    density,
    diversity,
    multilabel,
    uncertainty,
)
from strategies.base import (
    MULTILABEL_ONLY,
    STRATEGIES,
    MultiLabelProbabilities,
    Strategy,
    as_multilabel,
    get_strategy,
    is_multilabel,
    register,
)
from strategies.exceptions import (
    EmptyPoolError,
    PoolTooSmallError,
    StrategyError,
    UnknownStrategyError,
)

#: The strategy a workspace uses unless its config names another.
DEFAULT_STRATEGY = "diverse_uncertainty"

__all__ = [
    "DEFAULT_STRATEGY",
    "MULTILABEL_ONLY",
    "STRATEGIES",
    "EmptyPoolError",
    "MultiLabelProbabilities",
    "PoolTooSmallError",
    "Strategy",
    "StrategyError",
    "UnknownStrategyError",
    "as_multilabel",
    "get_strategy",
    "is_multilabel",
    "register",
]
