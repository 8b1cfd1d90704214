"""The bulletins themselves: `subscribers/lists.toml` is the source, the table follows it.

Sync adds and updates lists and reports every field it changed; a list that
disappeared from the file is reported, never deleted, because subscriptions and
the consent log point at it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from bulletin.audience.addresses import has_control_chars, normalise_address
from bulletin.audience.subscribers import state_counts
from bulletin.errors import AddressError, ConfigError, location
from bulletin.messenger import format_address
from bulletin.models import MailingList, id_of, utcnow
from bulletin.statuses import SubscriptionState

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
FIELDS = ("name", "description", "from_name", "from_address", "reply_to", "organisation", "postal_address",
          "double_opt_in", "archive_public", "public_signup")
REQUIRED = ("name", "from_name", "from_address")


@dataclass(frozen=True)
class ListSpec:
    """One `[[list]]` entry of lists.toml, checked."""

    slug: str
    name: str
    from_name: str
    from_address: str
    description: str = ""
    reply_to: str | None = None
    organisation: str = ""
    postal_address: str = ""
    double_opt_in: bool = True
    archive_public: bool = True
    public_signup: bool = True  # offered on the public /signup page; defaults to double_opt_in


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: dict[str, dict[str, tuple[object, object]]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    not_in_file: list[str] = field(default_factory=list)  # kept in the database, reported


def sender_name(from_name: str, organisation: str) -> str:
    """The From name names the organisation too, `Team, Organisation` (once), and the same way in
    every mail of a list (the issue, the confirmation, an answer to feedback): people trust and
    filter by the name they saw first, and a bare team name says little in a crowded inbox."""
    if not organisation or organisation.casefold() in from_name.casefold():
        return from_name
    return f"{from_name}, {organisation}"


def list_from(ml: MailingList, organisation: str = "") -> str:
    """The From of a list's notices: its sender name, with the list's organisation or else the
    workspace's (`organisation`, as its issues have it), and its From address."""
    return format_address(sender_name(ml.from_name, ml.organisation or organisation), ml.from_address)


def lists_file(subscribers_dir: Path) -> Path:
    return subscribers_dir / "lists.toml"


