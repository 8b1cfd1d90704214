"""Settings: `bulletin.toml` in the workspace, overridden by `BULLETIN_*` variables.

Settings are loaded once by the shell (CLI or web app) and passed down
explicitly; no stage reads the environment by itself, so tests can run several
workspaces side by side.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bulletin.errors import ConfigError, mask_secrets
from bulletin.render.brand import Brand

CONFIG_FILE = "bulletin.toml"
STATE_DIR = ".bulletin"


CONNECTIONS_PER_PROCESS = 4


def default_send_processes(connections: int) -> int:
    """A sending process per four SMTP connections, at most one per core (and 4).

    One process keeps four connections busy with a core to spare: on 2 cores
    (bench/send.py, 20,000 x 63 KB to smtp-sink, stop 30) one process with the
    default 4 connections sent 3,000-3,200 msg/s with a PostgreSQL ledger and
    3,370 with SQLite, two processes splitting the same 4 connections 2,830-2,880
    and 3,110-3,150: a second process only splits the ledger writer's group
    commits and adds a second set of threads to schedule. More connections than
    one process can fill get more processes.
    """
    return max(1, min(usable_cores(), 4, connections // CONNECTIONS_PER_PROCESS))


def usable_cores() -> int:
    """The cores this process may run on (a container's --cpuset-cpus, taskset), not the host's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


class Settings(BaseSettings):
    """Effective settings of one workspace."""

    model_config = SettingsConfigDict(env_prefix="BULLETIN_", extra="forbid")

    workspace: Path = Field(default=Path("."), description="Folder holding content/, subscribers/, bulletin.toml")
    organisation: str = Field(default="", description="Who sends the bulletins, for lists.toml entries without one: "
                              "shown in every email's footer and From name")
    postal_address: str = Field(default="", description="Postal address shown in the footer (the law wants one in "
                                "marketing mail), for lists.toml entries without one")
    timezone: str = Field(default="Europe/London", description="IANA time zone of --at times and of times shown")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in .bulletin/")
    transport: Literal["maildir", "smtp"] = "maildir"
    outbox: Path | None = Field(default=None, description="Maildir outbox; default .bulletin/outbox")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_connections: int = Field(default=4, ge=1, le=64)
    smtp_rate: float = Field(default=0.0, ge=0, description="Messages per second; 0 = unlimited")
    smtp_timeout: float = Field(default=30.0, gt=0)
    smtp_data_done_timeout: float = Field(default=600.0, gt=0,
                                          description="Seconds to wait for the reply to the final dot (RFC 5321: 10 min)")
    max_transport_errors: int = Field(default=10, ge=1,
                                      description="Consecutive relay refusals that pause a send")
    relay_signs_dkim: bool = Field(default=False, description="The relay DKIM-signs for us (SES, Mailgun...)")
    dns_server: str | None = Field(default=None, description="DNS server (host or host:port) for mail checks")
    ledger_flush_wait: bool = Field(default=False, description="PostgreSQL: wait for the WAL flush of every "
                                    "group of sent marks (synchronous_commit); off, a database-server or OS crash "
                                    "can lose the last fraction of a second of marks and resend those messages")
    send_processes: int = Field(default=1, ge=1, le=32,
                                description="Sending processes on this machine (default: one per 4 smtp_connections, "
                                "at most one per core and 4)")
    sending_domain: str = "bulletin.localhost"
    public_base_url: str = "http://127.0.0.1:8000"
    trusted_proxies: list[str] = Field(default_factory=list, description="CIDRs of reverse proxies whose "
                                       "X-Forwarded-For the web app believes; default none")
    reply_local: str = "reply"
    bounce_local: str = "bounces"
    secret_keys: list[str] = Field(default_factory=list, description="Signing keys, newest first")
    address_key: str | None = Field(default=None, description="Key of the suppression hashes (HMAC), never "
                                    "rotated; default: made on first run in .bulletin/address_key.json")
    dkim_key_path: Path | None = None
    dkim_selector: str = "bulletin"
    content_dir: Path = Path("content")
    build_dir: Path = Path("build")
    subscribers_dir: Path = Path("subscribers")
    templates_dir: Path = Field(default=Path("templates"),
                                description="The workspace's own templates, searched before the packaged ones, file by file")
    defer_deadline_hours: float = Field(default=72.0, gt=0)
    soft_bounce_threshold: int = Field(default=3, ge=1, description="Unused since bounce_score_threshold (kept so old files load)")
    soft_bounce_window_days: int = Field(default=30, ge=1, description="Unused since bounce_info_stale_after_days")
    bounce_score_threshold: int = Field(default=5, ge=1, description="Bounce score at which a subscriber is marked bounced; "
                                        "a soft bounce adds one point per day at most, an authenticated hard bounce sets it here")
    bounce_info_stale_after_days: int = Field(default=7, ge=1, description="Days without a bounce after which the score starts again from 0")
    inbound_batch_size: int = Field(default=200, ge=1, le=10000, description="Messages stored and processed per "
                                    "transaction by --maildir, --mbox and --imap (each acknowledged after its commit)")
    ses_sns_certificates: list[Path] = Field(default_factory=list, description="PEM files of the Amazon SNS signing "
                                             "certificates; an SES notice by mail is trusted only when its signature verifies")
    imap_host: str = "127.0.0.1"
    imap_port: int = 993
    imap_ssl: bool = True
    imap_username: str | None = None
    imap_password: str | None = None
    imap_folder: str = "INBOX"
    imap_done_folder: str = "bulletin-processed"
    brand: Brand = Field(default_factory=Brand, description="Logo, colours, font and footer line ([brand] table)")

    @model_validator(mode="after")
    def _processes_for_connections(self) -> Settings:
        if "send_processes" not in self.model_fields_set:
            self.send_processes = default_send_processes(self.smtp_connections)
        return self

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/London, America/New_York)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for cidr in value:
            try:
                ipaddress.ip_network(cidr.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP address or CIDR network") from None
        return [c.strip() for c in value]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The toml file lives in the workspace being loaded, which arrives as an init argument.
        given = getattr(init_settings, "init_kwargs", {}).get("workspace")
        workspace = Path(given or os.environ.get("BULLETIN_WORKSPACE", "."))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, workspace / CONFIG_FILE))

    # Paths resolved against the workspace -------------------------------------------------
    def path(self, p: Path) -> Path:
        return p if p.is_absolute() else (self.workspace / p)

    @property
    def state_dir(self) -> Path:
        return self.workspace / STATE_DIR

    @property
    def outbox_path(self) -> Path:
        return self.path(self.outbox) if self.outbox else self.state_dir / "outbox"

    @property
    def templates_path(self) -> Path:
        """The workspace's override folder (it need not exist); see render.templating.template_loader."""
        return self.path(self.templates_dir)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'bulletin.db').resolve()}"


