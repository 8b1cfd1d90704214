"""The issue commands: new, build, check (preview's server is tested in test_preview)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from bulletin.cli import app
from bulletin.errors import CheckFailed, ContentError
from tests.render.conftest import SAMPLE_SLUG

runner = CliRunner()


def run(ws: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--workspace", str(ws), *args])


def test_help_lists_the_issue_commands() -> None:
    out = runner.invoke(app, ["--help"]).output
    for name in ("new", "build", "preview", "check"):
        assert f" {name} " in out


def test_build_json_reports_the_written_files(workspace: Path) -> None:
    result = run(workspace, "build", SAMPLE_SLUG, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["slug"] == SAMPLE_SLUG and data["blocks"] == 11
    assert all(Path(f).is_file() for f in data["files"])


def test_build_prints_a_summary(workspace: Path) -> None:
    result = run(workspace, "build", SAMPLE_SLUG)
    assert result.exit_code == 0 and "we-want-to-hear-from-you" in result.output and "KB" in result.output


def test_new_then_check_passes(workspace: Path) -> None:
    assert run(workspace, "new", "spring-2030", "--list", "workforce").exit_code == 0
    assert 'lists = ["workforce"]' in (workspace / "content" / "spring-2030" / "issue.toml").read_text()
    result = run(workspace, "check", "spring-2030", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["ok"] is True


def test_check_with_errors_raises_check_failed(workspace: Path) -> None:
    block = workspace / "content" / SAMPLE_SLUG / "12-pic.md"
    block.write_text('---\ntype: article\nheading: Pic\n---\n<img src="https://img.example.org/p.png">\n')
    result = run(workspace, "check", SAMPLE_SLUG)
    assert isinstance(result.exception, CheckFailed)
    assert "has no alt text" in result.output


def test_bad_content_is_a_content_error(workspace: Path) -> None:
    (workspace / "content" / SAMPLE_SLUG / "12-bad.md").write_text("---\ntype: poem\nheading: x\n---\n")
    result = run(workspace, "build", SAMPLE_SLUG)
    assert isinstance(result.exception, ContentError)


def test_failed_check_exits_non_zero_with_one_line(workspace: Path) -> None:
    (workspace / "content" / SAMPLE_SLUG / "12-pic.md").write_text(
        '---\ntype: article\nheading: Pic\n---\n<img src="https://img.example.org/p.png">\n')
    proc = subprocess.run([sys.executable, "-m", "bulletin", "-w", str(workspace), "check", SAMPLE_SLUG],
                          capture_output=True, text=True)
    assert proc.returncode == CheckFailed.exit_code
    assert "Traceback" not in proc.stderr and "error(s) in pre-send checks" in proc.stderr
