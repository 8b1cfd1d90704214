"""Who is asking: the session cookie, the role a route needs, and the checked form of a POST.

Every console route calls `require(request, role)` first: no session means a 303
to the sign-in page (with `next`, a local path only), a session whose role is
too low means 403. POSTs then check the CSRF token with the public pages' own
double-submit helpers. The cookie is `__Host-bulletin_session` (Secure, Path=/,
no Domain) when the site is served over https; browsers refuse a `__Host-`
cookie without Secure, so a plain-http development server names it
`bulletin_session`.
"""

from __future__ import annotations

from urllib.parse import quote

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bulletin.accounts import Account, SessionPolicy, current_account
from bulletin.errors import BulletinError
from bulletin.web.console.done import done_message, done_query
from bulletin.web.context import WebContext, web_of
from bulletin.web.security import FormRejected, read_form

SECURE_COOKIE = "__Host-bulletin_session"
PLAIN_COOKIE = "bulletin_session"
POLICY = SessionPolicy()


class SignInNeeded(BulletinError):
    """No live session: answered with a 303 to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path


class Forbidden(BulletinError):
    """Signed in, but the role does not allow this: answered with 403."""


def is_secure(web: WebContext) -> bool:
    return web.settings.public_base_url.lower().startswith("https://")


def cookie_name(web: WebContext) -> str:
    return SECURE_COOKIE if is_secure(web) else PLAIN_COOKIE


def session_token(request: Request) -> str | None:
    return request.cookies.get(cookie_name(web_of(request)))


def set_session_cookie(response: Response, web: WebContext, token: str) -> None:
    response.set_cookie(cookie_name(web), token, httponly=True, samesite="strict", secure=is_secure(web),
                        path="/", max_age=int(POLICY.lifetime.total_seconds()))


def clear_session_cookie(response: Response, web: WebContext) -> None:
    response.delete_cookie(cookie_name(web), path="/", secure=is_secure(web), httponly=True, samesite="strict")


def safe_next(value: str | None) -> str:
    """A local console path, or the dashboard: never another site (`//evil`, `/\\evil`, `https:`)."""
    if (not value or not value.startswith("/admin") or value.startswith("//") or "\\" in value
            or any(ord(c) < 33 or ord(c) == 127 for c in value) or len(value) > 400):
        return "/admin"
    return value


def account_of(request: Request) -> Account | None:
    web = web_of(request)
    with web.session() as session:
        return current_account(session, session_token(request), POLICY)


def require(request: Request, role: str) -> Account:
    """The signed-in account if its role includes `role`; else SignInNeeded or Forbidden."""
    return _checked(request, account_of(request), role)


def authorised(session: Session, request: Request, role: str) -> Account:
    """`require` inside the page's own unit of work: one transaction per page view, not two."""
    return _checked(request, current_account(session, session_token(request), POLICY), role)


def _checked(request: Request, account: Account | None, role: str) -> Account:
    if account is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(target if request.method == "GET" else "/admin")
    if not account.can(role):
        raise Forbidden(f"your role ({account.role}) cannot do this; it needs {role}")
    return account


async def posted(request: Request, role: str, *, upload: int = 0) -> tuple[Account, FormData]:
    """Role first (so anonymous posts are redirected, not told about CSRF), then the CSRF token.

    `upload` > 0 allows one file of at most that many bytes (the CSV import); other forms take none.
    """
    account = await run_in_threadpool(require, request, role)
    web = web_of(request)
    if upload:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > upload + 64 * 1024:
            raise FormRejected("the form is too large", status=413)
        form = await request.form(max_files=1, max_fields=50, max_part_size=upload)
    else:
        form = await read_form(request, web.options.max_body)
    web.check_csrf(request, form)
    return account, form


def to_login(exc: SignInNeeded) -> Response:
    return RedirectResponse(f"/admin/login?next={quote(exc.next_path, safe='/')}", status_code=303)


def page(request: Request, name: str, account: Account | None, context: dict[str, object] | None = None,
         status: int = 200) -> Response:
    """A console page: the account for the navigation, the role ladder for what it shows, and the
    message a `?done=` key names (never the query's own text: see `done`)."""
    done = done_message(request.query_params.get("done"))
    return web_of(request).render(request, name, {"me": account, "done": done, **(context or {})}, status)


def back(path: str, done: str = "") -> Response:
    """303 after a POST (so a reload does not repeat it), naming what happened by a key of `done.MESSAGES`."""
    sep = "&" if "?" in path else "?"
    return RedirectResponse(path + (f"{sep}{done_query(done)}" if done else ""), status_code=303)
