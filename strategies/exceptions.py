"""Errors a strategy raises, each a case a caller can catch on its own (after small-text).

They derive from :class:`ValueError` rather than from labelloop's tree because ``strategies``
sits below ``labeling`` and must not import it; the rounds and the CLI translate them.
"""

from __future__ import annotations


class StrategyError(ValueError):
    """A strategy was called with inputs it cannot use; the message says what was expected."""


class EmptyPoolError(StrategyError):
    """The pool has no unlabelled items left to choose from."""


class PoolTooSmallError(StrategyError):
    """More items were asked for than the pool holds."""


class UnknownStrategyError(StrategyError, KeyError):
    """No strategy is registered under the given name."""

    def __str__(self) -> str:
        # KeyError would quote the message; keep it readable.
        return str(self.args[0]) if self.args else ""
