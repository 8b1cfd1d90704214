"""Per-app state handed to every route through `request.app.state.web`: nothing global."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jinja2
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from bulletin.audience.links import Links
from bulletin.audience.optin import signup_lists
from bulletin.config import Settings
from bulletin.ratelimit import RateLimiter
from bulletin.web.options import WebOptions
from bulletin.web.security import (
    Network,
    check_csrf,
    client_ip,
    csrf_pair,
    parse_networks,
    set_csrf_cookie,
    user_agent,
)
from bulletin.workspace import Workspace


@dataclass
class WebContext:
    """The shell's own state (options, page templates, rate limits, proxies) around the shared `Workspace`."""

    ws: Workspace
    options: WebOptions
    templates: Jinja2Templates
    ip_limiter: RateLimiter
    address_limiter: RateLimiter
    trusted_proxies: tuple[Network, ...] = ()
    notices_due: asyncio.Event | None = None  # set after a commit that queued mail: wakes the in-app sender
    _lists: tuple[float, list[Any]] = (float("-inf"), [])

    @classmethod
    def build(cls, ws: Workspace, options: WebOptions) -> WebContext:
        return cls(
            ws=ws, options=options, templates=make_templates(ws),
            ip_limiter=RateLimiter("ip", options.ip_limit, options.ip_window),
            address_limiter=RateLimiter("address", options.address_limit, options.address_window),
            trusted_proxies=parse_networks(ws.settings.trusted_proxies),
        )

    @property
    def settings(self) -> Settings:
        return self.ws.settings

    @property
    def engine(self) -> Engine:
        return self.ws.engine

    @property
    def links(self) -> Links:
        return self.ws.links

    @property
    def secure(self) -> bool:
        """Cookies are Secure (and `__Host-`) whenever the public address is https."""
        return self.settings.public_base_url.startswith("https://")

    def url(self, path: str) -> str:
        """An absolute URL on the public address: redirects never echo the Host header."""
        return f"{self.settings.public_base_url}{path}"

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.ws.session() as session:
            yield session

    def check_csrf(self, request: Request, form: FormData) -> None:
        check_csrf(self.settings.secret_keys, request, form, secure=self.secure)

    def public_lists(self) -> list[Any]:
        """The lists /signup offers, read at most once per `lists_ttl` seconds (every signup post needs them)."""
        at, lists = self._lists
        now = time.monotonic()
        if now - at > self.options.lists_ttl:
            with self.session() as session:
                lists = signup_lists(session)
            self._lists = (now, lists)
        return lists

    def wake_sender(self) -> None:
        if self.notices_due is not None:
            self.notices_due.set()

    def ip(self, request: Request) -> str:
        return client_ip(request, self.trusted_proxies)

    def user_agent(self, request: Request) -> str | None:
        return user_agent(request)

    def render(self, request: Request, name: str, context: dict[str, Any] | None = None,
               status: int = 200) -> Response:
        """A page with a CSRF token for its forms (and the cookie it pairs with, when new)."""
        token, nonce = csrf_pair(self.settings.secret_keys, request, secure=self.secure)
        ctx = {"csrf_token": token, **(context or {})}
        response = self.templates.TemplateResponse(request, name, ctx, status_code=status)
        set_csrf_cookie(response, nonce, secure=self.secure)
        return response


def web_of(request: Request) -> WebContext:
    return request.app.state.web  # type: ignore[no-any-return]


def make_templates(ws: Workspace) -> Jinja2Templates:
    """The workspace's templates/web first (a council's own look), then the packaged ones, file by file."""
    loader = ws.template_loader("web")
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals["brand"] = ws.brand
    return Jinja2Templates(env=env)
