"""After `bulletin subscribers erase`, the address and the name are nowhere: no table, no file, no outbox."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import JSON, String, Text, cast, func, select
from sqlmodel import SQLModel
from typer.testing import CliRunner

from bulletin.cli import app
from bulletin.db import session_scope
from bulletin.delivery import service
from bulletin.models import Bounce, Delivery
from bulletin.render.build import compile_issue
from tests.bad_smtp import bad_relay
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


def test_erase_leaves_no_trace_of_the_address_or_name(settings, engine) -> None:  # type: ignore[no-untyped-def]
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

    result = CliRunner().invoke(app, ["-w", str(settings.workspace), "subscribers", "erase", gone, "--yes"],
                                env={"BULLETIN_DATABASE_URL": settings.effective_database_url,
                                     "BULLETIN_PUBLIC_BASE_URL": settings.public_base_url,
                                     "BULLETIN_SENDING_DOMAIN": settings.sending_domain})
    assert result.exit_code == 0, result.output

    assert _tables_holding(engine, gone) == [] and _tables_holding(engine, name) == []
    assert _files_holding(settings.workspace, gone.encode()) == []
    assert _files_holding(settings.outbox_path, name.encode()) == []
    assert _files_holding(settings.outbox_path, people[0].encode()), "other people's messages stay"
    if engine.dialect.name == "sqlite":
        engine.dispose()  # the last connection checkpoints the WAL into the file
        db = Path(engine.url.database)
        for path in [db, *db.parent.glob(db.name + "-*")]:
            data = path.read_bytes()
            assert gone.encode() not in data and name.encode() not in data, path
