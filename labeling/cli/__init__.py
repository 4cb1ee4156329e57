"""The ``labelloop`` command line: one module per command group, assembled in
:mod:`labeling.cli.main` (the console script is ``labeling.cli:main``)."""

from labeling.cli.main import app, main

__all__ = ["app", "main"]
