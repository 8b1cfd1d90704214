"""CSV import rules (issue 3, point 5), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from bulletin.audience import lifecycle as L
from bulletin.audience.importer import import_csv
from bulletin.audience.subscribers import events_of, find_subscriber
from bulletin.db import session_scope
from bulletin.errors import ContentError
from bulletin.models import Subscriber, SubscriberEvent, Subscription
from tests.audience.conftest import write_csv

HEADER = "email,name,organisation,lists,role\n"


def _count(engine, model) -> int:
    with session_scope(engine) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def _snapshot(engine) -> tuple:
    with session_scope(engine) as s:
        subs = [(r.email, r.name, r.organisation, r.attributes, r.updated_at)
                for r in s.exec(select(Subscriber).order_by(Subscriber.id)).all()]
        states = [(r.subscriber_id, r.list_id, r.state, r.updated_at)
                  for r in s.exec(select(Subscription).order_by(Subscription.id)).all()]
        events = s.exec(select(func.count()).select_from(SubscriberEvent)).one()
    return subs, states, events


def test_the_sample_file_imports_and_reimporting_it_changes_nothing(engine, lists, workspace):
    sample = workspace / "subscribers" / "sample.csv"
    first = import_csv(engine, sample, actor="test")
    assert first.rows >= 35 and first.created == first.rows and not first.errors and not first.refused
    assert first.subscriptions_added >= first.rows
    before = _snapshot(engine)
    second = import_csv(engine, sample, actor="test")
    assert (second.created, second.updated, second.subscriptions_added) == (0, 0, 0)
    assert second.unchanged == first.rows and not second.changed
    assert _snapshot(engine) == before


def test_each_subscription_is_logged_with_the_file_and_line_it_came_from(engine, lists, tmp_path):
    f = write_csv(tmp_path / "a.csv", HEADER + "ann@example.org,Ann,Eastvale,finance;workforce,HR\n")
    import_csv(engine, f, actor="cli:ann")
    with session_scope(engine) as s:
        sub = find_subscriber(s, "ann@example.org")
        assert sub.attributes == {"role": "HR"} and sub.organisation == "Eastvale"
        events = events_of(s, sub.id)
        assert {(e.kind, e.new_state, e.source, e.actor) for e in events} == {("subscribe", "confirmed", "import", "cli:ann")}
        assert {e.list_id for e in events} == {lists["finance"], lists["workforce"]}
        assert events[0].detail == {"file": "a.csv", "line": 2}


def test_duplicates_within_a_file_merge_into_one_subscriber(engine, lists, tmp_path):
    f = write_csv(tmp_path / "d.csv", HEADER
                  + "Dup@Example.org,,,finance,\n"
                  + "dup@example.org,Dee Dup,Riverside,workforce,Clerk\n")
    report = import_csv(engine, f, actor="t")
    assert (report.rows, report.created, report.merged, report.subscriptions_added) == (2, 1, 1, 2)
    with session_scope(engine) as s:
        sub = find_subscriber(s, "dup@example.org")
        assert (sub.name, sub.organisation, sub.attributes) == ("Dee Dup", "Riverside", {"role": "Clerk"})
    assert import_csv(engine, f, actor="t").changed is False


def test_rows_for_people_already_in_the_database_update_them_and_add_lists(engine, lists, tmp_path):
    with session_scope(engine) as s:
        L.subscribe(s, "known@example.org", [lists["finance"]], name="Known", confirmed=False,
                    source="web", actor="form")
    f = write_csv(tmp_path / "k.csv", HEADER + "KNOWN@example.org,,Southby,finance;productivity,Lead\n")
    report = import_csv(engine, f, actor="t")
    assert (report.created, report.updated, report.subscriptions_added) == (0, 1, 2)
    with session_scope(engine) as s:
        sub = find_subscriber(s, "known@example.org")
        assert (sub.name, sub.organisation) == ("Known", "Southby")  # empty cells never blank a field
        kinds = [(e.kind, e.old_state, e.new_state) for e in events_of(s, sub.id) if e.source == "import"]
        assert sorted(kinds, key=str) == [("confirm", "pending", "confirmed"), ("subscribe", None, "confirmed")]


def test_bad_rows_are_reported_with_line_and_reason_while_good_rows_go_in(engine, lists, tmp_path):
    f = write_csv(tmp_path / "bad.csv", HEADER
                  + "good1@example.org,Good One,,finance,\n"            # line 2
                  + "not-an-address,Nobody,,finance,\n"                  # line 3
                  + '"evil@example.org","Evil\r\nBcc: x@example.org",,finance,\n'  # lines 4-5
                  + "tab@example.org,Tab,,finance,\"a\tb\"\n"           # line 6
                  + "nolist@example.org,No List,,,\n"                    # line 7
                  + "wrong@example.org,Wrong,,no-such-list,\n"           # line 8
                  + "extra@example.org,Extra,,finance,x,y\n"             # line 9
                  + "good2@example.org,Good Two,,workforce,\n")          # line 10
    report = import_csv(engine, f, actor="t")
    by_line = {e.line: e for e in report.errors}
    assert sorted(by_line) == [3, 4, 6, 7, 8, 9]
    assert "@" in by_line[3].reason and by_line[3].address == "not-an-address"
    assert "name" in by_line[4].reason and "control" in by_line[4].reason
    assert "role" in by_line[6].reason
    assert "no list" in by_line[7].reason and "no-such-list" in by_line[8].reason
    assert "more fields" in by_line[9].reason
    assert report.created == 2 and _count(engine, Subscriber) == 2


def test_people_who_opted_out_are_reported_not_silently_skipped_and_never_resubscribed(engine, lists, tmp_path):
    with session_scope(engine) as s:
        for addr in ("unsub@example.org", "bounced@example.org", "complained@example.org"):
            L.subscribe(s, addr, [lists["finance"]], confirmed=True, source="cli", actor="staff")
        L.unsubscribe(s, find_subscriber(s, "unsub@example.org").id, None, source="web", actor="link")
        L.mark_bounced(s, find_subscriber(s, "bounced@example.org").id, source="inbound", actor="dsn")
        L.complain(s, find_subscriber(s, "complained@example.org").id, source="inbound", actor="arf")
        L.suppress(s, "blocked@example.org", "staff", source="cli", actor="staff")
        erased = L.subscribe(s, "erased@example.org", [lists["finance"]], confirmed=True, source="cli", actor="staff")
        L.erase(s, erased.id, source="cli", actor="dpo")
    f = write_csv(tmp_path / "back.csv", HEADER + "".join(
        f"{a}@example.org,,,finance;workforce,\n"
        for a in ("unsub", "bounced", "complained", "blocked", "erased")))
    report = import_csv(engine, f, actor="t")
    refused = {(e.line, e.address): e.reason for e in report.refused}
    assert "unsubscribed" in refused[(2, "unsub@example.org")]
    assert "bounced" in refused[(3, "bounced@example.org")]
    assert "suppressed" in refused[(4, "complained@example.org")]
    assert "suppressed" in refused[(5, "blocked@example.org")]
    assert "suppressed" in refused[(6, "erased@example.org")]
    with session_scope(engine) as s:
        states = {r.state for r in s.exec(select(Subscription).where(Subscription.list_id == lists["finance"])).all()}
        assert "confirmed" not in states
        assert s.exec(select(Subscriber).where(Subscriber.email == "blocked@example.org")).first() is None
    # Other lists of a refused row still go in for the ones who merely left one list.
    assert report.subscriptions_added == 2  # unsub and bounced join workforce; suppressed people join nothing


def test_pending_import_then_confirmed_import_confirms(engine, lists, tmp_path):
    f = write_csv(tmp_path / "p.csv", HEADER + "p@example.org,P,,finance,\n")
    assert import_csv(engine, f, actor="t", confirmed=False).subscriptions_added == 1
    assert import_csv(engine, f, actor="t", confirmed=False).changed is False
    assert import_csv(engine, f, actor="t", confirmed=True).subscriptions_added == 1
    with session_scope(engine) as s:
        assert s.exec(select(Subscription.state)).one() == "confirmed"


def test_lists_option_applies_to_every_row(engine, lists, tmp_path):
    f = write_csv(tmp_path / "o.csv", "email,name\nopt@example.org,Opt\n")
    report = import_csv(engine, f, actor="t", lists=["shared-services"])
    assert report.subscriptions_added == 1
    with pytest.raises(ContentError):
        import_csv(engine, f, actor="t", lists=["nope"])


def test_a_file_without_an_email_column_or_missing_is_an_error_naming_it(engine, lists, tmp_path):
    with pytest.raises(ContentError) as info:
        import_csv(engine, write_csv(tmp_path / "n.csv", "mail,name\nx@example.org,X\n"), actor="t")
    assert "n.csv:1" in str(info.value)
    with pytest.raises(ContentError):
        import_csv(engine, tmp_path / "missing.csv", actor="t")


def _fail_on_line(engine, line: int) -> None:
    """A real database error inside a batch: a trigger refuses the consent event of one line."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(f"""CREATE TRIGGER fail_line BEFORE INSERT ON subscriber_event
                WHEN json_extract(NEW.detail, '$.line') = {line}
                BEGIN SELECT RAISE(ABORT, 'simulated crash'); END"""))
        else:
            conn.execute(text(f"""CREATE OR REPLACE FUNCTION fail_line() RETURNS trigger AS $$
                BEGIN IF (NEW.detail->>'line')::int = {line} THEN RAISE EXCEPTION 'simulated crash'; END IF;
                RETURN NEW; END $$ LANGUAGE plpgsql"""))
            conn.execute(text("""CREATE TRIGGER fail_line BEFORE INSERT ON subscriber_event
                FOR EACH ROW EXECUTE FUNCTION fail_line()"""))


def _drop_trigger(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER fail_line" + ("" if engine.dialect.name == "sqlite" else " ON subscriber_event")))


def test_a_crash_mid_import_leaves_whole_batches_and_no_half_written_subscriber(engine, lists, tmp_path):
    rows = "".join(f"crash{i}@example.org,C {i},,finance;workforce,\n" for i in range(25))
    f = write_csv(tmp_path / "c.csv", HEADER + rows)
    _fail_on_line(engine, 17)  # in the second batch of 10
    seen = []
    try:
        with pytest.raises(Exception, match="simulated crash"):
            import_csv(engine, f, actor="t", batch_size=10, on_batch=lambda r: seen.append(r.batches))
    finally:
        _drop_trigger(engine)
    assert seen == [1]
    assert _count(engine, Subscriber) == 10
    assert _count(engine, Subscription) == 20 and _count(engine, SubscriberEvent) == 20
    report = import_csv(engine, f, actor="t", batch_size=10)  # the rerun completes the job
    assert (report.created, report.unchanged) == (15, 10)
    assert _count(engine, Subscription) == 50


def test_memory_stays_flat_because_rows_are_streamed_in_batches(engine, lists, tmp_path):
    f = write_csv(tmp_path / "s.csv", HEADER + "".join(f"s{i}@example.org,S,,finance,\n" for i in range(120)))
    sizes = []
    report = import_csv(engine, f, actor="t", batch_size=50, on_batch=lambda r: sizes.append(r.rows))
    assert sizes == [50, 100, 120] and report.batches == 3 and report.created == 120


def test_case_variants_across_batches_are_one_person(engine, lists, tmp_path):
    f = write_csv(tmp_path / "v.csv", HEADER + "v@example.org,V,,finance,\nother@example.org,O,,finance,\nV@EXAMPLE.ORG,V,,workforce,\n")
    report = import_csv(engine, f, actor="t", batch_size=2)
    assert report.created == 2 and report.subscriptions_added == 3
    assert _count(engine, Subscriber) == 2


@pytest.mark.parametrize("encoding_bom", [True, False])
def test_a_utf8_bom_from_spreadsheet_exports_is_ignored(engine, lists, tmp_path: Path, encoding_bom):
    body = ("\ufeff" if encoding_bom else "") + "email,name,lists\nsiân@example.org,Siân Jones,finance\n"
    f = write_csv(tmp_path / "bom.csv", body)
    report = import_csv(engine, f, actor="t")
    assert report.created == 1 and not report.errors


def test_spreadsheet_style_headers_are_understood_and_duplicate_columns_refused(engine, lists, tmp_path):
    f = write_csv(tmp_path / "h.csv", "E-mail, Name ,Organization,Lists,Team\nh@example.org,H,Northshire,finance,Payroll\n")
    assert import_csv(engine, f, actor="t").created == 1
    with session_scope(engine) as s:
        sub = find_subscriber(s, "h@example.org")
        assert (sub.name, sub.organisation, sub.attributes) == ("H", "Northshire", {"Team": "Payroll"})
    with pytest.raises(ContentError, match="role"):
        import_csv(engine, write_csv(tmp_path / "dd.csv", "email,role,role\nx@example.org,a,b\n"), actor="t")
    with pytest.raises(ContentError, match="dd2.csv:1"):
        import_csv(engine, write_csv(tmp_path / "dd2.csv", "email,,lists\nx@example.org,a,finance\n"), actor="t")


def test_line_numbers_stay_right_after_blank_lines_and_multi_line_fields(engine, lists, tmp_path):
    f = write_csv(tmp_path / "lines.csv", HEADER
                  + "\n"                                                  # line 2 blank
                  + 'a@example.org,"A",,finance,"two\nlines"\n'         # lines 3-4: control char in role
                  + "\n"                                                  # line 5 blank
                  + "broken,B,,finance,\n")                               # line 6
    report = import_csv(engine, f, actor="t")
    assert sorted(e.line for e in report.errors) == [3, 6]


def test_import_applies_the_same_character_rule_as_the_web_forms(engine, lists, tmp_path):
    f = write_csv(tmp_path / "chars.csv", HEADER
                  + "zwnj@example.org,\u0645\u06cc\u200c\u062e\u0648,,finance,\n"   # line 2: ZWNJ in a name: fine
                  + "emoji@example.org,Sam \U0001f469\u200d\U0001f4bb,,finance,\n"  # line 3: ZWJ emoji: fine
                  + "shy@example.org,Sam\u00adSmith,,finance,\n"                     # line 4: soft hyphen (Cf)
                  + "role@example.org,Sam,,finance,Head\u200dof\n"                  # line 5: joiner outside a name
                  + "bidi@example.org,Sam,Coun\u202ecil,finance,\n")                # line 6: bidi override (Cf)
    report = import_csv(engine, f, actor="t")
    by_line = {e.line: e for e in report.errors}
    assert sorted(by_line) == [4, 5, 6]
    assert "'name'" in by_line[4].reason and "'role'" in by_line[5].reason and "'organisation'" in by_line[6].reason
    assert all("control or invisible formatting" in e.reason for e in report.errors)
    with session_scope(engine) as s:
        assert find_subscriber(s, "zwnj@example.org").name == "\u0645\u06cc\u200c\u062e\u0648"  # type: ignore[union-attr]


def test_batches_parsed_ahead_arrive_in_order_and_an_error_after_them() -> None:
    """The parse thread hands batches over in file order; an error in the file reaches the caller after
    the batches before it, and a caller that stops early does not leave the thread hanging."""
    import threading

    from bulletin.readahead import prefetched

    def batches():  # type: ignore[no-untyped-def]
        yield {"a": 1}
        yield {"b": 2}
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    got = []
    with pytest.raises(UnicodeDecodeError):
        for batch in prefetched(batches()):
            got.append(batch)
    assert got == [{"a": 1}, {"b": 2}]

    def endless():  # type: ignore[no-untyped-def]
        n = 0
        while True:
            n += 1
            yield {str(n): n}

    before = threading.active_count()
    stream = prefetched(endless())
    assert next(stream) == {"1": 1} and next(stream) == {"2": 2}
    stream.close()
    assert threading.active_count() == before


def test_while_batches_are_made_ahead_the_caller_gets_the_gil_sooner_and_nothing_stays_changed() -> None:
    """`reading_ahead` lowers the interpreter's switch interval and freezes what is alive for its block;
    after it, however the loop inside ended (done, an error, the caller stopping), both are back. A
    `prefetched` stream left unfinished outside it changes neither: it is the caller's `with` that
    holds them, never a generator that might not be closed."""
    import gc
    import sys

    from bulletin.readahead import SWITCH_INTERVAL, prefetched, reading_ahead

    gc.unfreeze()  # whatever an earlier test left frozen
    seen = []

    def batches():  # type: ignore[no-untyped-def]
        seen.append((sys.getswitchinterval(), gc.get_freeze_count()))
        yield 1
        yield 2
        raise ValueError("bad row")

    before = sys.getswitchinterval(), gc.get_freeze_count()
    assert before[0] > SWITCH_INTERVAL
    with reading_ahead():
        assert list(prefetched(iter([1, 2]))) == [1, 2]
    assert (sys.getswitchinterval(), gc.get_freeze_count()) == before
    with pytest.raises(ValueError), reading_ahead():
        list(prefetched(batches()))
    assert (sys.getswitchinterval(), gc.get_freeze_count()) == before
    with reading_ahead():
        stream = prefetched(batches())
        assert next(stream) == 1
    assert (sys.getswitchinterval(), gc.get_freeze_count()) == before
    stream.close()
    assert all(interval == SWITCH_INTERVAL and frozen > before[1] + 1000 for interval, frozen in seen), seen
    kept = prefetched(batches())  # outside reading_ahead, and never finished
    assert next(kept) == 1
    assert (sys.getswitchinterval(), gc.get_freeze_count()) == before
    kept.close()


def test_a_failing_batch_stops_the_parse_thread_instead_of_hanging_it(engine, lists, tmp_path):
    """The parse thread can be two batches ahead when a write fails; the import must raise, not wait
    forever for a thread blocked on handing over a batch nobody will take."""
    import threading

    rows = "".join(f"hang{i}@example.org,H {i},,finance,\n" for i in range(60))
    f = write_csv(tmp_path / "h.csv", HEADER + rows)
    _fail_on_line(engine, 3)  # the first batch of 10
    before = threading.active_count()
    try:
        with pytest.raises(Exception, match="simulated crash"):
            import_csv(engine, f, actor="t", batch_size=10)
    finally:
        _drop_trigger(engine)
    assert threading.active_count() == before


def test_imported_ids_are_drawn_from_the_sequence_so_later_signups_never_collide(engine, lists, tmp_path):
    """PostgreSQL takes a batch's ids as one block of the sequence (COPY returns none): the block must
    be exactly the rows written, in file order, and a subscriber added afterwards the ORM way gets the
    next id, not one the import used; a failed batch leaves a gap, never a reused id."""
    rows = "".join(f"p{i}@example.org,P{i},Org,finance,\n" for i in range(7))
    first = import_csv(engine, write_csv(tmp_path / "a.csv", HEADER + rows), actor="test", batch_size=3)
    assert first.created == 7
    with session_scope(engine) as s:
        got = [(r.id, r.email) for r in s.exec(select(Subscriber).order_by(Subscriber.id)).all()]
    assert [e for _, e in got] == [f"p{i}@example.org" for i in range(7)]
    assert [i for i, _ in got] == list(range(got[0][0], got[0][0] + 7)), "one contiguous block per file order"
    with session_scope(engine) as s:
        later = Subscriber(email="later@example.org", email_hash="f" * 64, name="", organisation="")
        s.add(later)
        s.flush()
        assert later.id == got[-1][0] + 1
    again = import_csv(engine, write_csv(tmp_path / "b.csv", HEADER + "q@example.org,Q,Org,finance,\n"),
                       actor="test")
    with session_scope(engine) as s:
        q = find_subscriber(s, "q@example.org")
        assert again.created == 1 and q.id > got[-1][0] + 1


def test_an_import_leaves_the_planner_statistics_of_what_it_wrote(engine, lists, workspace):
    """PostgreSQL: a bulk import ends with ANALYZE, so the first claims after it are planned on the real
    table (without statistics a claim combined the subscription key with a scan of its state index: 3.4 s
    a claim at a million). `reltuples` -1 is how PostgreSQL marks a table it has never analyzed."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps no planner statistics unless asked")
    with engine.begin() as conn:
        conn.execute(text("UPDATE pg_class SET reltuples = -1 WHERE relname IN ('subscriber', 'subscription')"))
    report = import_csv(engine, workspace / "subscribers" / "sample.csv", actor="test")
    with engine.connect() as conn:
        known = dict(conn.execute(text("SELECT relname, reltuples FROM pg_class "
                                       "WHERE relname IN ('subscriber', 'subscription')")).all())
    assert known["subscriber"] == report.created == _count(engine, Subscriber)
    assert known["subscription"] == _count(engine, Subscription) > 0