def default_templates_dir() -> Path:
    """The packaged templates (inside the wheel, or the checkout's templates/)."""
    from bulletin.defaults import defaults_dir

    return defaults_dir("templates")


def load_settings(workspace: Path | None = None, *, create_state: bool = True, **overrides: object) -> Settings:
    """Load settings for a workspace; bad values raise one `ConfigError` naming the setting.

    `create_state=False` is for commands that only look (config show, doctor,
    lists): they read an existing signing key but never create `.bulletin/`.
    """
    ws = Path(workspace or os.environ.get("BULLETIN_WORKSPACE", ".")).resolve()
    toml_file = ws / CONFIG_FILE
    try:
        settings = Settings(**{"workspace": ws, **overrides})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        env = f"BULLETIN_{name.split('.')[0].upper()}"
        raise ConfigError(f"setting '{name}' ({env}): {err['msg']}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"{toml_file}: {exc}") from None
    update: dict[str, object] = {}
    if not settings.secret_keys:
        keys = ensure_secret_keys(settings.state_dir) if create_state else existing_secret_keys(settings.state_dir)
        update["secret_keys"] = keys
    if not settings.address_key:
        made = ensure_address_key(settings.state_dir) if create_state else existing_address_key(settings.state_dir)
        update["address_key"] = made
    return settings.model_copy(update=update) if update else settings


def existing_secret_keys(state_dir: Path) -> list[str]:
    key_file = state_dir / "secret_keys.json"
    return list(json.loads(key_file.read_text())) if key_file.exists() else []


def ensure_secret_keys(state_dir: Path) -> list[str]:
    """Generate the signing key on first run and keep it in the state folder, outside git."""
    return _read_keys(_ensure_secret_file(state_dir / "secret_keys.json", [secrets.token_urlsafe(32)]))


def existing_address_key(state_dir: Path) -> str | None:
    key_file = state_dir / "address_key.json"
    return _read_address_key(key_file) if key_file.exists() else None


def ensure_address_key(state_dir: Path) -> str:
    """The key of the suppression hashes: apart from the signing keys because it must never rotate
    (a rotated key would forget every suppressed address), and outside the database so a dump of it
    cannot confirm a guessed address."""
    return _read_address_key(_ensure_secret_file(state_dir / "address_key.json", secrets.token_urlsafe(32)))


def _ensure_secret_file(key_file: Path, value: object) -> Path:
    """Write `value` as JSON to `key_file` once, whoever gets there first.

    Eight processes starting together must end with one key: the first to take
    the lock writes it (exclusive 0600 create of a temporary file, then an atomic
    rename), the others wait and read it; a reader never sees half a file.
    """
    if key_file.exists():
        return key_file
    key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = os.open(key_file.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if key_file.exists():
            return key_file
        tmp = key_file.with_name(f"{key_file.stem}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(value))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, key_file)
        return key_file
    finally:
        os.close(lock)


def _read_address_key(key_file: Path) -> str:
    try:
        key = json.loads(key_file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the address key: {exc}", where=str(key_file)) from None
    if not isinstance(key, str) or len(key) < 16:
        raise ConfigError("expected a JSON string of at least 16 characters", where=str(key_file))
    return key


def _read_keys(key_file: Path) -> list[str]:
    try:
        keys = json.loads(key_file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the signing keys: {exc}", where=str(key_file)) from None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
        raise ConfigError("expected a JSON list of key strings", where=str(key_file))
    return list(keys)


SECRET_FIELDS = {"smtp_password", "imap_password", "secret_keys", "address_key", "database_url"}


def masked(settings: Settings) -> dict[str, object]:
    """Settings as a dict with secrets masked, for `bulletin config show`."""
    out: dict[str, object] = {}
    for name, value in settings.model_dump().items():
        if name in SECRET_FIELDS and value:
            if name == "database_url":
                value = _mask_url(str(value))
            elif isinstance(value, list):
                value = [f"{v[:3]}…({len(v)} chars)" for v in value]
            else:
                value = "********"
        value = str(value) if isinstance(value, Path) else value
        out[name] = mask_secrets(value) if isinstance(value, str) else value
    out["effective_database_url"] = _mask_url(settings.effective_database_url)
    return out


def _mask_url(url: str) -> str:
    return mask_secrets(url)
