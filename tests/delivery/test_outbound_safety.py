"""Misbehaving relays (tests/bad_smtp.py) through `bulletin send`: whose fault, pause, and no second copy.

For each failure mode the test checks which subscriptions changed (only a
recipient's own 5.1.1 may), how many copies each recipient got (one, except
rows left `unknown`), the send's state and the command's exit code.
"""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.models import Delivery, Subscriber, Subscription
from tests.bad_smtp import BadRelay, bad_relay
from tests.conftest import cli_runner
from tests.delivery.conftest import add_list, add_subscribers

ISSUE = "2016-shared-service-map"
N = 5


def _cli(settings: Settings, relay: BadRelay, **extra: str):  # type: ignore[no-untyped-def]
    env = {"BULLETIN_DATABASE_URL": settings.effective_database_url,
           "BULLETIN_PUBLIC_BASE_URL": settings.public_base_url,
           "BULLETIN_SENDING_DOMAIN": settings.sending_domain,
           "BULLETIN_TRANSPORT": "smtp", "BULLETIN_SMTP_HOST": relay.host, "BULLETIN_SMTP_PORT": str(relay.port),
           "BULLETIN_SMTP_CONNECTIONS": "2", "BULLETIN_SMTP_TIMEOUT": "10", "BULLETIN_RELAY_SIGNS_DKIM": "true",
           **extra}
    return cli_runner(settings, env)


def _subscriptions(engine) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        rows = session.exec(select(Subscriber.email, Subscription.state).join(
            Subscription, Subscription.subscriber_id == Subscriber.id)).all()
    return {e: s for e, s in rows}


