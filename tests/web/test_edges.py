"""Edge pieces: the rate limiter's window, web options from the environment, client address, headers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bulletin.errors import ConfigError
from bulletin.ratelimit import RateLimiter
from bulletin.web.options import WebOptions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_refuses_over_the_limit_and_forgets_after_the_window(engine) -> None:  # type: ignore[no-untyped-def]
    from bulletin.db import session_scope

    clock = Clock()
    limiter = RateLimiter("t", 2, 60, clock=clock)
    with session_scope(engine) as s:
        assert limiter.hit(s, "a") and limiter.hit(s, "a")
        assert not limiter.hit(s, "a")
        assert limiter.hit(s, "b")  # keys are independent
    clock.now += 121
    with session_scope(engine) as s:
        assert limiter.hit(s, "a")


def test_rate_limiter_counts_the_previous_bucket_so_an_edge_does_not_double_the_limit(engine) -> None:  # type: ignore[no-untyped-def]
    from bulletin.db import session_scope

    clock = Clock()
    clock.now = 60 * 100 + 59  # one second before a bucket edge
    limiter = RateLimiter("t", 3, 60, clock=clock)
    with session_scope(engine) as s:
        assert all(limiter.hit(s, "k") for _ in range(3))
        clock.now += 2  # next bucket: the previous one still counts almost fully
        assert not limiter.hit(s, "k")


def test_rate_limiter_is_shared_by_separate_instances_and_drops_old_buckets(engine) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    from bulletin.db import session_scope
    from bulletin.models import RateCount

    clock = Clock()
    one, two = RateLimiter("t", 2, 10, clock=clock), RateLimiter("t", 2, 10, clock=clock)
    with session_scope(engine) as s:
        for i in range(50):
            one.hit(s, f"ip{i}")
        assert two.hit(s, "ip1") and not one.hit(s, "ip1")
    clock.now += 25
    with session_scope(engine) as s:
        one.hit(s, "fresh")
        assert [r.key for r in s.exec(select(RateCount)).all()] == ["t:fresh"]


def test_options_round_trip_through_the_environment() -> None:
    opts = WebOptions(ip_limit=3, confirm_window=60.0, notice_interval=0.0)
    assert WebOptions.from_env(opts.to_env()) == opts
    assert WebOptions.from_env({}) == WebOptions()


def test_bad_option_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="BULLETIN_WEB_IP_LIMIT"):
        WebOptions.from_env({"BULLETIN_WEB_IP_LIMIT": "lots"})


def test_pages_carry_protective_headers(client: TestClient) -> None:
    resp = client.get("/signup")
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["cache-control"] == "no-store"
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    # https public address: the __Host- cookie, Secure, for the whole site and no Domain
    assert cookie.startswith("__host-bulletin_csrf=") and "secure" in cookie and "path=/" in cookie
    assert "domain" not in cookie


def test_csrf_cookie_over_plain_http_is_not_secure(synced) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import make_client, signup

    plain = synced.model_copy(update={"public_base_url": "http://127.0.0.1:8000"})
    with make_client(plain) as c:
        cookie = c.get("/signup").headers["set-cookie"].lower()
        assert cookie.startswith("bulletin_csrf=") and "secure" not in cookie
        assert signup(c, "plain@example.org").status_code == 200


HSTS_PATHS = ("/signup", "/healthz", "/archive/", "/admin/login", "/no-such-page", "/preferences/forged")


def test_an_https_site_sends_strict_transport_security_on_every_response(client: TestClient) -> None:
    for path in HSTS_PATHS:
        resp = client.get(path)
        assert resp.headers.get("strict-transport-security") == "max-age=31536000; includeSubDomains", (
            path, resp.status_code)


def test_an_unexpected_error_is_a_bare_500_page_with_every_security_header(synced) -> None:  # type: ignore[no-untyped-def]
    """Starlette answers an unhandled error outside every middleware: the 500 went out without HSTS,
    CSP or no-store. A route that fails for real (a division by zero) shows the page and the headers."""
    from fastapi.testclient import TestClient as Client

    from bulletin.web.app import create_app
    from bulletin.web.options import WebOptions
    from bulletin.workspace import Workspace

    assert synced.public_base_url.startswith("https://")
    app = create_app(Workspace(synced), WebOptions(notice_interval=0))

    def boom() -> None:
        1 / 0  # noqa: B018

    for path in ("/boom", "/archive/boom"):  # the archive's own cache rule must not leave a 500 cacheable
        app.add_api_route(path, boom)
        app.router.routes.insert(0, app.router.routes.pop())  # before the archive's /archive/{slug}

    with Client(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        resp = c.get("/boom")
        archived = c.get("/archive/boom")
    assert archived.status_code == 500 and archived.headers["cache-control"] == "no-store"
    assert resp.status_code == 500 and "Something went wrong" in resp.text
    assert "ZeroDivisionError" not in resp.text and "Traceback" not in resp.text
    h = resp.headers
    assert h["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert h["cache-control"] == "no-store" and h["x-frame-options"] == "DENY"
    assert h["content-security-policy"] and h["referrer-policy"] == "no-referrer"


def test_a_plain_http_site_never_sends_strict_transport_security(synced) -> None:  # type: ignore[no-untyped-def]
    """Browsers ignore it over http anyway, and a development host name must never be pinned to https."""
    from tests.web.conftest import make_client

    plain = synced.model_copy(update={"public_base_url": "http://127.0.0.1:8000"})
    with make_client(plain) as c:
        for path in HSTS_PATHS:
            assert "strict-transport-security" not in c.get(path).headers, path


def test_redirects_use_the_public_address_not_the_host_header(client: TestClient) -> None:
    for path in ("/archive", "/archive/some-issue"):
        resp = client.get(path, headers={"Host": "evil.example"})
        assert resp.status_code == 308
        assert resp.headers["location"].startswith("https://news.example.org/archive/")
    assert client.get("/signup/", headers={"Host": "evil.example"}).status_code == 404


def test_forwarded_for_is_ignored_without_trusted_proxies(synced) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import make_client, signup

    with make_client(synced, ip_limit=1) as c:
        assert signup(c, "f1@example.org").status_code == 200
        c.headers["X-Forwarded-For"] = "203.0.113.9"  # a forged header does not buy a fresh limit
        assert signup(c, "f2@example.org").status_code == 429


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("10.0.0.2", "203.0.113.9", "203.0.113.9"),
    ("10.0.0.2", "198.51.100.66, 203.0.113.9", "203.0.113.9"),  # the client wrote the left one: ignored
    ("10.0.0.2", "198.51.100.66, 203.0.113.9, 10.0.0.7", "203.0.113.9"),  # two trusted hops
    ("10.0.0.2", "", "10.0.0.2"),
    ("10.0.0.2", "10.0.0.3, 10.0.0.7", "10.0.0.3"),  # all trusted: the leftmost
    ("192.0.2.1", "203.0.113.9", "192.0.2.1"),  # the peer is no proxy of ours: the header is the client's
    ("10.0.0.2", "2001:db8::1", "2001:db8::1"),
    ("10.0.0.2", "garbage, 203.0.113.9", "203.0.113.9"),
])
def test_client_ip_is_the_rightmost_untrusted_hop(peer: str, forwarded: str, expected: str) -> None:
    from starlette.requests import Request

    from bulletin.web.security import client_ip, parse_networks

    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 5000)})
    assert client_ip(request, parse_networks(["10.0.0.0/8"])) == expected
    assert client_ip(request) == peer


def test_trusted_proxies_setting_is_checked(synced) -> None:  # type: ignore[no-untyped-def]
    from bulletin.config import load_settings

    assert load_settings(synced.workspace, trusted_proxies=["10.0.0.0/8", "::1"]).trusted_proxies == ["10.0.0.0/8", "::1"]
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_settings(synced.workspace, trusted_proxies=["10.0.0.0/33"])


def test_uvicorn_factory_reads_the_workspace_and_options_from_the_environment(
        synced, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from bulletin.web.app import app_from_env

    monkeypatch.setenv("BULLETIN_WORKSPACE", str(synced.workspace))
    monkeypatch.setenv("BULLETIN_DATABASE_URL", synced.effective_database_url)
    monkeypatch.setenv("BULLETIN_WEB_IP_LIMIT", "7")
    app = app_from_env()
    assert app.state.web.options.ip_limit == 7
    with TestClient(app) as c:
        assert c.get("/signup/workforce").status_code == 200


def test_serve_command_is_registered() -> None:
    from typer.testing import CliRunner

    from bulletin.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output


def test_client_leaving_mid_body_is_refused_without_a_traceback() -> None:
    import asyncio

    from starlette.requests import Request

    from bulletin.web.security import FormRejected, read_form

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/signup", "headers": [
        (b"content-type", b"application/x-www-form-urlencoded")]}
    with pytest.raises(FormRejected) as info:
        asyncio.run(read_form(Request(scope, receive), 1024))
    assert info.value.status == 400


@pytest.mark.parametrize("body", [b"--xyz\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--xyz--\r\n", b"garbage"])
def test_broken_multipart_body_is_a_400_page(client: TestClient, body: bytes) -> None:
    resp = client.post("/signup", content=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert resp.status_code == 400 and "could not be read" in resp.text
    assert resp.headers["content-type"].startswith("text/html")


def test_file_upload_is_refused(client: TestClient) -> None:
    resp = client.post("/signup", files={"email": ("a.txt", b"x@example.org", "text/plain")})
    assert resp.status_code == 400 and "could not be read" in resp.text


def test_referral_link_for_a_list_that_is_gone_is_refused(client: TestClient, synced) -> None:  # type: ignore[no-untyped-def]
    from bulletin.audience.links import Links

    url = Links.for_settings(synced).referral_url(1, 999_999)
    assert client.get("/refer/" + url.rsplit("/", 1)[1]).status_code == 400
