"""After `bulletin subscribers erase`, the address and the name are nowhere: no table, no file, no outbox."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import JSON, String, Text, cast, func, select
from sqlmodel import SQLModel
from typer.testing import CliRunner

from bulletin.accounts import add_account
from bulletin.audience import staff, subscribers
from bulletin.audience.importer import import_csv
from bulletin.cli import app
from bulletin.db import make_engine, session_scope
from bulletin.delivery import service
from bulletin.errors import ConfigError
from bulletin.models import Bounce, Delivery, Suppression
from bulletin.render.build import compile_issue
from tests.bad_smtp import bad_relay
from tests.console.conftest import PASSWORD, console_client, email_of, sign_in, token_of
from tests.delivery.conftest import add_list, add_subscribers, make_compiled

ISSUE = "2016-shared-service-map"


def _tables_holding(engine, needle: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Every text-like column of every table, asked whether any row holds `needle` (SQLite and PostgreSQL)."""
    found = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for column in table.columns:
                if not _is_text(column):
                    continue
                hits = conn.execute(select(func.count()).select_from(table).where(
                    cast(column, Text).contains(needle))).scalar_one()
                if hits:
                    found.append(f"{table.name}.{column.name}")
    return found


def _is_text(column) -> bool:  # type: ignore[no-untyped-def]
    """String, Text and JSON columns, also behind SQLModel's TypeDecorators (AutoString)."""
    kind = getattr(column.type, "impl_instance", None) or column.type
    return isinstance(kind, String | JSON)


def _files_holding(folder: Path, needle: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _erase_by_cli(settings, address: str) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["-w", str(settings.workspace), "subscribers", "erase", address, "--yes"],
                                env={"BULLETIN_DATABASE_URL": settings.effective_database_url,
                                     "BULLETIN_PUBLIC_BASE_URL": settings.public_base_url,
                                     "BULLETIN_SENDING_DOMAIN": settings.sending_domain})
    assert result.exit_code == 0, result.output


def _erase_by_console(settings, address: str) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(settings.effective_database_url, address_key=settings.address_key)
    with session_scope(engine) as session:
        add_account(session, email_of("admin"), "admin", PASSWORD, actor="test")
        found = subscribers.find_subscriber(session, address)
        assert found is not None
        sid = found.id
    engine.dispose()
    with console_client(settings) as client:
        assert sign_in(client, "admin").status_code == 303
        token = token_of(client, f"/admin/subscribers/{sid}")
        done = client.post(f"/admin/subscribers/{sid}/erase", data={"csrf_token": token})
        assert done.status_code == 303, done.text


# Every shell's erase goes through bulletin.forget; the console once erased the rows only.
@pytest.mark.parametrize("erase_by", [_erase_by_cli, _erase_by_console], ids=["cli", "console"])
def test_erase_leaves_no_trace_of_the_address_or_name(settings, engine, erase_by) -> None:  # type: ignore[no-untyped-def]
    people = add_subscribers(engine, add_list(engine), 3)
    gone, name = people[1], "Reader 1"
    # A Maildir send leaves a file per person in the outbox ...
    queued = service.queue_issue(engine, settings, compile_issue(settings, ISSUE), "shared-services")
    service.send_queued(engine, settings, [queued.send_id])
    # ... and a relay's refusal quotes the address in the ledger and the bounce.
    with bad_relay(rcpt_replies={gone: f"550 5.1.1 <{gone}>: user unknown"}) as relay:
        s = settings.model_copy(update={"transport": "smtp", "smtp_host": relay.host, "smtp_port": relay.port})
        second = service.queue_issue(engine, s, make_compiled(), "shared-services")
        service.send_queued(engine, s, [second.send_id])
    with session_scope(engine) as session:
        assert any(gone in (d.last_error or "") for d in session.exec(select(Delivery)).scalars())
        assert any(gone in b.diagnostic for b in session.exec(select(Bounce)).scalars())
    assert _files_holding(settings.outbox_path, gone.encode())
    assert "subscriber.email" in _tables_holding(engine, gone)
    plain = hashlib.sha256(gone.encode()).hexdigest()
    assert _tables_holding(engine, plain) == ["subscriber.email_hash"], "the live row's lookup key"

    erase_by(settings, gone)

    assert _tables_holding(engine, gone) == [] and _tables_holding(engine, name) == []
    # Nor its plain sha256, which anyone with a dump and a guess could compute and look up.
    assert _tables_holding(engine, plain) == []
    assert _files_holding(settings.workspace, plain.encode()) == []
    assert _files_holding(settings.workspace, gone.encode()) == []
    assert _files_holding(settings.outbox_path, name.encode()) == []
    assert _files_holding(settings.outbox_path, people[0].encode()), "other people's messages stay"
    if engine.dialect.name == "sqlite":
        engine.dispose()  # the last connection checkpoints the WAL into the file
        db = Path(engine.url.database)
        for path in [db, *db.parent.glob(db.name + "-*")]:
            data = path.read_bytes()
            assert gone.encode() not in data and name.encode() not in data, path
            assert plain.encode() not in data, path


def test_an_erased_address_stays_suppressed_only_under_the_workspace_key(settings, engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The suppression outlives the person, but is a keyed hash: the same database with another key
    (a thief with the dump and a guess) finds nothing, while the workspace's own import still refuses."""
    gone = add_subscribers(engine, add_list(engine), 2)[0]
    with session_scope(engine) as session:
        staff.erase_address(session, gone, actor="test")
    with session_scope(engine) as session:
        assert subscribers.is_suppressed(session, gone.upper())
    other = make_engine(str(engine.url.render_as_string(hide_password=False)), upgrade=False,
                        address_key="a-different-key-entirely-0123456789")
    try:
        with session_scope(other) as session:
            assert not subscribers.is_suppressed(session, gone)
    finally:
        other.dispose()
    csv = tmp_path / "back.csv"
    csv.write_text(f"email,name,lists\n{gone},Back Again,shared-services\n", encoding="utf-8")
    report = import_csv(engine, csv, actor="test")
    assert [r.line for r in report.refused] == [2] and report.created == 0


def test_a_plain_hash_suppression_from_an_older_database_still_refuses(settings, engine) -> None:  # type: ignore[no-untyped-def]
    """Rows written before keyed hashes hold sha256 hex; they must keep blocking until rewritten."""
    add_list(engine)
    with session_scope(engine) as session:
        session.add(Suppression(email_hash=hashlib.sha256(b"old@example.org").hexdigest(), reason="erased"))
    with session_scope(engine) as session:
        assert subscribers.is_suppressed(session, "Old@Example.org")


def test_an_engine_without_the_key_refuses_suppressions_with_a_clear_error(settings, engine) -> None:  # type: ignore[no-untyped-def]
    bare = make_engine(str(engine.url.render_as_string(hide_password=False)), upgrade=False)
    try:
        with pytest.raises(ConfigError, match="address key"), session_scope(bare) as session:
            subscribers.is_suppressed(session, "x@example.org")
    finally:
        bare.dispose()
