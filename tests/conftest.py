"""Shared fixtures: a temporary workspace, its settings, and a database on SQLite and PostgreSQL.

The `engine` fixture is parametrized: every test that uses it runs on a SQLite
file and, when BULLETIN_TEST_DATABASE_URL is set, on PostgreSQL too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from bulletin.config import Settings, load_settings
from bulletin.db import make_engine, scratch_database

ROOT = Path(__file__).resolve().parent.parent
# ../shared/corpora beside the checkout; a git worktree (e.g. wt/<branch>) finds it one level further up.
CORPORA = next((p / "shared" / "corpora" for p in ROOT.parents if (p / "shared" / "corpora").is_dir()),
               ROOT.parent / "shared" / "corpora")
PG_URL = os.environ.get("BULLETIN_TEST_DATABASE_URL")
# pytest-xdist's workers start with COLUMNS=80 and LINES=24, and rich fixes a console's size from
# them when the console is made (bulletin.cli.common's, at import). Without them, rich reads them at
# each print, so the tests' CliRunner(env={"COLUMNS": ...}) decides the width, as in a serial run.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)


def corpus(*parts: str) -> Path:
    """Path into ../shared/corpora, skipping the test when the corpus is absent."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus {path} is not present on this machine")
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh workspace with the project's lists, sample subscribers, content and templates."""
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in ("subscribers", "content"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, ws / name)
    return ws


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dbtemplate") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not PG_URL:
        pytest.skip("BULLETIN_TEST_DATABASE_URL is not set")
    with scratch_database(PG_URL, tmp_path_factory.getbasetemp(), "bulletin_test") as url:
        make_engine(url).dispose()
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty, migrated database of each kind."""
    if request.param == "sqlite":
        target = tmp_path / "bulletin.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("_pg_database")
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str, settings: Settings) -> Iterator[Engine]:
    """The parametrized database, keyed like the workspace's own engine (so suppressions agree)."""
    eng = make_engine(db_url, address_key=settings.address_key)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(workspace: Path, db_url: str) -> Settings:
    """Settings of the temporary workspace, pointing at the parametrized database."""
    return load_settings(workspace, database_url=db_url, public_base_url="https://news.example.org",
                         sending_domain="news.example.org")


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's chromium through Playwright, one per test module.

    Not per session: Playwright's sync API keeps an event loop running while it is
    open, and later tests that call `asyncio.run` would fail.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def cli_runner(settings: Settings, env: dict[str, str]) -> Callable[..., tuple[int, str]]:
    """`bulletin -w <workspace> ...` in-process, like `bulletin.cli.main`: a BulletinError becomes its
    exit code and one line; (exit code, output) otherwise."""
    from typer.testing import CliRunner

    from bulletin.cli import app
    from bulletin.errors import BulletinError

    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["-w", str(settings.workspace), *args], env=env)
        if isinstance(result.exception, BulletinError):
            return result.exception.exit_code, str(result.exception)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    return run
