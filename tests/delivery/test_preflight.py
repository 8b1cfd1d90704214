"""`bulletin send` checks before it queues: `bulletin check`, the issue's lists, and mail authentication."""

from __future__ import annotations

import pytest
from sqlmodel import func, select
from typer.testing import CliRunner

from bulletin.cli import app
from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.delivery import service
from bulletin.errors import BulletinError
from bulletin.models import Delivery
from tests.delivery.conftest import add_list, add_subscribers, make_compiled
from tests.smtp_sink import SmtpSink, free_port

ISSUE = "2016-shared-service-map"


@pytest.fixture
def cli(settings: Settings, engine):  # type: ignore[no-untyped-def]
    base = {"BULLETIN_DATABASE_URL": settings.effective_database_url,
            "BULLETIN_PUBLIC_BASE_URL": settings.public_base_url,
            "BULLETIN_SENDING_DOMAIN": settings.sending_domain}
    runner = CliRunner()

    def run(*args: str, **env: str) -> tuple[int, str]:
        result = runner.invoke(app, ["-w", str(settings.workspace), *args], env={**base, **env})
        if isinstance(result.exception, BulletinError):
            return result.exception.exit_code, str(result.exception)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    add_subscribers(engine, add_list(engine), 3)
    return run


def _rows(engine) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return int(session.exec(select(func.count()).select_from(Delivery)).one())


def test_an_issue_that_check_rejects_is_not_sent_and_nothing_is_queued(cli, settings, engine) -> None:  # type: ignore[no-untyped-def]
    block = settings.workspace / "content" / ISSUE / "02-how-the-map-can-help.md"
    block.write_text(block.read_text() + "\n![](https://www.local.gov.uk/map.png)\n")
    check_code, check_out = cli("check", ISSUE)
    code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet")
    assert check_code == code == 6
    assert "map.png has no alt text" in out and "error(s) in pre-send checks" in out
    assert _rows(engine) == 0 and not (settings.outbox_path / "new").exists()


def test_a_list_the_issue_does_not_name_needs_force_list(cli, settings, engine) -> None:  # type: ignore[no-untyped-def]
    add_list(engine, "productivity")
    code, out = cli("send", ISSUE, "--list", "productivity", "--quiet")
    assert code == 7 and "not in the issue's lists (shared-services)" in out and "--force-list" in out
    assert _rows(engine) == 0
    code, out = cli("send", ISSUE, "--list", "productivity", "--force-list", "--quiet")
    assert code == 0, out


def test_a_worker_pauses_a_queued_issue_that_fails_the_checks(settings, engine) -> None:  # type: ignore[no-untyped-def]
    add_subscribers(engine, add_list(engine), 2)
    bad = make_compiled(extra_html='<img src="https://example.org/x.png">')
    queued = service.queue_issue(engine, settings, bad, "shared-services")
    service.run_worker(engine, settings, once=True)
    from bulletin.db import session_scope

    with session_scope(engine) as session:
        status = service.issue_status(session, bad.slug)
    assert status.sends[0]["status"] == "paused" and "x.png has no alt text" in str(status.sends[0]["pause_reason"])
    assert status.counts["queued"] == 2 and queued.new_rows == 2
    assert not (settings.outbox_path / "new").exists() or not list((settings.outbox_path / "new").iterdir())


@pytest.fixture
def smtp_env(sink: SmtpSink) -> dict[str, str]:
    # DNS goes to a closed port on 127.0.0.1: the record checks are "skipped: offline", the tests stay offline.
    return {"BULLETIN_TRANSPORT": "smtp", "BULLETIN_SMTP_HOST": sink.host, "BULLETIN_SMTP_PORT": str(sink.port),
            "BULLETIN_DNS_SERVER": f"127.0.0.1:{free_port()}"}


def test_a_from_domain_that_fails_alignment_stops_an_smtp_send(cli, engine, sink, smtp_env) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet", **smtp_env)
    assert code == 7 and "mail authentication fails: alignment" in out and "--force" in out
    assert _rows(engine) == 0 and sink.count() == 0
    code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet", "--force", **smtp_env)
    assert code == 0 and sink.count() == 3, out


def test_relay_signs_dkim_lets_a_misaligned_send_through(cli, sink, smtp_env) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet", BULLETIN_RELAY_SIGNS_DKIM="true",
                    **smtp_env)
    assert code == 0 and sink.count() == 3, out


def test_an_aligned_domain_offline_sends_with_one_warning_line(cli, sink, smtp_env) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet",
                    BULLETIN_SENDING_DOMAIN="example.gov.uk", **smtp_env)
    assert code == 0 and sink.count() == 3, out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "skipped: offline" in warnings[0]
