"""`bulletin staff`: console accounts (add, list, role, disable, password)."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from bulletin.cli.common import console, ctx_of
from bulletin.errors import StateError
from bulletin.statuses import StaffRole

app = typer.Typer(help="Console accounts: who can sign in to /admin, and with which role.", no_args_is_help=True)

RoleOpt = Annotated[str, typer.Option("--role", "-r", help=f"One of {', '.join(StaffRole.ALL)}.")]
StdinOpt = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _password(from_stdin: bool) -> str:
    """From stdin (scripts), or asked twice at a prompt that does not echo."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise StateError("no password on standard input", where="--password-stdin")
        return value
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        raise StateError("the two passwords differ", where="password")
    return str(first)


@app.command()
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The sign-in address.")],
    role: RoleOpt = "editor",
    password_stdin: StdinOpt = False,
) -> None:
    """Add an account (password: at least 12 characters, not a common one)."""
    from bulletin.accounts import add_account

    password = _password(password_stdin)
    with ctx_of(ctx).ws.session() as session:
        account = add_account(session, email, role, password, actor=_actor())
    console.print(f"added {account.email} ({account.role})")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the accounts as JSON.")] = False,
) -> None:
    """Every account with its role and whether it is disabled."""
    from bulletin.accounts import list_accounts

    with ctx_of(ctx).ws.session() as session:
        accounts = list_accounts(session)
    if as_json:
        console.print_json(json.dumps([{"email": a.email, "role": a.role, "disabled": a.disabled,
                                        "created_at": a.created_at.isoformat()} for a in accounts]))
        return
    table = Table("email", "role", "disabled", "created")
    for a in accounts:
        table.add_row(a.email, a.role, "yes" if a.disabled else "", a.created_at.strftime("%Y-%m-%d"))
    console.print(table)


@app.command()
def role(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The account's address.")],
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help=f"One of {', '.join(StaffRole.ALL)}.")],
) -> None:
    """Change an account's role."""
    from bulletin.accounts import set_role

    with ctx_of(ctx).ws.session() as session:
        account = set_role(session, email, new_role, actor=_actor())
    console.print(f"{account.email} is now {account.role}")


@app.command()
def disable(ctx: typer.Context, email: Annotated[str, typer.Argument(help="The account's address.")]) -> None:
    """Disable an account; its open sessions stop working at once."""
    from bulletin.accounts import disable_account

    with ctx_of(ctx).ws.session() as session:
        account = disable_account(session, email, actor=_actor())
    console.print(f"disabled {account.email}")


@app.command()
def password(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The account's address.")],
    password_stdin: StdinOpt = False,
) -> None:
    """Set a new password; the account's open sessions end."""
    from bulletin.accounts import set_password

    value = _password(password_stdin)
    with ctx_of(ctx).ws.session() as session:
        account = set_password(session, email, value, actor=_actor())
    console.print(f"new password set for {account.email}")
