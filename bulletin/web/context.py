"""Per-app state handed to every route through `request.app.state.web`: nothing global."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jinja2
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.render.templating import default_brand, template_loader
from bulletin.web.options import WebOptions
from bulletin.web.ratelimit import RateLimiter
from bulletin.web.security import client_ip, csrf_pair, set_csrf_cookie, user_agent


@dataclass
class WebContext:
    settings: Settings
    engine: Engine
    links: Links
    options: WebOptions
    templates: Jinja2Templates
    ip_limiter: RateLimiter
    address_limiter: RateLimiter

    @classmethod
    def build(cls, settings: Settings, engine: Engine, options: WebOptions) -> WebContext:
        return cls(
            settings=settings, engine=engine, links=Links.for_settings(settings), options=options,
            templates=make_templates(settings),
            ip_limiter=RateLimiter(options.ip_limit, options.ip_window),
            address_limiter=RateLimiter(options.address_limit, options.address_window),
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.engine) as session:
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


def make_templates(settings: Settings) -> Jinja2Templates:
    """The workspace's templates/web first (a council's own look), then the packaged ones, file by file."""
    loader = template_loader(settings, "web")
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals["brand"] = default_brand(settings)
    return Jinja2Templates(env=env)
