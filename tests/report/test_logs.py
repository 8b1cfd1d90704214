import io
import json
import logging

from bulletin.logs import REDACTED, configure_logging, log_event


def _capture() -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    return stream, configure_logging(logging.INFO, stream)


def test_log_event_writes_one_json_line_with_the_fields():
    stream, handler = _capture()
    try:
        log_event("bulletin.delivery", "send_batch", issue="2026-11", sent=40, failed=2)
    finally:
        logging.getLogger("bulletin").removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "send_batch"
    assert record["logger"] == "bulletin.delivery"
    assert (record["issue"], record["sent"], record["failed"]) == ("2026-11", 40, 2)
    assert record["ts"].endswith("+00:00")


def test_bodies_and_personal_data_are_redacted_but_the_address_stays():
    record = log_event("bulletin.inbound", "inbound_message", address="a@example.org",
                       body="Dear team, my phone is 0123", name="Alice Example", raw=b"x" * 10,
                       subject="Re: hello", ip="192.0.2.1")
    assert record["address"] == "a@example.org"
    for key in ("body", "name", "subject", "ip"):
        assert record[key] == REDACTED
    assert record["raw"] == REDACTED


def test_values_cannot_break_the_line_or_grow_without_bound():
    stream, handler = _capture()
    try:
        log_event("bulletin.audience", "state_change", detail="line1\r\nline2", reason="x" * 1000,
                   payload=b"abc")
    finally:
        logging.getLogger("bulletin").removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["detail"] == "line1  line2"
    assert len(record["reason"]) <= 201
    assert record["payload"] == "<3 bytes>"


def test_plain_log_records_come_out_in_the_same_json_shape():
    stream, handler = _capture()
    try:
        logging.getLogger("bulletin.web").warning("slow request %s", "/archive/")
    finally:
        logging.getLogger("bulletin").removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert (record["event"], record["level"], record["msg"]) == ("log", "warning", "slow request /archive/")


def test_configure_logging_is_idempotent():
    first = configure_logging(logging.INFO, io.StringIO())
    second = configure_logging(logging.INFO, io.StringIO())
    handlers = [h for h in logging.getLogger("bulletin").handlers if getattr(h, "_bulletin", False)]
    logging.getLogger("bulletin").removeHandler(second)
    assert handlers == [second] and first is not second
