"""Run every check in order and hand back the list; the CLI decides how to show it."""

from __future__ import annotations

import dns.resolver
from sqlmodel import Session, select

from bulletin.config import Settings
from bulletin.db import make_engine
from bulletin.doctor.checks import check_database, check_public_url, check_smtp
from bulletin.doctor.mailauth import check_alignment, check_records, make_resolver
from bulletin.doctor.references import check_references
from bulletin.doctor.result import PASS, Check
from bulletin.doctor.secrets import check_secrets
from bulletin.models import MailingList


def run_checks(settings: Settings, *, timeout: float = 5.0, offline: bool = False,
               resolver: dns.resolver.Resolver | None = None) -> list[Check]:
    """Database, SMTP, public URL, secrets, From alignment, then SPF/DKIM/DMARC unless `offline`.

    `resolver` lets a caller point the DNS checks at a particular server.
    """
    checks = [check_database(settings, timeout)]
    if checks[0].status == PASS:
        checks.append(check_references(settings))
    from_domains = _from_domains(settings) if checks[0].status == PASS else []
    from_domains = from_domains or [settings.sending_domain]
    checks += [check_smtp(settings, min(timeout, settings.smtp_timeout)),
               check_public_url(settings, timeout),
               check_secrets(settings),
               check_alignment(settings, from_domains)]
    if offline:
        checks += [Check(name, "warn", "skipped: offline (--offline)", "run without --offline")
                   for name in ("spf", "dkim", "dmarc")]
    else:
        checks += check_records(settings, from_domains, resolver or make_resolver(min(timeout, 2.0)))
    return checks


def _from_domains(settings: Settings) -> list[str]:
    """The domains of the lists' From addresses, which DMARC judges; sorted, once each."""
    engine = make_engine(settings.effective_database_url, upgrade=False)
    try:
        with Session(engine) as session:
            addresses = session.exec(select(MailingList.from_address)).all()
    finally:
        engine.dispose()
    return sorted({a.rpartition("@")[2].lower() for a in addresses if "@" in a})
