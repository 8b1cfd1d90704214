"""Whose fault a refusal is: by stage first, then by the enhanced status code and the words of the reply."""

from __future__ import annotations

import pytest

from bulletin.messenger import faults
from bulletin.messenger.faults import RECIPIENT, TEMPORARY, TRANSPORT, UNKNOWN, classify, reason


@pytest.mark.parametrize(("stage", "code", "text", "kind"), [
    ("rcpt", 550, "5.1.1 <a@b.org>: Recipient address rejected: User unknown", RECIPIENT),
    ("rcpt", 550, "Requested action not taken: mailbox unavailable", RECIPIENT),
    ("rcpt", 550, "5.2.1 The email account that you tried to reach is disabled", RECIPIENT),
    ("rcpt", 550, "5.7.1 Relaying denied", TRANSPORT),
    ("rcpt", 554, "5.7.1 <a@b.org>: Relay access denied", TRANSPORT),
    ("rcpt", 550, "Email address is not verified", TRANSPORT),
    ("rcpt", 552, "5.3.4 Message size exceeds fixed limit", TRANSPORT),
    ("rcpt", 450, "4.2.0 try again later", TEMPORARY),
    ("greeting", 554, "5.7.1 blocked", TRANSPORT),
    ("greeting", 421, "too busy", TRANSPORT),
    ("ehlo", 550, "go away", TRANSPORT),
    ("starttls", 454, "TLS not available", TRANSPORT),
    ("auth", 535, "5.7.8 credentials invalid", TRANSPORT),
    ("mail", 530, "5.7.0 Authentication required", TRANSPORT),
    ("mail", 451, "4.3.0 local error", TRANSPORT),
    ("connect", 0, "connection refused", TRANSPORT),
    ("data", 554, "5.5.1 no valid recipients", TRANSPORT),
    ("dot", 552, "5.3.4 Message too big", TRANSPORT),
    ("dot", 554, "5.7.1 Message rejected as spam", TRANSPORT),
    ("dot", 550, "5.1.1 user unknown", RECIPIENT),
    ("dot", 451, "4.3.0 try later", TEMPORARY),
    ("dot", 0, "connection closed", UNKNOWN),
])
def test_every_refusal_is_classified_by_stage_and_reply(stage: str, code: int, text: str, kind: str) -> None:
    assert classify(stage, code, text) == kind


def test_the_reason_names_the_stage_and_quotes_the_reply_on_one_line() -> None:
    assert reason(faults.MAIL, 530, "5.7.0 Authentication\n required") == \
        "relay refused MAIL FROM: 530 5.7.0 Authentication required"
    assert reason(faults.CONNECT, 0, "127.0.0.1:25: refused") == "relay unreachable: 127.0.0.1:25: refused"
