"""What `bulletin send` (and a worker, before it starts an issue) proves before the first row is queued.

The same pre-send checks as `bulletin check` (an issue `check` rejects is never
sent), the list named in the issue's `lists` (or `--force-list`), and, when
mail goes out over SMTP, doctor's SPF/DKIM/DMARC alignment for the list's From
domain: 30,000 messages that Gmail junks for a missing DKIM key are worse than
a send that stops with the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.resolver
from sqlalchemy.engine import Engine

from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.errors import CheckFailed, DeliveryError
from bulletin.render.checks import CheckReport, check_compiled
from bulletin.render.compiled import Compiled


def require_checks(compiled: Compiled, where: str) -> CheckReport:
    """The report of `bulletin check`; CheckFailed (its exit code and summary) when it has errors."""
    report = check_compiled(compiled)
    if not report.ok:
        raise CheckFailed(f"{len(report.errors)} error(s) in pre-send checks: " + "; ".join(report.errors),
                          where=where)
    return report


def require_listed(engine: Engine, compiled: Compiled, list_slug: str, *, force_list: bool = False) -> None:
    """A list the issue does not name is a slip of the keyboard unless `--force-list` says it is meant.

    A list that does not exist at all is NotFound first: that is the more useful message.
    """
    from bulletin.audience.subscribers import get_list

    with session_scope(engine) as session:
        get_list(session, list_slug)
    if force_list or list_slug in compiled.lists:
        return
    named = ", ".join(compiled.lists) or "none"
    raise DeliveryError(f"list {list_slug!r} is not in the issue's lists ({named}); name one of them with "
                        "--list, or pass --force-list to send to it anyway", where=f"issue {compiled.slug!r}")


@dataclass(frozen=True)
class MailAuth:
    """What the mail-authentication gate found: failures stop the send; `skipped` is one warning line."""

    failures: list[str]
    skipped: str | None


def mail_auth(settings: Settings, engine: Engine, list_slug: str, *,
              resolver: dns.resolver.Resolver | None = None) -> MailAuth:
    """Doctor's alignment, SPF, DKIM and DMARC checks for the From domain of `list_slug`."""
    from bulletin.audience.subscribers import get_list
    from bulletin.doctor import FAIL, WARN
    from bulletin.doctor.mailauth import check_alignment, check_records, make_resolver

    with session_scope(engine) as session:
        from_address = get_list(session, list_slug).from_address
    domain = from_address.rpartition("@")[2].lower()
    if resolver is None:
        resolver = make_resolver(2.0)
        if settings.dns_server:
            host, _, port = settings.dns_server.partition(":")
            resolver.nameservers = [host]
            resolver.port = int(port or 53)
    checks = [check_alignment(settings, [domain]), *check_records(settings, [domain], resolver)]
    failures = [f"{c.name}: {c.detail}" + (f" (fix: {c.fix})" if c.fix else "") for c in checks if c.status == FAIL]
    skipped = [c.name for c in checks if c.status == WARN and "skipped" in c.detail]
    note = (f"SPF/DKIM/DMARC records of {domain} not checked ({', '.join(skipped)} skipped: offline); "
            "run `bulletin doctor` where DNS is reachable") if skipped else None
    return MailAuth(failures, note)


def require_mail_auth(settings: Settings, engine: Engine, list_slug: str, *, force: bool = False,
                      resolver: dns.resolver.Resolver | None = None) -> str | None:
    """Stop an SMTP send whose From domain fails authentication; returns a warning line, if any.

    `--force` or `relay_signs_dkim = true` (SES, Mailgun and others sign for you)
    let it through; the Maildir outbox sends nothing, so nothing is checked.
    """
    if settings.transport != "smtp" or settings.relay_signs_dkim:
        return None
    found = mail_auth(settings, engine, list_slug, resolver=resolver)
    if found.failures and not force:
        raise DeliveryError("mail authentication fails: " + "; ".join(found.failures)
                            + " (or pass --force, or set relay_signs_dkim = true if the relay signs)",
                            where=f"list {list_slug!r}")
    if found.failures:
        return "sending despite failing mail authentication (--force): " + "; ".join(found.failures)
    return found.skipped
