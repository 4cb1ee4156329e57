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
