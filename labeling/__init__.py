"""labelloop: active-learning labelling for text classification.

The Python API starts at :class:`Workspace`::

    from labeling import Workspace
    ws = Workspace.create("my-project", labels=["spam", "ham"])
    ws.import_file("comments.csv", text_field="text")
"""

from importlib import metadata as _metadata

from labeling.errors import BadInput, LabelloopError
from labeling.workspace import Workspace

__all__ = ["BadInput", "LabelloopError", "Workspace"]
try:
    __version__ = _metadata.version("labelloop")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
