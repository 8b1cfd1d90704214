"""The sample issue compiled once per module, with settings that need no database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bulletin.config import Settings, load_settings
from bulletin.render.build import compile_issue
from bulletin.render.compiled import Compiled, Recipient, Sender

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SLUG = "2016-shared-service-map"

ALICE = Recipient(
    name="Alice O'Neill & co",
    unsubscribe_url="https://news.example.org/unsubscribe/tok-alice?x=1&y=2",
    preferences_url="https://news.example.org/preferences/pref-alice",
    view_online_url=f"https://news.example.org/archive/{SAMPLE_SLUG}/",
    reply_address="reply+alice123@news.example.org",
)

SENDER = Sender(organisation="Northshire Shared Services Partnership", list_name="Shared Services e-bulletin",
                postal_address="14 Guildhall Walk, Wellsbury, WB1 4QT, United Kingdom")


def make_settings(ws: Path) -> Settings:
    return load_settings(ws, public_base_url="https://news.example.org", sending_domain="news.example.org")


@pytest.fixture
def render_settings(workspace: Path) -> Settings:
    return make_settings(workspace)


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    ws = tmp_path_factory.mktemp("render-ws")
    shutil.copytree(ROOT / "content", ws / "content")
    return make_settings(ws)


@pytest.fixture(scope="module")
def sample(module_settings: Settings) -> Compiled:
    return compile_issue(module_settings, SAMPLE_SLUG)
