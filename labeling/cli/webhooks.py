"""``labelloop webhooks``: the outbox's deliveries (``log``), sending what is due (``send``) and
a test delivery to one hook (``test``); see docs/webhooks.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labeling.cli.common import (
    DbOpt,
    JsonOpt,
    WorkspaceOpt,
    handle_errors,
    open_workspace,
    print_json,
)
from labeling.service import webhooks
from labeling.service.webhooks import Delivery

webhooks_app = typer.Typer(
    help="Webhooks: the deliveries in the outbox, sending them, a test delivery.",
    no_args_is_help=True,
)


def _line(d: Delivery) -> str:
    when = f"{d.created_at:%Y-%m-%d %H:%M:%S}"
    status = str(d.last_status) if d.last_status is not None else "-"
    if d.state == webhooks.DELIVERED and d.delivered_at is not None:
        outcome = f"delivered {d.delivered_at:%Y-%m-%d %H:%M:%S}"
    elif d.state == webhooks.PENDING and d.next_try is not None:
        outcome = f"next try {d.next_try:%Y-%m-%d %H:%M:%S}"
    else:
        outcome = d.state
    error = f"  {d.last_error}" if d.last_error else ""
    return (
        f"{d.id:>6}  {when}  {d.event:<16} {d.hook:<20} {d.state:<9} "
        f"tries {d.attempts:<2} status {status:<4} {outcome}{error}"
    )


@webhooks_app.command("log", short_help="The deliveries, newest first.")
@handle_errors
def log_command(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 50,
    state: Annotated[
        str | None, typer.Option("--state", help="Only pending, delivered or dead ones.")
    ] = None,
    event: Annotated[str | None, typer.Option("--event", help="Only this event.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every delivery, newest first: id, event, hook, state, attempts, the last status and
    error, when it was created and delivered (or is tried next)."""
    with open_workspace(workspace, db) as ws:
        found = webhooks.deliveries(ws, limit=limit, state=state, event=event)
    if as_json:
        print_json({"deliveries": [d.as_dict() for d in found]})
        return
    if not found:
        typer.echo("no deliveries" + (" matching these options" if state or event else " yet"))
    for delivery in found:
        typer.echo(_line(delivery))


@webhooks_app.command("send", short_help="Send the deliveries due now, once.")
@handle_errors
def send_command(
    workspace: WorkspaceOpt = Path("."), db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Send every delivery due now, once (for cron and tests; the worker of `labelloop serve`
    sends them continuously). Failed ones are retried by a later run after their backoff."""
    with open_workspace(workspace, db) as ws:
        done = webhooks.send_due(ws)
    if as_json:
        print_json(done.__dict__)
        return
    typer.echo(
        f"tried {done.tried}: {done.delivered} delivered, {done.retrying} to retry, "
        f"{done.dead} dead"
    )


@webhooks_app.command("test", short_help="Send a ping to one webhook.")
@handle_errors
def test_command(
    name: Annotated[str, typer.Argument(help="The webhook's name in labelloop.toml.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a `ping` delivery to this webhook alone and send it now; prints the outcome (a
    failed ping is retried like any delivery: see `labelloop webhooks log`)."""
    with open_workspace(workspace, db) as ws:
        row_id = webhooks.ping(ws, name)
        webhooks.send_due(ws, only=[row_id], senders=1)
        (delivery,) = webhooks.deliveries(ws, ids=[row_id])
    if as_json:
        print_json(delivery.as_dict())
        return
    typer.echo(_line(delivery))
    if delivery.state != webhooks.DELIVERED:
        raise typer.Exit(1)
