"""Messenger fixtures: a real aiosmtpd sink on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smtp_sink import SmtpSink, smtp_sink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as s:
        yield s
