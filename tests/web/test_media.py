"""`/media/<slug>/<name>`: a built issue's images, cached for a year, nothing else."""

from __future__ import annotations

from fastapi.testclient import TestClient

from bulletin.config import Settings
from bulletin.render.build import build_issue

ISSUE = "2016-shared-service-map"


def test_built_images_are_served_with_long_cache_headers(client: TestClient, synced: Settings) -> None:
    result = build_issue(synced, ISSUE)
    (image,) = (result.folder / "media").iterdir()
    response = client.get(f"/media/{ISSUE}/{image.name}")
    assert response.status_code == 200 and response.content == image.read_bytes()
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert f"{synced.public_base_url}/media/{ISSUE}/{image.name}" in result.email_html.read_text()


def test_anything_else_under_media_is_not_found(client: TestClient, synced: Settings) -> None:
    build_issue(synced, ISSUE)
    for path in (f"/media/{ISSUE}/0123456789abcdef.png", f"/media/{ISSUE}/compiled.json",
                 f"/media/{ISSUE}/..%2Femail.html", "/media/Bad Slug/0123456789abcdef.png"):
        response = client.get(path)
        assert response.status_code == 404 and response.headers["cache-control"] == "no-store", path
