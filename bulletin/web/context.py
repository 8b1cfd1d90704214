"""Per-app state handed to every route through `request.app.state.web`: nothing global."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jinja2
from fastapi.templating import Jinja2Templates
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.web.options import WebOptions
from bulletin.web.ratelimit import RateLimiter
from bulletin.web.security import client_ip, csrf_pair, set_csrf_cookie, user_agent
from bulletin.workspace import Workspace


@dataclass
class WebContext:
    """The shell's own state (options, page templates, rate limits) around the shared `Workspace`."""

    ws: Workspace
    options: WebOptions
    templates: Jinja2Templates
    ip_limiter: RateLimiter
    address_limiter: RateLimiter

    @classmethod
    def build(cls, ws: Workspace, options: WebOptions) -> WebContext:
        return cls(
            ws=ws, options=options, templates=make_templates(ws),
            ip_limiter=RateLimiter(options.ip_limit, options.ip_window),
            address_limiter=RateLimiter(options.address_limit, options.address_window),
        )

    @property
    def settings(self) -> Settings:
        return self.ws.settings

    @property
    def links(self) -> Links:
        return self.ws.links

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.ws.session() as session:
            yield session

    def ip(self, request: Request) -> str:
        return client_ip(request, trust_forwarded=self.options.trust_forwarded)

    def user_agent(self, request: Request) -> str | None:
        return user_agent(request)

    def render(self, request: Request, name: str, context: dict[str, Any] | None = None,
               status: int = 200) -> Response:
        """A page with a CSRF token for its forms (and the cookie it pairs with, when new)."""
        token, nonce = csrf_pair(self.settings.secret_keys, request)
        ctx = {"csrf_token": token, **(context or {})}
        response = self.templates.TemplateResponse(request, name, ctx, status_code=status)
        set_csrf_cookie(response, nonce, request)
        return response


def web_of(request: Request) -> WebContext:
    return request.app.state.web  # type: ignore[no-any-return]


def make_templates(ws: Workspace) -> Jinja2Templates:
    """The workspace's templates/web first (a council's own look), then the packaged ones, file by file."""
    loader = ws.template_loader("web")
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals["brand"] = ws.brand
    return Jinja2Templates(env=env)
