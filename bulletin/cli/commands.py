"""The `bulletin` Typer app: every command group, registered; `bulletin.cli.main` runs it.

A command module imports its stage inside the command functions, not at the top:
registering the commands and `--help` then load no stage, and each command loads only
what it calls. Anything a parameter or its help text needs at registration comes from
cheap modules (the standard library, `bulletin.statuses`, `bulletin.errors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bulletin.cli import (
    audit_cmd,
    config_cmd,
    db_cmd,
    demo_cmd,
    feedback_cmd,
    inbound_cmd,
    init_cmd,
    issue_cmd,
    lists_cmd,
    notices_cmd,
    report_cmd,
    segments_cmd,
    send_cmd,
    serve_cmd,
    staff_cmd,
    subscribers_cmd,
    templates_cmd,
)
from bulletin.cli.common import Context
from bulletin.logs import configure_logging

LOG_LEVELS = ("debug", "info", "warning", "error")

app = typer.Typer(
    name="bulletin",
    help="Compose, send and answer e-bulletins.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", envvar="BULLETIN_WORKSPACE", help="Workspace folder (default: current folder)."),
    ] = None,
    log_level: Annotated[
        str,
        typer.Option("--log-level", envvar="BULLETIN_LOG_LEVEL",
                     help="Structured JSON log lines on stderr from this level (debug, info, warning)."),
    ] = "warning",
) -> None:
    """Compose, send and answer e-bulletins."""
    if log_level.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="'--log-level' "
                                 "(BULLETIN_LOG_LEVEL)")
    configure_logging(log_level.upper())
    ctx.obj = Context(workspace=workspace)


issue_cmd.register(app)
send_cmd.register(app)
report_cmd.register(app)
demo_cmd.register(app)
serve_cmd.register(app)
init_cmd.register(app)
audit_cmd.register(app)
app.add_typer(lists_cmd.app, name="lists")
app.add_typer(subscribers_cmd.app, name="subscribers")
app.add_typer(segments_cmd.app, name="segments")
app.add_typer(feedback_cmd.app, name="feedback")
app.add_typer(inbound_cmd.app, name="inbound")
app.add_typer(db_cmd.app, name="db")
app.add_typer(notices_cmd.app, name="notices")
app.add_typer(config_cmd.app, name="config")
app.add_typer(templates_cmd.app, name="templates")
app.add_typer(staff_cmd.app, name="staff")


