"""A workspace's look without editing templates: `[brand]` in bulletin.toml, optionally per list.

Colours are checked against what they are drawn on before anything is
rendered: text colours need the WCAG AA ratio of 4.5:1, decoration 3:1
(WCAG 1.4.11), so a brand nobody can read is refused with the pair at fault.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from bulletin.errors import ConfigError

PAGE = "#ffffff"   # the card every block sits on
BAND = "#eef2f5"   # the band above and below the card (top line, footer)
BUTTON_TEXT = "#ffffff"
TEXT_RATIO = 4.5
DECORATION_RATIO = 3.0
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_FONT = re.compile(r"^[A-Za-z0-9 ,'\-]+$")


def _colour(value: str) -> str:
    value = value.strip()
    if not _HEX.match(value):
        raise ValueError(f"a colour is #rrggbb or #rgb, got {value!r}")
    if len(value) == 4:
        value = "#" + "".join(c * 2 for c in value[1:])
    return value.lower()


def _font(value: str) -> str:
    if not _FONT.match(value):
        raise ValueError("a font stack is names separated by commas (letters, digits, spaces, ' and -)")
    return value.strip()


def _plain(value: str) -> str:
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise ValueError("must be text without control characters")
    return " ".join(value.split())


Colour = Annotated[str, AfterValidator(_colour)]


class Brand(BaseModel):
    """Logo, colours, font and footer line; the defaults are the neutral look of the sample."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    logo: str | None = None          # an image file in the workspace, or an https URL
    logo_alt: Annotated[str, AfterValidator(_plain)] = ""
    logo_width: int | None = None    # display width in px (default: the image's, at most 200)
    primary: Colour = "#00587c"      # headings, big figures, buttons (white text on it)
    accent: Colour = "#00a1b0"       # rules, quote bars, chart bars: decoration only
    link: Colour = "#00587c"
    font: Annotated[str, AfterValidator(_font)] = "Arial, Helvetica, sans-serif"
    footer: Annotated[str, AfterValidator(_plain)] = ""


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2.x) of #rrggbb."""
    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def contrast_problems(brand: Brand) -> list[str]:
    """Every colour pair of the layout that falls short, as sentences an editor can act on."""
    pairs = [
        ("primary", brand.primary, "headings on the white page", PAGE, TEXT_RATIO),
        ("primary", brand.primary, "white button text on it", BUTTON_TEXT, TEXT_RATIO),
        ("link", brand.link, "links on the white page", PAGE, TEXT_RATIO),
        ("link", brand.link, "links in the grey header and footer band", BAND, TEXT_RATIO),
        ("accent", brand.accent, "rules and chart bars on the white page", PAGE, DECORATION_RATIO),
    ]
    problems = []
    for name, colour, what, other, need in pairs:
        ratio = contrast(colour, other)
        if ratio < need:
            problems.append(f"{name} {colour} gives {ratio:.1f}:1 for {what} ({other}); "
                            f"needs at least {need:g}:1 (WCAG AA)")
    return problems


def list_brand(lists_toml: Path, slug: str) -> dict[str, Any]:
    """The `[list.brand]` table of list `slug` in lists.toml, or {} (a missing file is no brand)."""
    try:
        data = tomllib.loads(lists_toml.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    for entry in data.get("list", []):
        if isinstance(entry, dict) and entry.get("slug") == slug:
            brand = entry.get("brand", {})
            if not isinstance(brand, dict):
                raise ConfigError("brand must be a table ([list.brand])", where=f"{lists_toml}: list {slug!r}")
            return brand
    return {}


def effective_brand(base: Brand, lists_toml: Path, slug: str | None) -> Brand:
    """The workspace brand with the list's overrides on top, checked for contrast.

    Raises ConfigError naming bulletin.toml's [brand] or the list in lists.toml.
    """
    override = list_brand(lists_toml, slug) if slug else {}
    where = f"{lists_toml}: list {slug!r}: brand" if override else "bulletin.toml: [brand]"
    try:
        brand = Brand.model_validate({**base.model_dump(exclude_unset=True), **override})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"field '{field}': {err['msg']}", where=where) from None
    problems = contrast_problems(brand)
    if problems:
        raise ConfigError("unreadable brand: " + "; ".join(problems), where=where)
    return brand


@dataclass(frozen=True)
class BrandView:
    """What templates see as `brand`: the checked colours plus the published logo and sender lines."""

    primary: str
    accent: str
    link: str
    font: str
    footer: str
    organisation: str
    postal_address: str
    logo_url: str | None = None
    logo_alt: str = ""
    logo_width: int = 0
    logo_height: int = 0


def brand_view(brand: Brand, *, organisation: str = "", postal_address: str = "",
               logo: tuple[str, int, int] | None = None) -> BrandView:
    """`logo` is (URL, width, height) once the logo has been resolved (a file published, or a URL)."""
    url, width, height = logo or (None, 0, 0)
    return BrandView(primary=brand.primary, accent=brand.accent, link=brand.link, font=brand.font,
                     footer=brand.footer, organisation=organisation, postal_address=postal_address,
                     logo_url=url, logo_alt=brand.logo_alt, logo_width=width, logo_height=height)
