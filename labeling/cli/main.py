"""The ``labelloop`` command line: a thin Typer layer over :class:`labeling.Workspace`.

User mistakes print one line ``error: ...`` on stderr and exit 2; failures exit 1. ``--json``
prints exactly one JSON document on stdout. One module per command group: ``data`` (init,
import, export, items), ``ops`` (backup, doctor, report, status), ``people`` (user),
``rounds`` (retrain, rounds, simulate), ``lf``, ``features``, ``search``, ``similar``,
``queue``, ``items`` (item, correct, flag, flags, resolve-flag), ``guidelines``, ``model``
(predict, model export), ``serving`` (serve, api, demo), ``webhooks`` (log, send, test).
"""

from __future__ import annotations

# Importing a group's module registers its commands on ``app``, in this order in --help.
import labeling.cli.bulk  # noqa: F401  registers bulk-label, bulk-undo, bulk-list
from labeling.cli import (
    data,
    features,
    guidelines,
    items,
    lf,
    llm,
    model,
    ops,
    people,
    queue,
    rounds,
    search,
    serving,
    similar,
    webhooks,
)
from labeling.cli.common import app

app.add_typer(people.user_app, name="user")
app.add_typer(rounds.rounds_app, name="rounds")
lf.lf_app.add_typer(llm.llm_app, name="llm")
app.add_typer(lf.lf_app, name="lf")
app.add_typer(features.features_app, name="features")
app.add_typer(data.items_app, name="items")
app.add_typer(guidelines.guidelines_app, name="guidelines")
app.add_typer(model.model_app, name="model")
app.add_typer(webhooks.webhooks_app, name="webhooks")

__all__ = ["app", "items", "main", "ops", "queue", "search", "serving", "similar"]


def main() -> None:
    app(prog_name="labelloop")


if __name__ == "__main__":
    main()
