"""The built wheel on its own: installed into a fresh virtualenv and run from an empty folder.

The checkout is copied first (so the build never sees stale build/ output) and
the commands run with no PYTHONPATH and from a folder outside it, so templates,
the sample issue and the sample lists can only come from inside the wheel.
Dependencies come from the system site-packages; bulletin itself from the wheel.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", ".bulletin", "*.egg-info", "__pycache__", ".venv", ".pytest_cache", ".ruff_cache",
        "tests", "bench", "test-artifacts"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("BULLETIN_")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src)], tmp, env)
    wheel = next((tmp / "dist").glob("bulletin-*.whl"))
    shutil.rmtree(src)  # nothing of the checkout is left to fall back on
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")], tmp, env)
    _run([str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], tmp, env)
    env["PATH"] = f"{tmp / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return tmp / "venv", env


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_bulletin_is_imported_from_the_wheel(venv: tuple[Path, dict[str, str]], empty: Path) -> None:
    path, env = venv
    out = _run([str(path / "bin" / "python"), "-c",
                "import bulletin.defaults as d; print(d.__file__); print(d.defaults_dir('templates'))"], empty, env)
    module, templates = out.split()
    assert module.startswith(str(path)) and templates.startswith(str(path))


def test_init_then_build_from_an_empty_folder(venv: tuple[Path, dict[str, str]], empty: Path) -> None:
    _path, env = venv
    _run(["bulletin", "init", "my-bulletin"], empty, env)
    ws = empty / "my-bulletin"
    _run(["bulletin", "lists", "sync"], ws, env)
    _run(["bulletin", "build", "first-issue", "--quiet"], ws, env)
    assert "Our first issue" in (ws / "build" / "first-issue" / "email.html").read_text()


def test_demo_then_build_the_sample_from_an_empty_folder(venv: tuple[Path, dict[str, str]], empty: Path) -> None:
    _path, env = venv
    report = _run(["bulletin", "demo", "demo-ws", "--json"], empty, env)
    assert '"sent": 40' in report.replace(" ", "") or '"sent":40' in report.replace(" ", "")
    _run(["bulletin", "-w", "demo-ws", "build", "2016-shared-service-map", "--quiet"], empty, env)
    media = list((empty / "demo-ws" / "build" / "2016-shared-service-map" / "media").iterdir())
    assert [p.suffix for p in media] == [".png"]


def test_serve_answers_signup_from_an_empty_folder(venv: tuple[Path, dict[str, str]], empty: Path) -> None:
    _path, env = venv
    _run(["bulletin", "init", "."], empty, env)
    _run(["bulletin", "lists", "sync"], empty, env)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["bulletin", "serve", "--port", str(port)], cwd=empty, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        body = _get_when_up(f"http://127.0.0.1:{port}/signup", server)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert "Our newsletter" in body and "<form" in body


def _get_when_up(url: str, server: subprocess.Popen[bytes], wait: float = 30.0) -> str:
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
                return response.read().decode()
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"bulletin serve did not answer: {server.stderr.read() if server.stderr else b''}") from None
            time.sleep(0.2)
