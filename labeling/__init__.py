"""labelloop: active-learning labelling for text classification.

The Python API starts at :class:`Workspace`::

    from labeling import Workspace
    ws = Workspace.create("my-project", labels=["spam", "ham"])
    ws.import_file("comments.csv", text_field="text")
"""

from labeling.errors import BadInput, LabelloopError
from labeling.workspace import Workspace

__all__ = ["BadInput", "LabelloopError", "Workspace"]
__version__ = "0.1.0"
