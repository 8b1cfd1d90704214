"""`bulletin serve`: the web app (signup, confirm, unsubscribe, preferences, archive) under uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from bulletin.cli.common import console, ctx_of


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on; put a TLS proxy in front in production.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (they share rate limits through the database).")] = 1,
) -> None:
    """Serve the web pages with uvicorn until interrupted.

    Behind a reverse proxy, list it in the `trusted_proxies` setting (CIDRs): the
    client address is then the rightmost X-Forwarded-For entry not in that set.
    Uvicorn's own proxy-header handling is off, so nothing else rewrites it.
    """
    import uvicorn

    from bulletin.web.app import create_app
    from bulletin.web.options import WebOptions

    ws = ctx_of(ctx).ws
    settings = ws.settings
    options = WebOptions.from_env()
    console.print(f"serving {settings.public_base_url} on http://{host}:{port} with {workers} worker(s)")
    if workers == 1:
        uvicorn.run(create_app(ws, options), host=host, port=port, log_level="warning", proxy_headers=False)
        return
    # Each worker process builds its own app from the environment (uvicorn needs an import string).
    os.environ["BULLETIN_WORKSPACE"] = str(settings.workspace)
    os.environ.update(options.to_env())
    uvicorn.run("bulletin.web.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", proxy_headers=False)
