"""The `bulletin` command: a thin shell over the stages.

Each command group lives in its own module (registered in `cli.commands`) and only
parses, calls one stage function and prints. Any `BulletinError` becomes one
line on stderr and its exit code; tracebacks are for bugs, not for user mistakes.

`main` first offers the command line to the fast path of `status` and `report`
(`cli.quick`, which loads neither Typer nor SQLAlchemy), and otherwise loads
the Typer app. `app` is importable from here as before, loaded on first use.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING, Any

from bulletin.errors import BulletinError

if TYPE_CHECKING:
    import typer

    app: typer.Typer


def __getattr__(name: str) -> Any:
    if name == "app":
        from bulletin.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    # The database, its WAL, the outbox and every export hold personal data or tokens:
    # whatever this process creates is private to its user (0600 files, 0700 folders).
    os.umask(0o077)
    from bulletin.cli.consoles import err_console

    try:
        from bulletin.cli import quick

        if not quick.run(sys.argv[1:]):
            from bulletin.cli.commands import app

            app()
    except BulletinError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    finally:
        # The interpreter's last collections walk every object still alive (SQLAlchemy's and
        # pydantic's class graphs, the models): 0.4 s of a 1.5 s `status`. The process is ending
        # and the OS takes the memory back, so move them where no collection looks.
        gc.freeze()
