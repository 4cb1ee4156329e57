"""The labelloop exception tree.

Every error a user can cause derives from :class:`BadInput` (CLI exit code 2); failures of the
system itself derive from :class:`LabelloopError` directly (exit code 1). Messages name the
file, row, field or option at fault and say what was expected.
"""

from __future__ import annotations


class LabelloopError(Exception):
    """Root of every error labelloop raises on purpose."""

    exit_code = 1


class BadInput(LabelloopError):
    """The user gave something labelloop cannot accept (file, option, value)."""

    exit_code = 2


class ConfigError(BadInput):
    """``labelloop.toml`` is missing, malformed or holds a bad value."""


class WorkspaceNotFound(BadInput):
    """The folder is not a labelloop workspace."""


class WorkspaceExists(BadInput):
    """``init`` was pointed at a folder that already holds a workspace."""


class ImportFailed(BadInput):
    """A file to import is malformed; nothing was written."""


class ExportFailed(BadInput):
    """An export could not be written where asked."""


class UnknownItem(BadInput):
    """No item has the given id."""


class UnknownAnnotator(BadInput):
    """No active annotator has the given name or token."""


class UnknownLabel(BadInput):
    """A label outside the workspace's label set."""


class NotLeased(BadInput):
    """An annotation for an item the annotator does not hold."""


class NothingToUndo(BadInput):
    """Undo with no earlier annotation to go back to."""


class Forbidden(BadInput):
    """The signed-in person's role does not allow the action."""


class StoreError(LabelloopError):
    """The database cannot be used (unreachable, corrupt, wrong schema)."""


class SchemaTooNew(StoreError):
    """The database was written by a newer labelloop than this one."""
