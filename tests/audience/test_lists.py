"""lists.toml: loading, checking and syncing the bulletins."""

from __future__ import annotations

import pytest

from bulletin.audience import lifecycle as L
from bulletin.audience.lists import load_lists, overview, sync_file, sync_lists
from bulletin.db import session_scope
from bulletin.errors import ConfigError

GOOD = """
[[list]]
slug = "alpha"
name = "Alpha bulletin"
from_name = "Alpha Team"
from_address = "Alpha@Example.org"
"""


def test_the_project_lists_include_the_sample_issue_list_and_others(workspace):
    specs = {s.slug: s for s in load_lists(workspace / "subscribers" / "lists.toml")}
    assert specs["shared-services"].name == "Shared Services e-bulletin"
    assert {"productivity", "workforce", "finance"} <= set(specs)
    assert specs["finance"].archive_public is False and specs["finance"].double_opt_in is False


def test_defaults_and_normalised_sender_address(tmp_path):
    (tmp_path / "l.toml").write_text(GOOD)
    [spec] = load_lists(tmp_path / "l.toml")
    assert spec.from_address == "alpha@example.org" and spec.double_opt_in and spec.archive_public
    assert spec.reply_to is None
    assert spec.organisation == "" and spec.postal_address == ""  # bulletin.toml's defaults apply


def test_every_sample_list_names_its_organisation_and_postal_address(workspace):
    for spec in load_lists(workspace / "subscribers" / "lists.toml"):
        assert spec.organisation and spec.postal_address.count(",") >= 2, spec.slug


def test_a_postal_address_over_several_lines_becomes_one_line(tmp_path):
    body = GOOD + 'organisation = "Alpha Trust"\npostal_address = """1 High St\n  Alphaton,\nAL1 1AA\n"""\n'
    (tmp_path / "l.toml").write_text(body)
    [spec] = load_lists(tmp_path / "l.toml")
    assert (spec.organisation, spec.postal_address) == ("Alpha Trust", "1 High St, Alphaton, AL1 1AA")


def test_an_organisation_with_a_line_break_is_an_error_naming_the_field(tmp_path):
    (tmp_path / "l.toml").write_text(GOOD + 'organisation = "Alpha\\r\\nBcc: x@example.org"\n')
    with pytest.raises(ConfigError, match="organisation"):
        load_lists(tmp_path / "l.toml")


@pytest.mark.parametrize(("body", "expected"), [
    ("[[list]]\nslug = 'Bad Slug'\nname='x'\nfrom_name='x'\nfrom_address='x@example.org'\n", "slug"),
    ("[[list]]\nslug = 'a'\nfrom_name='x'\nfrom_address='x@example.org'\n", "name"),
    ("[[list]]\nslug = 'a'\nname='x'\nfrom_name='x'\nfrom_address='nope'\n", "'a'"),
    ("[[list]]\nslug = 'a'\nname='x'\nfrom_name=\"x\\r\\nBcc: y\"\nfrom_address='x@example.org'\n", "from_name"),
    ("[[list]]\nslug = 'a'\nname='x'\nfrom_name='x'\nfrom_address='x@example.org'\ncolour='red'\n", "colour"),
    ("[[list]]\nslug = 'a'\nname='x'\nfrom_name='x'\nfrom_address='x@example.org'\ndouble_opt_in='yes'\n", "double_opt_in"),
    (GOOD + GOOD, "twice"),
    ("[[list]\n", "l.toml"),
    ("title = 'no lists'\n", "[[list]]"),
])
def test_a_bad_lists_file_is_an_error_naming_file_list_and_field(tmp_path, body, expected):
    (tmp_path / "l.toml").write_text(body)
    with pytest.raises(ConfigError) as info:
        load_lists(tmp_path / "l.toml")
    assert expected in str(info.value) and "l.toml" in str(info.value)


def test_a_missing_lists_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="nothing.toml"):
        load_lists(tmp_path / "nothing.toml")


def test_sync_adds_then_reports_changes_and_never_deletes(engine, tmp_path, workspace):
    path = workspace / "subscribers" / "lists.toml"
    with session_scope(engine) as s:
        first = sync_file(s, path)
    assert "shared-services" in first.added and not first.changed
    with session_scope(engine) as s:
        again = sync_file(s, path)
    assert not again.added and not again.changed and len(again.unchanged) == len(first.added)
    (tmp_path / "l.toml").write_text(GOOD + GOOD.replace("alpha", "beta").replace("Alpha bulletin", "Beta"))
    with session_scope(engine) as s:
        sync_file(s, tmp_path / "l.toml")
    (tmp_path / "l.toml").write_text(GOOD.replace("Alpha bulletin", "Alpha weekly"))
    with session_scope(engine) as s:
        report = sync_file(s, tmp_path / "l.toml")
    assert report.changed == {"alpha": {"name": ("Alpha bulletin", "Alpha weekly")}}
    assert "beta" in report.not_in_file and "shared-services" in report.not_in_file
    with session_scope(engine) as s:
        assert {o.slug for o in overview(s)} >= {"alpha", "beta", "shared-services"}


def test_dry_run_reports_without_writing(engine, workspace):
    specs = load_lists(workspace / "subscribers" / "lists.toml")
    with session_scope(engine) as s:
        report = sync_lists(s, specs, dry_run=True)
        assert report.added and overview(s) == []


def test_overview_counts_subscriptions_by_state(engine, lists):
    with session_scope(engine) as s:
        a = L.subscribe(s, "a@example.org", [lists["finance"]], confirmed=True, source="cli", actor="t")
        L.subscribe(s, "b@example.org", [lists["finance"]], confirmed=False, source="cli", actor="t")
        L.subscribe(s, "c@example.org", [lists["finance"]], confirmed=True, source="cli", actor="t")
        L.unsubscribe(s, a.id, None, source="cli", actor="t")
    with session_scope(engine) as s:
        rows = {o.slug: o for o in overview(s)}
    assert rows["finance"].counts == {"pending": 1, "confirmed": 1, "unsubscribed": 1, "bounced": 0, "complained": 0}
    assert rows["finance"].total == 3 and rows["workforce"].total == 0




def test_public_signup_defaults_to_double_opt_in(tmp_path):
    (tmp_path / "l.toml").write_text(GOOD + GOOD.replace("alpha", "beta") + "double_opt_in = false\n")
    specs = {s.slug: s for s in load_lists(tmp_path / "l.toml")}
    assert specs["alpha"].public_signup is True and specs["beta"].public_signup is False


def test_sync_refuses_a_public_single_opt_in_list_unless_allowed(engine, tmp_path):
    path = tmp_path / "l.toml"
    path.write_text(GOOD + "double_opt_in = false\npublic_signup = true\n")
    with pytest.raises(ConfigError, match=r"list 'alpha'.*public_signup.*--allow-single-opt-in") as info:
        with session_scope(engine) as s:
            sync_file(s, path)
    assert str(path) in str(info.value)
    with session_scope(engine) as s:
        assert overview(s) == []  # nothing half-written
        sync_file(s, path, allow_single_opt_in=True)
    with session_scope(engine) as s:
        from bulletin.audience.subscribers import get_list

        ml = get_list(s, "alpha")
        assert ml.public_signup and not ml.double_opt_in


def test_public_signup_must_be_a_boolean(tmp_path):
    (tmp_path / "l.toml").write_text(GOOD + "public_signup = 'yes'\n")
    with pytest.raises(ConfigError, match="public_signup"):
        load_lists(tmp_path / "l.toml")
