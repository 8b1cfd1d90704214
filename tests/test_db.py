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
