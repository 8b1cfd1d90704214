"""Structured one-line logs: one JSON object per send batch, inbound message and state change.

Operators grep and ship these lines, so each one must stand alone (time,
logger, event, fields) and must never carry a message body or personal data
beyond the address: the consent log in the database is the audit trail, the
log is for operations. Field names that usually hold bodies or personal data
are redacted here, once, rather than trusted to every caller.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

ROOT_LOGGER = "bulletin"
MAX_VALUE_CHARS = 200
REDACTED = "[redacted]"

# Keys that tend to hold bodies or personal data; their values never reach a log line.
FORBIDDEN_KEYS = frozenset({
    "body", "text", "html", "raw", "content", "message", "visible_text", "full_text",
    "name", "organisation", "subject", "attributes", "ip", "user_agent", "password",
    "token", "headers",
})


def log_event(logger_name: str, event: str, *, level: int = logging.INFO, **fields: Any) -> dict[str, Any]:
    """Log `event` with `fields` as one JSON line on `logger_name`; returns the record as logged.

    Callers pass only identifiers, counts, codes and the address; anything that
    looks like a body or personal data is replaced by "[redacted]".
    """
    record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "logger": logger_name, "event": event}
    record.update({key: _clean(key, value) for key, value in fields.items() if key not in record})
    logger = logging.getLogger(logger_name)
    if logger.isEnabledFor(level):  # the JSON line is written only where a handler will see it
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
        logger.log(level, line, extra={"bulletin_event": record})
    return record


def _clean(key: str, value: Any) -> Any:
    """One value made safe for a single log line: redacted, flattened, bounded."""
    if key.lower() in FORBIDDEN_KEYS:
        return REDACTED
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(key, v) for v in list(value)[:50]]
    if isinstance(value, dict):
        return {str(k): _clean(str(k), v) for k, v in list(value.items())[:50]}
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


class JsonLineFormatter(logging.Formatter):
    """Print `log_event` lines as they are; wrap any other record in the same JSON shape."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "bulletin_event", None) is not None:
            return record.getMessage()
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "logger": record.name,
            "event": "log",
            "level": record.levelname.lower(),
            "msg": _clean("msg", record.getMessage()),
        }
        if record.exc_info:
            out["error"] = _clean("error", repr(record.exc_info[1]))
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def configure_logging(level: int | str = logging.INFO, stream: IO[str] | None = None) -> logging.Handler:
    """Send the `bulletin` loggers to `stream` (default stderr) as JSON lines; idempotent.

    Called by the shells (CLI, web app, workers), never by a stage: libraries
    must not decide where logs go.
    """
    root = logging.getLogger(ROOT_LOGGER)
    for handler in list(root.handlers):
        if getattr(handler, "_bulletin", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    handler._bulletin = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return handler
