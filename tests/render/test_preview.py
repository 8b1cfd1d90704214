"""`bulletin preview`: the build served on 127.0.0.1 with both widths side by side."""

from __future__ import annotations

import threading
import urllib.request

from bulletin.config import Settings
from bulletin.render.preview import PREVIEW_FILE, prepare_preview
from tests.render.conftest import SAMPLE_SLUG


def test_preview_serves_both_widths_and_the_build_on_loopback(render_settings: Settings) -> None:
    result, server = prepare_preview(render_settings, SAMPLE_SLUG, port=0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/{PREVIEW_FILE}").read().decode()
        assert 'src="email.html" width="700"' in page and 'src="email.html" width="375"' in page
        email = urllib.request.urlopen(f"http://127.0.0.1:{port}/email.html").read()
        assert email == result.email_html.read_bytes()
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/email.txt").read().decode()
        assert "IN THIS ISSUE" in text
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
