"""The signed-in console at /admin for editors, staff and admins: HTTP only, over the stages' front doors.

`install(app)` adds its routes and the two answers every console route may
give before doing anything: 303 to the sign-in page, or 403 for a role too low.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from bulletin.errors import BulletinError
from bulletin.web.console import admin, feedback, issues, login, people
from bulletin.web.console.auth import Forbidden, SignInNeeded, account_of, page, to_login
from bulletin.web.context import web_of


def install(app: FastAPI) -> None:
    for module in (login, issues, feedback, people, admin):
        app.include_router(module.router)
    app.add_exception_handler(SignInNeeded, _sign_in)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(BulletinError, _refused)


async def _sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInNeeded)
    return to_login(exc)


async def _forbidden(request: Request, exc: Exception) -> Response:
    return page(request, "admin/notice.html", account_of(request),
                {"title": "Not allowed", "message": str(exc) + "."}, 403)


async def _refused(request: Request, exc: Exception) -> Response:
    """A stage said no (bad address, unknown list, wrong state): the reason, as a 400 page."""
    if request.url.path.startswith("/admin"):
        return page(request, "admin/notice.html", account_of(request),
                    {"title": "That did not work", "message": str(exc) + "."}, 400)
    return web_of(request).render(request, "message.html",
                                  {"title": "That did not work", "message": str(exc) + "."}, 400)
