"""Edge checks of the web app: CSRF, client address, body size and form fields.

CSRF uses a double-submit cookie: a random nonce in an HttpOnly, SameSite=Lax
cookie and its HMAC (with every signing key, newest first, so rotation does not
break open forms) in a hidden field. A cross-site form can send the cookie but
cannot know the HMAC. When `public_base_url` is https the cookie is
`__Host-bulletin_csrf` with Secure (no subdomain or plain-http page can plant
or read it); over plain http (development) browsers refuse `__Host-`, so it is
`bulletin_csrf` there. Form fields are checked here, before any flow sees
them, with the one character rule of `bulletin.audience.text`, bounded
lengths and one value per field. The client address honours X-Forwarded-For
only through the proxies named in the `trusted_proxies` setting.

Everything here takes plain arguments, so any page of the app (public pages,
the staff console) can use it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from typing import Annotated

from fastapi import Path
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from bulletin.audience.text import PROBLEM, bad_character
from bulletin.db import MAX_ROW_ID
from bulletin.errors import BulletinError

CSRF_COOKIE = "bulletin_csrf"
CSRF_COOKIE_SECURE = "__Host-bulletin_csrf"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
LIMITS = {"email": 320, "name": 200, "organisation": 200, "ref": 400, "website": 200}
# A row id in a URL path. Out of range it names no row, and the app answers 404 for a path that fails
# this (`app._bad_request`) rather than let the database driver raise on binding it.
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


class FormRejected(BulletinError):
    """A form post refused at the edge; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message, where=f"field '{field}'" if field else None)
        self.status = status
        self.field = field


# CSRF ------------------------------------------------------------------------------------
def _mac(key: str, nonce: str) -> str:
    return hmac.new(key.encode(), f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()


def csrf_cookie_name(secure: bool) -> str:
    return CSRF_COOKIE_SECURE if secure else CSRF_COOKIE


def csrf_pair(keys: Sequence[str], request: Request, *, secure: bool) -> tuple[str, str | None]:
    """(form token, new cookie nonce or None when the request already carries a usable cookie)."""
    nonce = request.cookies.get(csrf_cookie_name(secure))
    if nonce and 16 <= len(nonce) <= 64:
        return _mac(keys[0], nonce), None
    nonce = secrets.token_urlsafe(24)
    return _mac(keys[0], nonce), nonce


def set_csrf_cookie(response: Response, nonce: str | None, *, secure: bool) -> None:
    """`__Host-` needs Secure, Path=/ and no Domain; all three are set here together."""
    if nonce:
        response.set_cookie(csrf_cookie_name(secure), nonce, httponly=True, samesite="lax", secure=secure, path="/")


def check_csrf(keys: Sequence[str], request: Request, form: FormData, *, secure: bool) -> None:
    """Raise 403 unless the form token is the HMAC of the cookie nonce under one of the keys."""
    nonce = request.cookies.get(csrf_cookie_name(secure), "")
    token = form.get(CSRF_FIELD)
    if not nonce or not isinstance(token, str) or not token:
        raise FormRejected("the form has expired; please reload the page and try again", status=403)
    # Bytes, not str: `compare_digest` raises on a non-ASCII str, and the field is whatever was posted.
    if not any(hmac.compare_digest(token.encode(), _mac(k, nonce).encode()) for k in keys):
        raise FormRejected("the form has expired; please reload the page and try again", status=403)


# Client and body ---------------------------------------------------------------------------
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """The `trusted_proxies` setting as networks (checked when the settings load)."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_ip(request: Request, trusted: Sequence[Network] = ()) -> str:
    """The rightmost address of X-Forwarded-For + the TCP peer that is not a trusted proxy.

    Each proxy appends the address it received from, so everything left of the
    last untrusted hop was written by the client and may be forged. With no
    trusted proxies (the default) the TCP peer is the client and the header is ignored.
    """
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for line in request.headers.getlist("x-forwarded-for") for h in line.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else peer


def user_agent(request: Request) -> str | None:
    ua = request.headers.get("user-agent")
    return ua[:400] if ua else None


async def read_form(request: Request, max_body: int) -> FormData:
    """Parse an urlencoded or multipart body of at most `max_body` bytes; no file uploads."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_body:
        raise FormRejected("the form is too large", status=413)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise FormRejected("the form is too large", status=413)
            chunks.append(chunk)
    except ClientDisconnect:
        # The client left mid-body (a closed tab, a load tool stopping): nothing to answer, nothing done.
        raise FormRejected("the request was not completed", status=400) from None
    body = b"".join(chunks)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    replay = Request(request.scope, receive)
    ctype = request.headers.get("content-type", "")
    if not body:
        return FormData()
    if ctype.split(";", 1)[0].strip().lower() not in FORM_TYPES:
        # Starlette reads any other body (JSON, text) as an empty form, and an empty POST is the one
        # kind of one-click unsubscribe that carries nothing: a robot posting JSON would leave for
        # the person. No endpoint here takes anything but a form.
        raise FormRejected("the request must be sent as a form", status=415)
    try:
        return await replay.form(max_files=0, max_fields=50, max_part_size=max_body)
    except HTTPException as exc:  # Starlette's own wrapping of a multipart error inside an app
        raise FormRejected(f"the form could not be read: {exc.detail}") from None
    except (MultiPartException, ValueError, KeyError) as exc:
        raise FormRejected(f"the form could not be read: {exc}") from None


# Fields --------------------------------------------------------------------------------------
def text_field(form: FormData, name: str, *, required: bool = False) -> str:
    """One value, stripped, under the one character rule (`audience.text`); the same error for every address."""
    values = form.getlist(name)
    if len(values) > 1:
        raise FormRejected("was sent more than once", field=name)
    value = values[0] if values else ""
    if not isinstance(value, str):
        raise FormRejected("must be text", field=name)
    if bad_character(value, name) is not None:
        raise FormRejected(PROBLEM, field=name)
    value = value.strip()
    if len(value) > LIMITS.get(name, 200):
        raise FormRejected(f"is longer than {LIMITS.get(name, 200)} characters", field=name)
    if required and not value:
        raise FormRejected("is required", field=name)
    return value


def choice_fields(values: Sequence[object], name: str, allowed: Sequence[str]) -> list[str]:
    """Checkbox values (`form.getlist(name)`), each one of `allowed`; an unknown one is refused, not ignored."""
    chosen: list[str] = []
    for value in values:
        if not isinstance(value, str) or value not in allowed:
            raise FormRejected("names a bulletin that does not exist", field=name, status=400)
        if value not in chosen:
            chosen.append(value)
    return chosen
