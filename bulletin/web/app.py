"""`create_app(workspace)`: the FastAPI app behind `bulletin serve`.

Errors from the stages become pages here, once: a bad or expired link is a
400 page that says so and nothing else (the same words whether or not the
person exists), an unknown list or issue a 404, a refused form its status.
Every response carries conservative headers: links carry tokens, so no
Referer leaves our pages and token pages are never cached. When
`public_base_url` is https, every response also says Strict-Transport-Security
(a year, subdomains too): a browser that has seen the site once never tries
plain http again, so nobody on the path can strip TLS from a link with a token
or from the console's session. A plain-http site (development) never sends
it: browsers ignore it over http (RFC 6797 8.1), and a development host name
must not end up pinned to https, subdomains and all. Any other error a
stage raises about its input is a 400 page, never a 500; a real 500 is a
static page that names nothing and carries the same headers. Slash redirects are
off (Starlette builds them from the Host header); pages that redirect build
the URL from `public_base_url`.

The in-app notice sender (`notice_interval` > 0) runs in every worker: it
sends the mail signups and data requests queued (`audience.notices`), woken
after each such commit and otherwise every `notice_interval` seconds; claims
in the database keep workers from sending a notice twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bulletin.audience.notices import send_due
from bulletin.errors import BulletinError, NotFound, TokenError
from bulletin.logs import log_event
from bulletin.web import console
from bulletin.web.context import WebContext, web_of
from bulletin.web.options import WebOptions
from bulletin.web.pages import archive, data, health, media, preferences, signup, unsubscribe
from bulletin.web.security import FormRejected
from bulletin.workspace import Workspace

PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
ARCHIVE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-ancestors 'none'; base-uri 'none'"
HSTS = "max-age=31536000; includeSubDomains"


def create_app(ws: Workspace, options: WebOptions | None = None) -> FastAPI:
    """The app for one workspace; its engine is disposed on shutdown."""
    web = WebContext.build(ws, options or WebOptions())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sender = None
        if web.options.notice_interval > 0:
            web.notices_due = asyncio.Event()
            sender = asyncio.create_task(_notice_sender(web))
        try:
            yield
        finally:
            if sender is not None:
                sender.cancel()
                with suppress(asyncio.CancelledError):
                    await sender
            ws.close()

    app = FastAPI(title="bulletin", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan,
                  redirect_slashes=False)
    app.router.redirect_slashes = False
    app.state.web = web
    for module in (signup, unsubscribe, preferences, data, archive, media, health):
        app.include_router(module.router)
    console.install(app)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(TokenError, _token_error)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(FormRejected, _form_rejected)
    app.add_exception_handler(BulletinError, _refused)
    app.add_exception_handler(Exception, _server_error)
    app.middleware("http")(_headers)
    return app


def app_from_env() -> FastAPI:
    """Uvicorn factory for `--workers N`: each worker loads the workspace named in BULLETIN_WORKSPACE."""
    return create_app(Workspace.open(), WebOptions.from_env())


def _message(request: Request, title: str, message: str, status: int) -> Response:
    return web_of(request).render(request, "message.html", {"title": title, "message": message}, status)


async def _token_error(request: Request, exc: Exception) -> Response:
    return _message(request, "This link cannot be used", str(exc) + ".", 400)


async def _not_found(request: Request, exc: Exception) -> Response:
    if console.is_console(request) and isinstance(exc, BulletinError):
        return await console.refused(request, exc, 404)
    return _message(request, "Not found", "There is nothing at this address.", 404)


async def _bad_request(request: Request, exc: Exception) -> Response:
    """A path that fails its type (an id out of range, `RowId`) names nothing here: 404, as an unknown id is."""
    assert isinstance(exc, RequestValidationError)
    if exc.errors() and all(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
        return await _not_found(request, NotFound("no such record"))
    return await request_validation_exception_handler(request, exc)


async def _form_rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormRejected)
    return _message(request, "The form could not be accepted", str(exc) + ".", exc.status)


async def _refused(request: Request, exc: Exception) -> Response:
    if console.is_console(request) and isinstance(exc, BulletinError):
        return await console.refused(request, exc)
    return _message(request, "The request could not be accepted", "Please check what you entered and try again.", 400)


async def _notice_sender(web: WebContext) -> None:
    """Drain the notice queue until the app stops; a failure is logged and retried, never fatal."""
    assert web.notices_due is not None
    while True:
        with suppress(TimeoutError):
            await asyncio.wait_for(web.notices_due.wait(), timeout=web.options.notice_interval)
        web.notices_due.clear()
        try:
            while (await run_in_threadpool(send_due, web.engine, web.settings)).total:
                pass
        except Exception as exc:  # noqa: BLE001 - the sender must outlive a bad moment of the database or relay
            log_event("bulletin.web", "notices.failed", level=logging.WARNING, error=str(exc))


SERVER_ERROR_PAGE = ("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Something went wrong</title>"
                     "<h1>Something went wrong</h1><p>Please try again in a few minutes.</p></html>")


async def _server_error(request: Request, exc: Exception) -> Response:
    """An unexpected error: a page that names nothing, with every other response's headers.

    Starlette answers an unhandled error outside every middleware, so `_headers`
    never saw a 500: it went out without HSTS, CSP or no-store. This page is
    static, so it cannot fail in turn (no template, no database). The error
    itself is still raised on to the server's log.
    """
    page = HTMLResponse(SERVER_ERROR_PAGE, status_code=500, headers={"Cache-Control": "no-store"})  # archive too
    return _secure(request, page)


async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    return _secure(request, await call_next(request))


def _secure(request: Request, response: Response) -> Response:
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    issue_page = request.url.path.startswith(("/archive/", "/view/"))
    h.setdefault("Content-Security-Policy", ARCHIVE_CSP if issue_page else PAGE_CSP)
    if not request.url.path.startswith("/archive/"):
        h.setdefault("Cache-Control", "no-store")
    if web_of(request).secure:  # the TLS proxy may set it too; the app's own says the same
        h.setdefault("Strict-Transport-Security", HSTS)
    return response
