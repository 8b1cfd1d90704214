"""Two real uvicorn worker processes behind a (pretend) proxy: one shared limit, the right client address."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import Session, select

from bulletin.config import Settings
from bulletin.models import SubscriberEvent
from tests.smtp_sink import free_port
from tests.web.test_browser import _wait_until_up

LIMIT = 20


@pytest.fixture
def two_workers(synced: Settings) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (synced.workspace / "bulletin.toml").write_text(
        f'database_url = "{synced.effective_database_url}"\npublic_base_url = "{base}"\n'
        f'sending_domain = "news.example.org"\ntrusted_proxies = ["127.0.0.1/32"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    env.update({"BULLETIN_WEB_IP_LIMIT": str(LIMIT), "BULLETIN_WEB_NOTICE_INTERVAL": "0"})
    proc = subprocess.Popen([sys.executable, "-m", "bulletin", "-w", str(synced.workspace), "serve", "--port",
                             str(port), "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_two_workers_share_the_limit_and_spoofed_forwarding_changes_nothing(two_workers: str, db: Session) -> None:
    page = httpx.get(f"{two_workers}/signup/shared-services")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    cookie = page.cookies["bulletin_csrf"]

    def post(i: int) -> int:
        # Every request on a new connection, so both workers take some; the left entry is forged per request.
        with httpx.Client(cookies={"bulletin_csrf": cookie}) as client:
            return client.post(f"{two_workers}/signup/shared-services", headers={
                "X-Forwarded-For": f"198.51.100.{i}, 203.0.113.50"},
                data={"csrf_token": token, "email": f"w{i}@example.org"}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(post, range(LIMIT + 10)))
    assert codes.count(200) == LIMIT and codes.count(429) == 10
    db.expire_all()
    ips = {e.ip for e in db.exec(select(SubscriberEvent).where(SubscriberEvent.kind == "subscribe")).all()}
    assert ips == {"203.0.113.50"}
