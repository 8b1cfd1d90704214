"""No header line bulletin writes is longer than RFC 5322's 998 characters, whatever the input's caps allow."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bulletin.config import load_settings
from bulletin.delivery.engine import make_skeleton
from bulletin.delivery.message import RecipientRow
from bulletin.messenger import simple_message
from bulletin.models import MailingList
from tests.delivery.conftest import make_compiled


def _longest_header_line(data: bytes) -> int:
    return max(len(line) for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"))


@pytest.mark.parametrize(("subject", "name"), [("x" * 1500, "y" * 200), ("Ünïcode words " * 120, "Ñ" * 200)])
def test_bulk_message_headers_fold_below_998(tmp_path: Path, subject: str, name: str) -> None:
    settings = load_settings(tmp_path, public_base_url="https://news.example.org/" + "p" * 300,
                             sending_domain="news.example.org")
    mlist = MailingList(id=1, slug="s" * 64, name="N" * 300, from_name="F" * 200,
                        from_address="bulletin@news.example.org", reply_to="reply@news.example.org")
    skeleton = make_skeleton(settings, replace(make_compiled(), subject=subject), mlist, 1)
    message = skeleton.build(RecipientRow(1, "a" * 64 + "@" + "b" * 60 + ".example.org", name, "<x@y>"))
    assert _longest_header_line(message.data) <= 998


def test_single_message_headers_fold_below_998(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, sending_domain="news.example.org")
    data, _ = simple_message(settings, to="a@example.org", subject="x" * 3000, text="body",
                             references=" ".join(f"<{i}.{'r' * 60}@example.org>" for i in range(40)))
    assert _longest_header_line(data) <= 998