def _rows(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        out: dict[str, int] = {}
        for d in session.exec(select(Delivery)).all():
            out[d.state] = out.get(d.state, 0) + 1
        return out


def _status(cli) -> dict:  # type: ignore[no-untyped-def]
    code, out = cli("status", ISSUE, "--json")
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def people(engine) -> list[str]:  # type: ignore[no-untyped-def]
    return add_subscribers(engine, add_list(engine), N)


REFUSALS = [
    ({"mail_reply": "530 5.7.0 Authentication required"}, "relay refused MAIL FROM: 530 5.7.0 Authentication required"),
    ({"greeting": "554 5.7.1 bad-relay.test: your IP is on a blocklist"}, "relay refused the connection: 554 5.7.1"),
    ({"dot_reply": "552 5.3.4 Message size exceeds fixed limit"}, "relay refused the message: 552 5.3.4"),
    ({"rcpt_reply": "550 5.7.1 Relaying denied"}, "relay refused RCPT TO: 550 5.7.1 Relaying denied"),
    ({"mail_reply": "554 5.7.1 Email address is not verified"}, "relay refused MAIL FROM: 554 5.7.1 Email address"),
]


@pytest.mark.parametrize(("rules", "reason"), REFUSALS, ids=["530-mail", "554-greeting", "552-dot", "relaying-denied",
                                                             "ses-not-verified"])
def test_a_refusing_relay_pauses_the_send_bounces_nobody_and_resume_finishes(settings, engine, people, rules,
                                                                             reason) -> None:  # type: ignore[no-untyped-def]
    before = _subscriptions(engine)
    with bad_relay(**rules) as relay:
        cli = _cli(settings, relay)
        code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet")
        assert code == 7 and out.startswith("paused: ") and reason in out, out
        assert relay.copies() == {}
        assert _subscriptions(engine) == before, "a relay's refusal never touches a subscription"
        assert _rows(engine) == {"queued": N}
        status = _status(cli)
        assert status["sends"][0]["status"] == "paused" and reason in status["sends"][0]["pause_reason"]
        code, text = cli("status", ISSUE)
        assert f"paused: {reason}" in " ".join(text.split())
    with bad_relay() as fixed:
        code, out = _cli(settings, fixed)("resume", ISSUE, "--quiet")
        assert code == 0, out
        assert fixed.copies() == {p: 1 for p in people}
    assert _rows(engine) == {"sent": N} and _subscriptions(engine) == before


def test_a_refused_login_pauses_at_once(settings, engine, people) -> None:  # type: ignore[no-untyped-def]
    from bulletin.delivery import service
    from bulletin.messenger import SendResult, SMTPConfig, faults
    from bulletin.messenger.smtp import SMTPPool
    from bulletin.render.build import compile_issue

    class RefusesLogin(SMTPPool):
        calls = 0

        def send(self, envelope_from, recipients, message, message_id, **kw):  # type: ignore[no-untyped-def]
            RefusesLogin.calls += 1
            return SendResult.from_code(535, "5.7.8 Authentication credentials invalid", faults.AUTH)

    with bad_relay() as relay:
        s = settings.model_copy(update={"transport": "smtp", "smtp_host": relay.host, "smtp_port": relay.port})
        queued = service.queue_issue(engine, s, compile_issue(s, ISSUE), "shared-services")
        pool = RefusesLogin(SMTPConfig.from_settings(s), connections=1)
        tally = service.send_queued(engine, s, [queued.send_id], transport=pool)
    assert RefusesLogin.calls == 1 and tally.paused and tally.paused.startswith("relay refused AUTH: 535")
    assert service.paused_reasons(engine, [queued.send_id]) == [tally.paused]


def test_a_refused_mailbox_bounces_only_that_subscriber(settings, engine, people) -> None:  # type: ignore[no-untyped-def]
    gone = people[2]
    before = _subscriptions(engine)
    with bad_relay(rcpt_replies={gone: f"550 5.1.1 <{gone}>: Recipient address rejected: User unknown"}) as relay:
        cli = _cli(settings, relay)
        code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet")
        assert code == 0, out
        assert relay.copies() == {p: 1 for p in people if p != gone}
    after = _subscriptions(engine)
    assert {e for e in after if after[e] != before[e]} == {gone} and after[gone] == "bounced"
    assert _rows(engine) == {"sent": N - 1, "failed": 1}
    assert _status(cli)["sends"][0]["status"] == "done"
    code, out = cli("report", ISSUE, "--json")
    report = json.loads(out)
    assert (report["recipients"], report["attempted"], report["failed"], report["hard_bounces"]) == (N, N, 1, 1)
    assert report["hard_bounce_rate"] == round(1 / N, 6), "the refused recipient is in the denominator too"


def test_a_slow_final_dot_reply_is_waited_for_not_resent(settings, engine, people) -> None:  # type: ignore[no-untyped-def]
    with bad_relay(dot_delay=3.0) as relay:
        cli = _cli(settings, relay, BULLETIN_SMTP_TIMEOUT="2", BULLETIN_SMTP_CONNECTIONS=str(N))
        code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet")
        assert code == 0, out
        assert relay.copies() == {p: 1 for p in people}
    assert _rows(engine) == {"sent": N}


def test_a_drop_after_the_final_dot_leaves_rows_unknown_until_the_operator_asks(settings, engine,
                                                                                people) -> None:  # type: ignore[no-untyped-def]
    before = _subscriptions(engine)
    with bad_relay(drop_after_dot=1) as relay:
        cli = _cli(settings, relay)
        code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet")
        assert code == 0, out
        assert "resend-unknown" in out
        assert relay.copies() == {p: 1 for p in people}
        assert _rows(engine) == {"unknown": N} and _status(cli)["counts"]["unknown"] == N
        code, out = cli("resume", ISSUE, "--quiet")
        assert relay.copies() == {p: 1 for p in people}, "plain resume never resends an unknown row"
        first_ids = {d for _, d in relay.accepted}
    with bad_relay() as fixed:
        code, out = _cli(settings, fixed)("resume", ISSUE, "--resend-unknown", "--quiet")
        assert code == 0, out
        assert fixed.copies() == {p: 1 for p in people}
        assert _message_ids(fixed) == _message_ids_of(first_ids)
    assert _rows(engine) == {"sent": N} and _subscriptions(engine) == before


def _message_ids(relay: BadRelay) -> set[str]:
    return _message_ids_of({d for _, d in relay.accepted})


def _message_ids_of(datas: set[bytes]) -> set[str]:
    import email

    return {str(email.message_from_bytes(d)["Message-ID"]) for d in datas}


def test_421_every_third_message_still_gives_everyone_one_copy(settings, engine, people) -> None:  # type: ignore[no-untyped-def]
    before = _subscriptions(engine)
    with bad_relay(fail_every=3) as relay:
        cli = _cli(settings, relay, BULLETIN_SMTP_CONNECTIONS="1")
        code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet", "--retry-after", "0.01", "--wait", "20")
        assert code == 0, out
        assert relay.copies() == {p: 1 for p in people} and relay.messages > N
    assert _rows(engine) == {"sent": N} and _subscriptions(engine) == before
    assert _status(cli)["sends"][0]["status"] == "done"


def test_the_breaker_pauses_a_multi_process_send_and_a_worker(settings, engine, people) -> None:  # type: ignore[no-untyped-def]
    from bulletin.delivery import service

    before = _subscriptions(engine)
    with bad_relay(mail_reply="530 5.7.0 Authentication required") as relay:
        cli = _cli(settings, relay)
        code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet", "--processes", "2")
        assert code == 7 and "relay refused MAIL FROM: 530" in out, out
        code, out = cli("send", ISSUE, "--list", "shared-services", "--queue-only")
        assert code == 0, out
        s = settings.model_copy(update={"transport": "smtp", "smtp_host": relay.host, "smtp_port": relay.port,
                                        "relay_signs_dkim": True})
        service.run_worker(engine, s, once=True)
        assert _status(cli)["sends"][0]["status"] == "paused"
        assert relay.copies() == {}
    assert _rows(engine) == {"queued": N} and _subscriptions(engine) == before
