"""Query strategies: pure functions from model outputs to the items worth labelling next.

Every strategy is registered by name; ``get_strategy(name)`` returns it and ``STRATEGIES`` lists
them all. See :mod:`strategies.base` for the contract they share.
"""

from strategies import committee, density, diversity, uncertainty  # noqa: F401  (registers)
from strategies.base import STRATEGIES, Strategy, get_strategy, register
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
    "STRATEGIES",
    "EmptyPoolError",
    "PoolTooSmallError",
    "Strategy",
    "StrategyError",
    "UnknownStrategyError",
    "get_strategy",
    "register",
]
