"""Checks of the things bulletin talks to: the database, the SMTP relay and the public web app."""

from __future__ import annotations

import smtplib
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bulletin.config import Settings
from bulletin.db import current_revision, head_revision, make_engine
from bulletin.doctor.result import FAIL, PASS, WARN, Check
from bulletin.errors import ConfigError

PROBE_TOKEN = "doctor-not-a-token"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def check_database(settings: Settings, timeout: float) -> Check:
    """Reachable, and at the migration level this code expects; never creates or upgrades."""
    url = make_url(settings.effective_database_url)
    shown = url.render_as_string(hide_password=True)
    if url.drivername.startswith("sqlite") and url.database and not Path(url.database).exists():
        return Check("database", WARN, f"{shown} does not exist yet",
                     "run `bulletin db upgrade` (SQLite is also created on first use)")
    if url.drivername.startswith("postgresql"):
        url = url.update_query_dict({"connect_timeout": str(max(1, int(timeout)))})
    try:
        engine = make_engine(url.render_as_string(hide_password=False), upgrade=False)
    except ConfigError as exc:
        return Check("database", FAIL, str(exc), "fix setting 'database_url' (BULLETIN_DATABASE_URL)")
    try:
        current, head = current_revision(engine), head_revision()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Check("database", FAIL, f"cannot reach {shown}: {reason}",
                     "start the database server or fix setting 'database_url' (BULLETIN_DATABASE_URL)")
    finally:
        engine.dispose()
    if current == head:
        return Check("database", PASS, f"{shown} reachable, schema at {head}")
    found = f"schema at {current}" if current else "empty database (no schema)"
    return Check("database", WARN, f"{shown} reachable, {found}; this version expects {head}",
                 "run `bulletin db upgrade`")


def check_smtp(settings: Settings, timeout: float) -> Check:
    """Connect, EHLO, STARTTLS when asked, and log in when credentials are set; sends nothing."""
    if settings.transport != "smtp":
        return Check("smtp", WARN, f"transport is maildir: messages stay in {settings.outbox_path}",
                     "set transport = \"smtp\" and smtp_host, smtp_port, smtp_security in bulletin.toml "
                     "to send for real")
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        greeting = _smtp_session(settings, timeout)
    except smtplib.SMTPAuthenticationError as exc:
        return Check("smtp", FAIL, f"{where} refused login as {settings.smtp_username!r}: "
                     f"{exc.smtp_code} {_text(exc.smtp_error)}",
                     "fix settings 'smtp_username' and 'smtp_password' (BULLETIN_SMTP_PASSWORD)")
    except smtplib.SMTPNotSupportedError as exc:
        return Check("smtp", FAIL, f"{where}: {exc}",
                     "set 'smtp_security' to what the server offers, or drop 'smtp_username'")
    except ssl.SSLError as exc:
        return Check("smtp", FAIL, f"{where}: TLS failed: {exc.reason or exc}",
                     "check 'smtp_security' (tls = port 465, starttls = port 587) and the server certificate")
    except smtplib.SMTPException as exc:
        return Check("smtp", FAIL, f"{where}: {exc}", "check the relay's logs and settings 'smtp_host', 'smtp_port'")
    except OSError as exc:
        return Check("smtp", FAIL, f"cannot connect to {where}: {exc.strerror or exc}",
                     "start the relay or fix settings 'smtp_host' and 'smtp_port'")
    auth = f", logged in as {settings.smtp_username}" if settings.smtp_username else ", no login configured"
    if settings.smtp_username and settings.smtp_security == "none" and settings.smtp_host not in LOOPBACK:
        return Check("smtp", WARN, f"{where} answered {greeting}{auth}, but the password travels unencrypted",
                     "set smtp_security = \"starttls\" (port 587) or \"tls\" (port 465)")
    return Check("smtp", PASS, f"{where} answered {greeting} ({settings.smtp_security}){auth}")


def _smtp_session(settings: Settings, timeout: float) -> int:
    host, port = settings.smtp_host, settings.smtp_port
    context = ssl.create_default_context()
    if settings.smtp_security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        code, _ = client.ehlo()
        if settings.smtp_security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password or "")
        client.noop()
    return code


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def check_public_url(settings: Settings, timeout: float) -> Check:
    """GET <base>/unsubscribe/<garbage>: bulletin answers a 4xx page, anything else is not bulletin."""
    url = f"{settings.public_base_url}/unsubscribe/{PROBE_TOKEN}"
    request = urllib.request.Request(url, headers={"User-Agent": "bulletin-doctor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the user's own URL
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("public_url", FAIL, f"nothing answers at {settings.public_base_url}: {reason}",
                     "run `bulletin serve` behind that address, or fix 'public_base_url'")
    if status == 404:
        return Check("public_url", FAIL, f"{url} answered 404: no unsubscribe endpoint there",
                     "point 'public_base_url' at bulletin's web app (the links in every message use it)")
    if status >= 500:
        return Check("public_url", FAIL, f"{url} answered {status}", "see the web app's log")
    if status < 400:
        return Check("public_url", WARN, f"{url} answered {status} to a forged token",
                     "make sure 'public_base_url' points at bulletin's web app, not another site")
    return _scheme_check(settings, f"{url} rejects a forged token ({status}): the endpoint is served")


def _scheme_check(settings: Settings, detail: str) -> Check:
    parts = urlsplit(settings.public_base_url)
    if parts.scheme != "https" and (parts.hostname or "") not in LOOPBACK:
        return Check("public_url", WARN, detail + ", but over plain http",
                     "serve it over https: Gmail and Yahoo want one-click unsubscribe (RFC 8058) on https")
    return Check("public_url", PASS, detail)
