"""The Workspace: built once per shell, its parts made on first use and shared after that."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from sqlmodel import select

from bulletin.config import Settings, default_templates_dir
from bulletin.db import upgrade_schema
from bulletin.models import MailingList, id_of
from bulletin.workspace import Workspace


def test_engine_and_links_are_made_once_and_the_session_commits(settings: Settings) -> None:
    ws = Workspace(settings)
    assert "engine" not in ws.__dict__  # nothing touched the database yet
    assert ws.engine is ws.engine and ws.links is ws.links
    upgrade_schema(ws.engine)
    with ws.session() as s:
        s.add(MailingList(slug="w", name="W", from_name="W", from_address="w@example.org"))
    with ws.session() as s:
        assert [m.slug for m in s.exec(select(MailingList)).all()] == ["w"]
    ws.close()
    assert "engine" not in ws.__dict__


def test_templates_come_from_the_workspace_first_one_file_at_a_time(settings: Settings, tmp_path: Path) -> None:
    own = tmp_path / "own-templates" / "web"
    own.mkdir(parents=True)
    (own / "signup.html").write_text("our own signup page", encoding="utf-8")
    loader = Workspace(settings.model_copy(update={"templates_dir": tmp_path / "own-templates"})).template_loader("web")
    env = jinja2.Environment(loader=loader)
    assert env.get_template("signup.html").render() == "our own signup page"
    packaged = (default_templates_dir() / "web" / "unsubscribe.html").read_text(encoding="utf-8")
    assert env.loader.get_source(env, "unsubscribe.html")[0] == packaged


def test_id_of_refuses_a_row_that_was_never_stored() -> None:
    with pytest.raises(ValueError, match="MailingList has no id yet"):
        id_of(MailingList(slug="x", name="X", from_name="X", from_address="x@example.org"))
    assert id_of(MailingList(id=7, slug="x", name="X", from_name="X", from_address="x@example.org")) == 7
