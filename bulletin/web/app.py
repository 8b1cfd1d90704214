"""`create_app(workspace)`: the FastAPI app behind `bulletin serve`.

Errors from the stages become pages here, once: a bad or expired link is a
400 page that says so and nothing else (the same words whether or not the
person exists), an unknown list or issue a 404, a refused form its status.
Every response carries conservative headers: links carry tokens, so no
Referer leaves our pages and token pages are never cached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from bulletin.errors import NotFound, TokenError
from bulletin.web import console
from bulletin.web.context import WebContext, web_of
from bulletin.web.options import WebOptions
from bulletin.web.pages import archive, media, preferences, signup, unsubscribe
from bulletin.web.security import FormRejected
from bulletin.workspace import Workspace

PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
ARCHIVE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-ancestors 'none'; base-uri 'none'"


def create_app(ws: Workspace, options: WebOptions | None = None) -> FastAPI:
    """The app for one workspace; its engine is disposed on shutdown."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        ws.close()

    app = FastAPI(title="bulletin", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.web = WebContext.build(ws, options or WebOptions())
    for module in (signup, unsubscribe, preferences, archive, media):
        app.include_router(module.router)
    console.install(app)
    app.add_exception_handler(TokenError, _token_error)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(FormRejected, _form_rejected)
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
    return _message(request, "Not found", "There is nothing at this address.", 404)


async def _form_rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormRejected)
    return _message(request, "The form could not be accepted", str(exc) + ".", exc.status)


async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Content-Security-Policy", ARCHIVE_CSP if request.url.path.startswith("/archive/") else PAGE_CSP)
    if not request.url.path.startswith("/archive/"):
        h.setdefault("Cache-Control", "no-store")
    return response
