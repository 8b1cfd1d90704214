"""The signed-in console at /admin for editors, staff and admins: HTTP only, over the stages' front doors.

`install(app)` adds its routes and the two answers every console route may
give before doing anything: 303 to the sign-in page, or 403 for a role too low.
When a stage says no, the app's error handlers hand /admin paths to `refused`,
so staff read the stage's reason (which names the record) on a console page.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from bulletin.errors import BulletinError
from bulletin.web.console import admin, feedback, issues, login, people
from bulletin.web.console.auth import Forbidden, SignInNeeded, account_of, page, to_login


def install(app: FastAPI) -> None:
    for module in (login, issues, feedback, people, admin):
        app.include_router(module.router)
    app.add_exception_handler(SignInNeeded, _sign_in)
    app.add_exception_handler(Forbidden, _forbidden)


async def _sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInNeeded)
    return to_login(exc)


async def _forbidden(request: Request, exc: Exception) -> Response:
    return page(request, "admin/notice.html", account_of(request),
                {"title": "Not allowed", "message": str(exc) + "."}, 403)


def is_console(request: Request) -> bool:
    return request.url.path == "/admin" or request.url.path.startswith("/admin/")


async def refused(request: Request, exc: BulletinError, status: int = 400) -> Response:
    """A stage said no (bad address, unknown record, wrong state): its reason, on a console page.

    The public site's pages say less on purpose; staff need to know which
    message, subscriber or issue was refused and why.
    """
    title = "Not found" if status == 404 else "That did not work"
    return page(request, "admin/notice.html", account_of(request), {"title": title, "message": str(exc) + "."},
                status)
