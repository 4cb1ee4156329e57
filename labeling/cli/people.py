"""``labelloop user ...``: people, roles and sign-in tokens."""

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

user_app = typer.Typer(help="Manage annotators and their sign-in tokens.", no_args_is_help=True)


@user_app.command("add", short_help="Add an annotator; prints their token once.")
@handle_errors
def user_add(
    name: Annotated[str, typer.Argument(help="Annotator name (unique).")],
    role: Annotated[
        str, typer.Option("--role", help="annotator, engineer, lead or admin.")
    ] = "annotator",
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an annotator and print their sign-in token (shown once, stored only hashed)."""
    with open_workspace(workspace, db) as ws:
        annotator, token = ws.add_user(name, role=role)
    if as_json:
        print_json({"name": annotator.name, "role": annotator.role, "token": token})
    else:
        typer.echo(
            f"Added {annotator.role} {annotator.name!r}. Sign-in token (shown only now):\n{token}"
        )


@user_app.command("list", short_help="List annotators and roles.")
@handle_errors
def user_list(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List annotators with their roles (tokens are never shown again)."""
    with open_workspace(workspace, db) as ws:
        people = [
            {"name": a.name, "role": a.role, "active": a.active, "created_at": a.created_at}
            for a in ws.list_users()
        ]
    if as_json:
        print_json(people)
        return
    if not people:
        typer.echo("No annotators yet: labelloop user add NAME --role annotator")
    for person in people:
        state = "" if person["active"] else " (deactivated)"
        typer.echo(f"{person['name']}\t{person['role']}{state}")


@user_app.command("deactivate", short_help="Revoke a person's token and end their sessions.")
@handle_errors
def user_deactivate(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Revoke a person's token and sign-in links; their signed-in browsers are signed out at
    their next request. Their annotations stay."""
    with open_workspace(workspace, db) as ws:
        ws.deactivate_user(name)
    typer.echo(f"Deactivated {name!r}; their token no longer signs in.")


@user_app.command("role", short_help="Change a person's role.")
@handle_errors
def user_role(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    role: Annotated[str, typer.Argument(help="annotator, engineer, lead or admin.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Change a person's role; it takes effect at their next click (the last active admin
    keeps theirs)."""
    with open_workspace(workspace, db) as ws:
        annotator = ws.set_user_role(name, role)
    typer.echo(f"{annotator.name!r} is now {annotator.role}.")


def _echo_token(message: str, annotator_name: str, token: str, as_json: bool) -> None:
    if as_json:
        print_json({"name": annotator_name, "token": token})
    else:
        typer.echo(f"{message} Sign-in token (shown only now):\n{token}")


@user_app.command("reactivate", short_help="Let a deactivated person sign in again.")
@handle_errors
def user_reactivate(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Switch a deactivated person back on with a new token, printed once (their old token
    stays revoked)."""
    with open_workspace(workspace, db) as ws:
        annotator, token = ws.reactivate_user(name)
    _echo_token(f"Reactivated {annotator.name!r}.", annotator.name, token, as_json)


@user_app.command("new-token", short_help="Replace a person's token; prints the new one once.")
@handle_errors
def user_new_token(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a person a new sign-in token, printed once. The old token, their sign-in links and
    their signed-in browsers stop working."""
    with open_workspace(workspace, db) as ws:
        annotator, token = ws.new_user_token(name)
    _echo_token(
        f"New token for {annotator.name!r}; the old one no longer signs in.",
        annotator.name,
        token,
        as_json,
    )


@user_app.command("revoke-links", short_help="Revoke every sign-in link serve printed.")
@handle_errors
def user_revoke_links(
    workspace: WorkspaceOpt = Path("."),
    db: DbOpt = None,
) -> None:
    """Revoke the launch sign-in links of every server on this store, on any host: for a
    server that died without revoking its own. Running servers keep serving; the links they
    printed stop signing in (signed-in browsers stay signed in)."""
    with open_workspace(workspace, db) as ws:
        revoked = ws.revoke_sign_in_links()
    typer.echo(f"Revoked {revoked} sign-in link(s).")
