"""Images that live in the issue folder: checked, measured and named by their content.

An editor drops `map.png` next to the blocks and refers to it by name, in a
block's `image:` or in Markdown (`![alt](map.png)`). Here it is checked (exists,
inside the folder, a real PNG/JPEG/GIF, at most 1 MB, not wider than 1,200 px
unless the block gives a width), measured with Pillow, and given the name it
is published under: the first 16 hex digits of its SHA-256 plus its extension,
so a changed image gets a new URL and an old email keeps its picture.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

MAX_BYTES = 1024 * 1024
MAX_UNSIZED_WIDTH = 1200   # twice the email's width: sharp on high-density screens, no bigger
CONTENT_WIDTH = 552        # 600 px email less the 24 px padding on each side
FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif"}
_LOCAL = re.compile(r"^(?![a-zA-Z][a-zA-Z0-9+.-]*:)(?!/)[^\s?#]+$")


@dataclass(frozen=True)
class MediaFile:
    """One image of the issue folder as it will be published."""

    source: Path
    name: str            # <sha256 prefix>.<ext>: the file name under build/<slug>/media/
    pixel_width: int
    pixel_height: int
    width: int           # display width in the email, px
    height: int          # display height at that width, px


class MediaProblem(ValueError):
    """Why an image cannot be used; the loader adds file and line."""


def is_local(src: str) -> bool:
    """A bare relative file name (`map.png`, `img/map.png`), not a URL and not an absolute path."""
    return bool(_LOCAL.match(src))


def load_media(folder: Path, src: str, alt: str, width: int | None = None) -> MediaFile:
    """Check and measure image `src` of issue `folder`; raises MediaProblem with the fix."""
    if not alt.strip():
        raise MediaProblem(f"image {src} has no alt text: say what it shows for readers who cannot see it")
    path = (folder / src).resolve()
    if folder.resolve() not in path.parents:
        raise MediaProblem(f"image {src} is outside the issue folder")
    if not path.is_file():
        raise MediaProblem(f"image {src} not found: put it in {folder}")
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise MediaProblem(f"image {src} is {len(data) / 1024 / 1024:.1f} MB, over the 1 MB limit: resize it "
                           f"to at most {MAX_UNSIZED_WIDTH} px wide or save it compressed (JPEG for photos)")
    try:
        with PILImage.open(path) as img:
            kind, (pw, ph) = img.format, img.size
    except (UnidentifiedImageError, OSError):
        raise MediaProblem(f"image {src} is not a PNG, JPEG or GIF image") from None
    if kind not in FORMATS:
        raise MediaProblem(f"image {src} is {kind}: mail clients show PNG, JPEG and GIF")
    if width is None and pw > MAX_UNSIZED_WIDTH:
        raise MediaProblem(f"image {src} is {pw} px wide: resize it to at most {MAX_UNSIZED_WIDTH} px, "
                           "or give the width to show it at")
    shown = width or min(pw, CONTENT_WIDTH)
    return MediaFile(source=path, name=f"{hashlib.sha256(data).hexdigest()[:16]}.{FORMATS[kind]}",
                     pixel_width=pw, pixel_height=ph, width=shown, height=max(1, round(shown * ph / pw)))
