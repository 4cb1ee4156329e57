"""``python -m labeling.cli``: the ``labelloop`` command."""

from labeling.cli.main import main

main()
