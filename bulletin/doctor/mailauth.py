"""SPF, DKIM and DMARC of the sending domain against the From domains (Gmail/Yahoo bulk rules).

Since 2024 Gmail and Yahoo ask bulk senders for SPF and DKIM on the sending
domain, a DMARC record (p=none is enough) on the From domain, and the From
domain aligned with the SPF or DKIM domain. Alignment is a property of the
settings and is checked offline; the records need DNS, and when the resolver
cannot reach the root the record checks warn "skipped: offline" within a second
or two instead of hanging.
"""

from __future__ import annotations

import base64
from pathlib import Path

import dns.exception
import dns.resolver

from bulletin.config import Settings
from bulletin.doctor.result import FAIL, PASS, WARN, Check

# Public suffixes with two labels that UK councils and others meet; a full PSL is overkill here.
TWO_LABEL_SUFFIXES = {"gov.uk", "org.uk", "co.uk", "ac.uk", "ltd.uk", "plc.uk", "nhs.uk", "police.uk",
                      "com.au", "gov.au", "co.nz", "govt.nz", "co.jp", "com.br"}


def make_resolver(timeout: float) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    return resolver


def is_online(resolver: dns.resolver.Resolver) -> bool:
    """The root zone always has NS records; a resolver that cannot find them is offline or boxed in."""
    try:
        return bool(resolver.resolve(".", "NS"))
    except (dns.exception.DNSException, OSError):
        return False


def txt_records(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """TXT strings at `name` (multi-string records joined); [] when the name or record is absent."""
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]


def org_domain(domain: str) -> str:
    """Organisational domain for relaxed alignment: the registrable part of the name."""
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in TWO_LABEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def check_alignment(settings: Settings, from_domains: list[str]) -> Check:
    """DMARC passes only if each From domain aligns with the SPF domain or the DKIM domain.

    The envelope sender (SPF) is at 'sending_domain'; delivery signs with d= the
    From domain, so DKIM aligns by construction once a key is configured.
    """
    sending = settings.sending_domain.lower()
    off = [d for d in from_domains if org_domain(d) != org_domain(sending)]
    if not off:
        return Check("alignment", PASS, f"From domain(s) {', '.join(from_domains)} align with SPF domain {sending}")
    if settings.dkim_key_path is not None:
        return Check("alignment", PASS, f"From domain(s) {', '.join(off)} align through DKIM (d= the From "
                     f"domain); SPF domain {sending} does not align")
    return Check("alignment", FAIL,
                 f"From domain(s) {', '.join(off)} align with neither SPF domain {sending} nor a DKIM "
                 "signature: DMARC fails and Gmail/Yahoo reject or junk bulk mail",
                 f"set 'dkim_key_path' (messages are then signed as the From domain), or send from an "
                 f"address at {org_domain(sending)} (lists.toml from_address)")


def check_records(settings: Settings, from_domains: list[str], resolver: dns.resolver.Resolver) -> list[Check]:
    """SPF, DKIM and DMARC checks; all three warn "skipped: offline" when DNS is out of reach."""
    if not is_online(resolver):
        fix = "run `bulletin doctor` again on a machine with DNS access"
        return [Check(name, WARN, "skipped: offline", fix) for name in ("spf", "dkim", "dmarc")]
    try:
        return [check_spf(settings, resolver),
                *[check_dkim(settings, d, resolver) for d in from_domains],
                *[check_dmarc(d, resolver) for d in from_domains]]
    except (dns.exception.DNSException, OSError) as exc:
        return [Check("dns", WARN, f"DNS lookups failed part-way: {exc}", "try again; check the resolver")]


def check_spf(settings: Settings, resolver: dns.resolver.Resolver) -> Check:
    domain = settings.sending_domain
    records = [r for r in txt_records(resolver, domain) if r.lower().startswith("v=spf1")]
    fix = f'publish one TXT record at {domain}: "v=spf1 include:<your relay> ~all"'
    if not records:
        return Check("spf", FAIL, f"no SPF record at {domain} (the envelope sender's domain)", fix)
    if len(records) > 1:
        return Check("spf", FAIL, f"{len(records)} SPF records at {domain}: receivers treat that as an error",
                     "merge them into one v=spf1 record")
    if records[0].split()[-1].lower() in ("+all", "all"):
        return Check("spf", WARN, f"SPF at {domain} ends in +all: anyone may send as you",
                     "end the record with ~all or -all")
    return Check("spf", PASS, f"SPF at {domain}: {records[0]}")


def check_dkim(settings: Settings, from_domain: str, resolver: dns.resolver.Resolver) -> Check:
    """The key delivery signs with (d= the From domain) is published and matches the key file."""
    name = f"{settings.dkim_selector}._domainkey.{from_domain}"
    if settings.dkim_key_path is None:
        return Check("dkim", FAIL, "messages are not DKIM-signed ('dkim_key_path' is not set)",
                     f"generate a key, set 'dkim_key_path', and publish its public key as TXT at {name}")
    key_path = settings.path(settings.dkim_key_path)
    if not key_path.is_file():
        return Check("dkim", FAIL, f"dkim_key_path {key_path} does not exist", "fix 'dkim_key_path'")
    records = [r for r in txt_records(resolver, name) if "p=" in r]
    if not records:
        return Check("dkim", FAIL, f"no DKIM key at {name}", f"publish the public key of {key_path} at {name}")
    public = _tag(records[0], "p")
    if not public:
        return Check("dkim", FAIL, f"the DKIM key at {name} is revoked (empty p=)", f"publish the key at {name}")
    if not _same_rsa_key(key_path, public):
        return Check("dkim", FAIL, f"the key at {name} does not match {key_path}",
                     f"publish the public key of {key_path}, or set 'dkim_selector' to the right one")
    return Check("dkim", PASS, f"DKIM key at {name} matches {key_path.name}")


def check_dmarc(from_domain: str, resolver: dns.resolver.Resolver) -> Check:
    for candidate in dict.fromkeys((from_domain, org_domain(from_domain))):
        records = [r for r in txt_records(resolver, f"_dmarc.{candidate}") if r.lower().startswith("v=dmarc1")]
        if records:
            policy = _tag(records[0], "p") or "?"
            if policy not in ("none", "quarantine", "reject"):
                return Check("dmarc", FAIL, f"DMARC at _dmarc.{candidate} has no valid p= tag",
                             "set p=none, p=quarantine or p=reject")
            return Check("dmarc", PASS, f"DMARC for {from_domain} at _dmarc.{candidate}: p={policy}")
    return Check("dmarc", FAIL, f"no DMARC record for From domain {from_domain}",
                 f'publish TXT at _dmarc.{org_domain(from_domain)}: "v=DMARC1; p=none; rua=mailto:dmarc@'
                 f'{org_domain(from_domain)}" (Gmail/Yahoo require one from bulk senders)')


def _tag(record: str, tag: str) -> str:
    for part in record.split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == tag:
            return "".join(value.split())
    return ""


def _same_rsa_key(key_path: Path, public_b64: str) -> bool:
    """Compare moduli of the private key file and the published key; non-RSA keys pass on presence."""
    from dkim.crypto import UnparsableKeyError, parse_pem_private_key, parse_public_key

    try:
        private = parse_pem_private_key(key_path.read_bytes())
        public = parse_public_key(base64.b64decode(public_b64))
    except (UnparsableKeyError, ValueError, TypeError):
        return True
    return private["modulus"] == public["modulus"]
