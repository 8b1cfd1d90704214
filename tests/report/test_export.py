import base64
import csv
import io
import re

import pytest

from bulletin.db import session_scope
from bulletin.report import issue_report
from bulletin.report.chart import chart_png
from bulletin.report.export import to_csv, to_html
from tests.report.ledger import generate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def report(engine):
    generate(engine, people=60)
    with session_scope(engine) as s:
        return issue_report(s, "ours")


def test_csv_has_one_row_per_figure_and_per_block(report):
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert rows[0] == ["metric", "value"]
    values = dict(rows[1:])
    assert values["issue"] == "ours"
    assert int(values["sent"]) == report.sent
    assert int(values["hard_bounces"]) == report.hard_bounces
    assert int(values["replies_block:hear-from-you"]) == report.replies_by_block[1].replies
    assert len(rows) == 2 + len(report.metrics()) + len(report.replies_by_block)


def test_html_embeds_the_chart_as_a_png_and_shows_the_figures(report):
    page = to_html(report)
    assert page.startswith("<!doctype html>")
    match = re.search(r'<img id="chart"[^>]* src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert match, "chart image missing"
    png = base64.b64decode(match.group(1))
    assert png.startswith(PNG_MAGIC) and len(png) > 5000
    assert f"<tr><th>Sent</th><td>{report.sent}</td></tr>" in page
    assert "We want to hear from you" in page
    assert "http://" not in page and "https://" not in page  # nothing remote to load


def test_html_escapes_issue_text():
    from bulletin.report.figures import IssueReport

    r = IssueReport(issue_id=1, slug="s", title="<script>x</script>", subject="a & b", recipients=0,
                    sent=0, deferred=0, failed=0, pending=0, cancelled=0, hard_bounces=0,
                    soft_bounces=0, complaints=0, unsubscribes=0, replies=0, auto_replies=0)
    page = to_html(r)
    assert "<script>" not in page and "&lt;script&gt;" in page and "a &amp; b" in page


def test_chart_renders_for_an_empty_issue_too(report):
    from dataclasses import replace

    empty = replace(report, timeline=(), replies_by_block=())
    assert chart_png(empty).startswith(PNG_MAGIC)
    assert chart_png(report) != chart_png(empty)
