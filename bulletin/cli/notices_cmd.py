"""`bulletin notices`: the queue of single mails (confirmations, "already subscribed", data-request links).

`bulletin serve` sends them in the background of every worker; run
`bulletin notices send --watch` as a service (or `bulletin notices send` from
cron) when the web app runs with BULLETIN_WEB_NOTICE_INTERVAL=0, or to retry
now what the relay refused earlier.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from bulletin.cli.common import console, ctx_of

app = typer.Typer(help="Queued single mails: confirmations, 'already subscribed', data-request links.",
                  invoke_without_command=True)


@app.callback()
def show(ctx: typer.Context) -> None:
    """How many notices wait to be sent."""
    if ctx.invoked_subcommand is not None:
        return
    from bulletin.audience.notices import pending_count

    with ctx_of(ctx).ws.session() as session:
        console.print(f"{pending_count(session)} notice(s) waiting")


@app.command()
def send(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", help="Keep running, sending new notices as they arrive.")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between looks at the queue with --watch.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Send every due notice (retries wait with a back-off; 5xx answers fail for good)."""
    from bulletin.audience.notices import send_due

    c = ctx_of(ctx)
    totals = {"sent": 0, "deferred": 0, "failed": 0}
    while True:
        report = send_due(c.engine, c.settings)
        for key in totals:
            totals[key] += getattr(report, key)
        if report.total:
            continue
        if not watch:
            break
        time.sleep(interval)
    if as_json:
        console.print_json(json.dumps(totals))
    else:
        console.print(f"{totals['sent']} sent, {totals['deferred']} deferred, {totals['failed']} failed")
