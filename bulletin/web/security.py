"""Edge checks of the web app: CSRF, client address, body size and form fields.

CSRF uses a double-submit cookie: a random nonce in an HttpOnly, SameSite=Lax
cookie and its HMAC (with every signing key, newest first, so rotation does not
break open forms) in a hidden field. A cross-site form can send the cookie but
cannot know the HMAC. Form fields are checked here, before any flow sees them:
no CR/LF (a name ends up in headers), bounded lengths, one value per field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from bulletin.errors import BulletinError

CSRF_COOKIE = "bulletin_csrf"
CSRF_FIELD = "csrf_token"
_LINE_BREAKS = "\x7f\x85\u2028\u2029"  # besides C0 controls: DEL and what str.splitlines() breaks on
LIMITS = {"email": 320, "name": 200, "organisation": 200, "ref": 400, "website": 200}


class FormRejected(BulletinError):
    """A form post refused at the edge; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message, where=f"field '{field}'" if field else None)
        self.status = status
        self.field = field


# CSRF ------------------------------------------------------------------------------------
def _mac(key: str, nonce: str) -> str:
    return hmac.new(key.encode(), f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()


def csrf_pair(keys: Sequence[str], request: Request) -> tuple[str, str | None]:
    """(form token, new cookie nonce or None when the request already carries a usable cookie)."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if nonce and 16 <= len(nonce) <= 64:
        return _mac(keys[0], nonce), None
    nonce = secrets.token_urlsafe(24)
    return _mac(keys[0], nonce), nonce


def set_csrf_cookie(response: Response, nonce: str | None, request: Request) -> None:
    if nonce:
        response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/")


def check_csrf(keys: Sequence[str], request: Request, form: FormData) -> None:
    """Raise 403 unless the form token is the HMAC of the cookie nonce under one of the keys."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    token = form.get(CSRF_FIELD)
    if not nonce or not isinstance(token, str) or not token:
        raise FormRejected("the form has expired; please reload the page and try again", status=403)
    if not any(hmac.compare_digest(token, _mac(k, nonce)) for k in keys):
        raise FormRejected("the form has expired; please reload the page and try again", status=403)


# Client and body ---------------------------------------------------------------------------
def client_ip(request: Request, *, trust_forwarded: bool) -> str:
    if trust_forwarded:
        forwarded = request.headers.get("x-forwarded-for", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return request.client.host if request.client else "unknown"


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
    if not body and not ctype:
        return FormData()
    try:
        return await replay.form(max_files=0, max_fields=50, max_part_size=max_body)
    except HTTPException as exc:  # Starlette's own wrapping of a multipart error inside an app
        raise FormRejected(f"the form could not be read: {exc.detail}") from None
    except (MultiPartException, ValueError, KeyError) as exc:
        raise FormRejected(f"the form could not be read: {exc}") from None


# Fields --------------------------------------------------------------------------------------
def text_field(form: FormData, name: str, *, required: bool = False) -> str:
    """One single-line value, stripped; CR, LF and other control characters are refused."""
    values = form.getlist(name)
    if len(values) > 1:
        raise FormRejected("was sent more than once", field=name)
    value = values[0] if values else ""
    if not isinstance(value, str):
        raise FormRejected("must be text", field=name)
    if any((ord(c) < 32 and c != "\t") or c in _LINE_BREAKS for c in value):
        raise FormRejected("must be a single line", field=name)
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
