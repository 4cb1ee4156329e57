"""Exceptions of the weak-supervision package: one tree, so callers catch the case they handle.

``labeling`` maps these onto its own ``LabelloopError`` tree; this package does not import it.
"""

from __future__ import annotations


class WeakSupervisionError(Exception):
    """Base of every error this package raises on purpose."""


class LFDefinitionError(WeakSupervisionError, ValueError):
    """An LF or rule is defined wrongly (bad label argument, empty keyword list, ...)."""


class UnknownLabelError(LFDefinitionError):
    """An LF or rule names a label that is not in the workspace's label list."""


class RuleError(LFDefinitionError):
    """A keyword or regex rule spec is invalid: the message says which field and why."""


class ApplyError(WeakSupervisionError):
    """LFs could not be applied at all (bad frame, unknown engine, unreachable scheduler)."""


class LabelModelError(WeakSupervisionError, ValueError):
    """The vote matrix or options given to a label model are not usable."""


class LFTimeoutError(ApplyError):
    """A code LF did not return within the time limit on one row; the apply was stopped.

    ``lf`` is the LF's name, ``row`` the row's position in the frame, ``seconds`` the limit.
    """

    def __init__(self, lf: str, row: int, seconds: float) -> None:
        self.lf = lf
        self.row = row
        self.seconds = seconds
        super().__init__(
            f"LF {lf!r} did not return within {seconds:g} s on row {row} (the per-call time "
            "limit); it was stopped and no votes were kept"
        )


class LFProcessDied(ApplyError):
    """The process running code LFs under a time limit ended without answering."""
