from sqlmodel import select

from bulletin.db import current_revision, head_revision, session_scope
from bulletin.models import MailingList


def test_schema_is_at_head_and_round_trips_a_row(engine):
    assert current_revision(engine) == head_revision()
    with session_scope(engine) as s:
        s.add(MailingList(slug="x", name="X", from_name="X", from_address="x@example.org"))
    with session_scope(engine) as s:
        assert [m.slug for m in s.exec(select(MailingList))] == ["x"]


def test_session_scope_rolls_back_on_error(engine):
    try:
        with session_scope(engine) as s:
            s.add(MailingList(slug="y", name="Y", from_name="Y", from_address="y@example.org"))
            s.flush()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with session_scope(engine) as s:
        assert s.exec(select(MailingList)).all() == []


def test_the_migrations_build_exactly_the_indexes_the_models_declare(engine):
    """Models and migrations are written by hand; an index in one and not the other is paid on every
    write (or missed by every read) without anyone noticing."""
    from sqlalchemy import inspect
    from sqlmodel import SQLModel

    inspector = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        declared = {ix.name for ix in table.indexes}
        built = {ix["name"] for ix in inspector.get_indexes(table.name)
                 if not ix.get("duplicates_constraint") and not ix["name"].startswith("sqlite_autoindex")}
        built -= {uc.name for uc in table.constraints if uc.name}  # PostgreSQL lists unique constraints too
        built -= SEARCH_INDEXES  # expression indexes, spelled per dialect in migration 0016 only
        assert built == declared, table.name


SEARCH_INDEXES = {"ix_subscriber_name_lower", "ix_subscriber_organisation_lower"}


def test_the_quick_revision_check_agrees_with_alembic(engine, tmp_path):
    """`upgrade_schema` tells "already at the newest migration" without importing Alembic: it must read
    the head Alembic reads, and say no to a database one migration behind or never migrated (Alembic
    then upgrades it)."""
    from alembic import command

    from bulletin.db import (
        _newest_revision,
        _stamped_newest,
        alembic_config,
        make_engine,
        upgrade_schema,
    )

    assert _newest_revision() == head_revision() is not None
    assert _stamped_newest(engine)
    command.downgrade(alembic_config(engine), "-1")
    assert not _stamped_newest(engine)
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision() and _stamped_newest(engine)
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}", upgrade=False)
    assert not _stamped_newest(fresh)
    fresh.dispose()


def test_the_quick_head_is_unsure_of_branches_and_odd_files(tmp_path):
    from bulletin.schema import newest_revision

    def head_of(*files: str) -> str | None:
        folder = tmp_path / f"m{len(list(tmp_path.iterdir()))}"
        (folder / "versions").mkdir(parents=True)
        for n, text in enumerate(files):
            (folder / "versions" / f"{n:04}_x.py").write_text(text)
        return newest_revision(folder)

    base, second = "revision = 'a'\ndown_revision = None\n", "revision: str = 'b'\ndown_revision = 'a'\n"
    assert head_of(base, second) == "b"
    assert head_of(base, second, "revision = 'c'\ndown_revision = 'a'\n") is None  # two heads
    assert head_of(base, second, "revision = 'c'\ndown_revision = ('a', 'b')\n") == "c"  # a merge
    assert head_of(base, "revision = make_id()\ndown_revision = 'a'\n") is None
