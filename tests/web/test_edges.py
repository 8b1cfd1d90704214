"""Edge pieces: the rate limiter's window, web options from the environment, client address, headers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bulletin.errors import ConfigError
from bulletin.web.options import WebOptions
from bulletin.web.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_refuses_over_the_limit_and_forgets_after_the_window() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 60, clock=clock)
    assert limiter.hit("a") and limiter.hit("a")
    assert not limiter.hit("a")
    assert limiter.hit("b")  # keys are independent
    clock.now += 61
    assert limiter.hit("a")


def test_rate_limiter_drops_idle_keys() -> None:
    clock = Clock()
    limiter = RateLimiter(5, 10, clock=clock)
    for i in range(100):
        limiter.hit(f"ip{i}")
    clock.now += 25
    limiter.hit("fresh")
    assert len(limiter) == 1


def test_options_round_trip_through_the_environment() -> None:
    opts = WebOptions(ip_limit=3, confirm_window=60.0, trust_forwarded=True)
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


def test_forwarded_for_is_used_only_when_trusted(synced) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import make_client, signup

    with make_client(synced, ip_limit=1) as c:
        assert signup(c, "f1@example.org", ).status_code == 200
        # Untrusted: a forged header does not buy a fresh limit.
        c.headers["X-Forwarded-For"] = "203.0.113.9"
        assert signup(c, "f2@example.org").status_code == 429
    with make_client(synced, ip_limit=1, trust_forwarded=True) as c:
        c.headers["X-Forwarded-For"] = "203.0.113.9"
        assert signup(c, "f3@example.org").status_code == 200
        c.headers["X-Forwarded-For"] = "203.0.113.10, 10.0.0.1"
        assert signup(c, "f4@example.org").status_code == 200


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
