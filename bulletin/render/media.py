"""The look of one issue and the files it links to: brand (with logo) and published images.

An issue's images and the brand's logo are copied to `build/<slug>/media/`
under content-derived names, which `bulletin serve` answers at
`<public_base_url>/media/<slug>/<name>` with a year-long cache: a name never
changes meaning, so a cached copy is never stale.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bulletin.compose import Issue
from bulletin.compose.media import MediaFile, MediaProblem, is_local, load_media
from bulletin.config import Settings
from bulletin.errors import ConfigError
from bulletin.render.brand import BrandView, brand_view, effective_brand

LOGO_MAX_WIDTH = 200


def media_url(settings: Settings, slug: str) -> str:
    return f"{settings.public_base_url}/media/{slug}"


def media_folder(settings: Settings, slug: str) -> Path:
    return settings.path(settings.build_dir) / slug / "media"


def issue_brand(settings: Settings, issue: Issue) -> tuple[BrandView, tuple[MediaFile, ...]]:
    """The brand of the issue's first list (workspace [brand] plus the list's own), checked,
    with its logo resolved: a file in the workspace is published with the issue's images."""
    lists_toml = settings.path(settings.subscribers_dir) / "lists.toml"
    brand = effective_brand(settings.brand, lists_toml, issue.lists[0] if issue.lists else None)
    common = {"organisation": settings.organisation, "postal_address": settings.postal_address}
    if not brand.logo:
        return brand_view(brand, **common), ()
    if not is_local(brand.logo):
        if not brand.logo.startswith("https://"):
            raise ConfigError("logo is a file in the workspace or an https:// URL", where="[brand] logo")
        width = brand.logo_width or LOGO_MAX_WIDTH
        return brand_view(brand, **common, logo=(brand.logo, width, 0)), ()
    try:
        logo = load_media(settings.workspace, brand.logo, brand.logo_alt, brand.logo_width or None)
    except MediaProblem as exc:
        raise ConfigError(str(exc).replace("image", "logo", 1), where="[brand] logo") from None
    width = brand.logo_width or min(logo.pixel_width, LOGO_MAX_WIDTH)
    height = max(1, round(width * logo.pixel_height / logo.pixel_width))
    url = f"{media_url(settings, issue.slug)}/{logo.name}"
    return brand_view(brand, **common, logo=(url, width, height)), (logo,)


def publish_media(settings: Settings, slug: str, files: tuple[MediaFile, ...]) -> Path:
    """Copy each file to build/<slug>/media/<name> once; a name is its content, so never overwritten."""
    folder = media_folder(settings, slug)
    for media in files:
        target = folder / media.name
        if target.exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{media.name}.tmp"
        shutil.copyfile(media.source, tmp)
        os.replace(tmp, target)
    return folder
