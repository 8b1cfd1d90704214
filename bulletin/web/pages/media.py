"""Images of built issues: `/media/<slug>/<name>` from build/<slug>/media/.

A name is the first 16 hex digits of the file's SHA-256, so it never changes
meaning: browsers and mail proxies may keep it for a year.
"""

from __future__ import annotations

import re

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from bulletin.errors import NotFound
from bulletin.render.media import media_folder
from bulletin.web.context import web_of

router = APIRouter()
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
NAME = re.compile(r"^[0-9a-f]{16}\.(png|jpg|gif)$")
LONG_CACHE = "public, max-age=31536000, immutable"


@router.get("/media/{slug}/{name}")
def media(request: Request, slug: str, name: str) -> Response:
    if not SLUG.match(slug) or not NAME.match(name):
        raise NotFound("no such image", where=f"{slug}/{name}")
    path = media_folder(web_of(request).settings, slug) / name
    if not path.is_file():
        raise NotFound("no such image", where=f"{slug}/{name}")
    return FileResponse(path, headers={"Cache-Control": LONG_CACHE})