def load_lists(path: Path) -> list[ListSpec]:
    """Parse and check lists.toml; ConfigError names the file and the list or field at fault."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found: this folder is not a bulletin workspace yet; run `bulletin init` "
                          "here (or `bulletin -w DIR ...` to use another), or pass --file", where=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(exc), where=str(path)) from None
    entries = data.get("list")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("expected one or more [[list]] tables", where=str(path))
    specs: list[ListSpec] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries, start=1):
        spec = _spec(path, n, entry)
        if spec.slug in seen:
            raise ConfigError(f"list {spec.slug!r} is defined twice", where=str(path))
        seen.add(spec.slug)
        specs.append(spec)
    return specs


def _spec(path: Path, n: int, entry: object) -> ListSpec:
    where = f"{path}: list #{n}"
    if not isinstance(entry, dict):
        raise ConfigError("must be a table", where=where)
    slug = entry.get("slug")
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise ConfigError("needs a 'slug' of lower-case letters, digits and '-'", where=location(where, None, "slug"))
    where = f"{path}: list {slug!r}"
    unknown = set(entry) - set(FIELDS) - {"slug", "brand"}  # brand: read by render.brand at build time
    if unknown:
        raise ConfigError(f"unknown field(s): {', '.join(sorted(unknown))}", where=where)
    for name in REQUIRED:
        if not isinstance(entry.get(name), str) or not entry[name].strip():
            raise ConfigError("is required (a non-empty string)", where=location(where, None, name))
    for name in ("name", "description", "from_name", "organisation", "postal_address"):
        value = entry.get(name, "")
        multiline = name in ("description", "postal_address")
        if not isinstance(value, str) or has_control_chars(value.replace("\n", " ") if multiline else value):
            raise ConfigError("must be text without control characters", where=location(where, None, name))
    for name in ("double_opt_in", "archive_public", "public_signup"):
        if name in entry and not isinstance(entry[name], bool):
            raise ConfigError("must be true or false", where=location(where, None, name))
    try:
        from_address = normalise_address(entry["from_address"])
        reply_to = normalise_address(entry["reply_to"]) if entry.get("reply_to") else None
    except AddressError as exc:
        raise ConfigError(str(exc), where=where) from None
    return ListSpec(slug=slug, name=entry["name"].strip(), from_name=entry["from_name"].strip(),
                    from_address=from_address, description=entry.get("description", "").strip(),
                    reply_to=reply_to, organisation=entry.get("organisation", "").strip(),
                    postal_address=one_line_address(entry.get("postal_address", "")),
                    double_opt_in=entry.get("double_opt_in", True),
                    archive_public=entry.get("archive_public", True),
                    public_signup=entry.get("public_signup", entry.get("double_opt_in", True)))


def one_line_address(value: str) -> str:
    """A postal address written over several lines becomes one line, as footers show it."""
    return ", ".join(part.strip() for part in value.replace(",", "\n").splitlines() if part.strip())


def check_public_signup(specs: list[ListSpec], *, allow_single_opt_in: bool, where: str = "lists.toml") -> None:
    """Refuse a public single-opt-in list unless the operator insists: anyone could add any address to it."""
    for spec in specs:
        if spec.public_signup and not spec.double_opt_in and not allow_single_opt_in:
            raise ConfigError("public_signup = true on a list without double_opt_in lets anyone subscribe any "
                              "address without asking its owner; pass --allow-single-opt-in to do it anyway",
                              where=location(f"{where}: list {spec.slug!r}", None, "public_signup"))


def sync_lists(session: Session, specs: list[ListSpec], *, dry_run: bool = False,
               allow_single_opt_in: bool = False) -> SyncReport:
    """Make the table match the specs (add, update); report what changed and what is not in the file."""
    check_public_signup(specs, allow_single_opt_in=allow_single_opt_in)
    report = SyncReport()
    existing = {m.slug: m for m in session.exec(select(MailingList)).all()}
    for spec in specs:
        row = existing.get(spec.slug)
        if row is None:
            report.added.append(spec.slug)
            if not dry_run:
                session.add(MailingList(slug=spec.slug, **{f: getattr(spec, f) for f in FIELDS}))
            continue
        diff = {f: (getattr(row, f), getattr(spec, f)) for f in FIELDS if getattr(row, f) != getattr(spec, f)}
        if not diff:
            report.unchanged.append(spec.slug)
            continue
        report.changed[spec.slug] = diff
        if not dry_run:
            for f, (_old, new) in diff.items():
                setattr(row, f, new)
            row.updated_at = utcnow()
            session.add(row)
    in_file = {s.slug for s in specs}
    report.not_in_file = sorted(slug for slug in existing if slug not in in_file)
    session.flush()
    return report


def all_lists(session: Session) -> list[MailingList]:
    return list(session.exec(select(MailingList).order_by(MailingList.slug)).all())


@dataclass(frozen=True)
class ListOverview:
    slug: str
    name: str
    double_opt_in: bool
    archive_public: bool
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def overview(session: Session) -> list[ListOverview]:
    """Each list with its subscription counts by state (every state present, zeros included)."""
    counts = state_counts(session)
    return [
        ListOverview(m.slug, m.name, m.double_opt_in, m.archive_public,
                     {state: counts.get(id_of(m), {}).get(state, 0) for state in SubscriptionState.ALL})
        for m in all_lists(session)
    ]


def sync_file(session: Session, path: Path, *, dry_run: bool = False, allow_single_opt_in: bool = False) -> SyncReport:
    """Load lists.toml and sync it (what `bulletin lists sync` does)."""
    specs = load_lists(path)
    check_public_signup(specs, allow_single_opt_in=allow_single_opt_in, where=str(path))
    return sync_lists(session, specs, dry_run=dry_run, allow_single_opt_in=allow_single_opt_in)
