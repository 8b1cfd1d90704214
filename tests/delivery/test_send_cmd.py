"""The send commands end to end through the CLI, on the real sample issue and the Maildir outbox."""

from __future__ import annotations

import email
import json
from email import policy

import pytest

from bulletin.config import Settings
from tests.conftest import cli_runner
from tests.delivery.conftest import add_list, add_subscribers

ISSUE = "2016-shared-service-map"


@pytest.fixture
def cli(settings: Settings, engine):  # type: ignore[no-untyped-def]
    env = {"BULLETIN_DATABASE_URL": settings.effective_database_url,
           "BULLETIN_PUBLIC_BASE_URL": settings.public_base_url,
           "BULLETIN_SENDING_DOMAIN": settings.sending_domain}
    return cli_runner(settings, env)


def _outbox(settings: Settings) -> list[email.message.Message]:
    new = settings.outbox_path / "new"
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(new.iterdir())] \
        if new.exists() else []


def test_send_delivers_the_sample_issue_to_the_outbox_once_per_subscriber(cli, settings, engine) -> None:  # type: ignore[no-untyped-def]
    add_subscribers(engine, add_list(engine), 12)
    code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet")
    assert code == 0, out
    assert "queued 12 new recipients" in out
    msgs = _outbox(settings)
    assert len(msgs) == 12
    assert all("shared services bulletin" in str(m["Subject"]).lower() for m in msgs)
    code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet")
    assert "queued 0 new recipients" in out and "12 already had it" in out
    assert len(_outbox(settings)) == 12
    code, out = cli("status", ISSUE, "--json")
    data = json.loads(out)
    assert code == 0 and data["counts"]["sent"] == 12 and data["sends"][0]["status"] == "done"


def test_dry_run_prints_counts_and_the_first_message_and_sends_nothing(cli, settings, engine) -> None:  # type: ignore[no-untyped-def]
    add_subscribers(engine, add_list(engine), 3)
    code, out = cli("send", ISSUE, "--list", "shared-services", "--dry-run")
    assert code == 0, out
    assert "3 recipients would get" in out and "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in out
    assert _outbox(settings) == []
    assert cli("status", ISSUE)[0] != 0  # nothing was queued


def test_test_sends_are_marked_and_not_recorded(cli, settings, engine) -> None:  # type: ignore[no-untyped-def]
    add_subscribers(engine, add_list(engine), 3)
    code, out = cli("send", ISSUE, "--list", "shared-services", "--test", "Editor@Example.org",
                    "--test", "proof@example.org")
    assert code == 0, out
    msgs = _outbox(settings)
    assert len(msgs) == 2 and all(str(m["Subject"]).startswith("[TEST] ") for m in msgs)
    assert len({m["Message-ID"] for m in msgs}) == 2
    code, out = cli("status", ISSUE, "--json")
    assert code != 0  # published, but no send and no delivery rows


def test_scheduling_then_pause_resume_and_cancel(cli, settings, engine) -> None:  # type: ignore[no-untyped-def]
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 4)
    code, out = cli("send", ISSUE, "--list", "shared-services", "--at", "2099-01-01T09:00+00:00")
    assert code == 0 and "worker" in out
    assert _outbox(settings) == []
    assert "paused 1" in cli("pause", ISSUE)[1]
    code, out = cli("resume", ISSUE, "--quiet")
    assert code == 0 and "nothing to resume" in out and _outbox(settings) == []
    assert json.loads(cli("status", ISSUE, "--json")[1])["sends"][0]["status"] == "scheduled"
    code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet")  # without --at: now
    assert code == 0 and len(_outbox(settings)) == 4
    add_subscribers(engine, list_id, 2, start=4)
    cli("send", ISSUE, "--list", "shared-services", "--queue-only")
    assert "cancelled 2" in cli("cancel", ISSUE)[1]
    data = json.loads(cli("status", ISSUE, "--json")[1])
    assert data["counts"]["sent"] == 4 and data["counts"]["cancelled"] == 2


def test_user_mistakes_are_one_line_errors(cli, settings, engine) -> None:  # type: ignore[no-untyped-def]
    add_list(engine)
    code, out = cli("send", ISSUE)
    assert code == 7 and "--list" in out
    code, out = cli("send", ISSUE, "--list", "nope")
    assert code == 3 and "nope" in out
    code, out = cli("send", ISSUE, "--list", "shared-services", "--at", "next tuesday")
    assert code == 7 and "--at" in out
    code, out = cli("status", "never-sent")
    assert code == 3 and "never-sent" in out
