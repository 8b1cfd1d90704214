"""GET /healthz: the app answers without the database, with the same protective headers as every page."""

from __future__ import annotations


def test_healthz_answers_ok_as_plain_text_and_is_never_cached(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.text == "ok\n"
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.headers["cache-control"] == "no-store"


def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
