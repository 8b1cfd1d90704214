"""Every content mistake at once, "did you mean", and images that live in the issue folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from bulletin.compose import load_issue
from bulletin.compose.media import MAX_BYTES
from bulletin.errors import ContentError, ContentErrors

EVENT = "---\ntype: event\ntitle: Day\nheadng: Coming up\norganisers:\n  - Us\n---\n"


def errors_of(folder: Path) -> list[str]:
    with pytest.raises(ContentError) as info:
        load_issue(folder)
    exc = info.value
    return [str(e) for e in exc.errors] if isinstance(exc, ContentErrors) else [str(exc)]


def png(path: Path, width: int, height: int, noise: bool = False) -> Path:
    img = Image.effect_noise((width, height), 90).convert("RGB") if noise else Image.new("RGB", (width, height), "#336699")
    img.save(path, format="PNG")
    return path


def test_misspelt_field_gets_did_you_mean_at_its_own_line(issue_dir: Path) -> None:
    (issue_dir / "06-event.md").write_text(EVENT)
    assert errors_of(issue_dir) == [f"{issue_dir / '06-event.md'}:4: unknown field 'headng' (did you mean 'heading'?)"]


def test_misspelt_nested_field_suggests_from_its_own_model(issue_dir: Path) -> None:
    (issue_dir / "02-a.md").write_text("---\ntype: article\nheading: A\nlink:\n  lable: Go\n  url: https://example.org/\n---\n")
    assert errors_of(issue_dir) == [f"{issue_dir / '02-a.md'}:5: unknown field 'link.lable' (did you mean 'label'?)"]


def test_three_mistakes_in_three_places_are_all_reported(issue_dir: Path) -> None:
    (issue_dir / "issue.toml").write_text('title = "T"\ndate = "soon"\npreheader = "x"\nlists = ["shared-services"]\n')
    (issue_dir / "06-event.md").write_text(EVENT)
    (issue_dir / "07-docs.md").write_text(
        "---\ntype: documents\nheading: Docs\ndocuments:\n  - title: T\n    url: javascript:alert(1)\n---\n")
    errors = errors_of(issue_dir)
    assert len(errors) == 3
    assert errors[0].startswith(f"{issue_dir / 'issue.toml'}:2: field 'date'")
    assert errors[1] == f"{issue_dir / '06-event.md'}:4: unknown field 'headng' (did you mean 'heading'?)"
    assert errors[2].startswith(f"{issue_dir / '07-docs.md'}:6: field 'documents.0.url'")


def test_several_mistakes_in_one_block_and_its_body_are_all_reported(issue_dir: Path) -> None:
    (issue_dir / "02-a.md").write_text(
        "---\ntype: callout\nheading: A\ncontact: nobody\nbuton:\n  label: x\n  url: https://example.org/\n---\n"
        "see [this](page.html) and ![](map.png)\n")
    errors = errors_of(issue_dir)
    assert len(errors) == 4, errors
    assert any(":4: field 'contact'" in e for e in errors)
    assert any(":5: unknown field 'buton' (did you mean 'button'?)" in e for e in errors)
    assert any(":9: bad link in body" in e for e in errors)
    assert any(":9: image map.png has no alt text" in e for e in errors)


def test_block_image_in_the_folder_is_measured_named_and_linked(issue_dir: Path) -> None:
    data = png(issue_dir / "map.png", 800, 400).read_bytes()
    (issue_dir / "02-map.md").write_text("---\ntype: article\nheading: Map\nimage:\n  src: map.png\n  alt: A map\n---\n")
    issue = load_issue(issue_dir, media_url="https://news.example.org/media/test-issue")
    name = f"{hashlib.sha256(data).hexdigest()[:16]}.png"
    (media,) = issue.media
    assert (media.name, media.pixel_width, media.pixel_height, media.width, media.height) == (name, 800, 400, 552, 276)
    image = issue.blocks[1].fields.image
    assert (image.src, image.width, image.height) == (f"https://news.example.org/media/test-issue/{name}", 552, 276)


def test_markdown_image_in_the_folder_gets_url_width_and_height(issue_dir: Path) -> None:
    png(issue_dir / "small.png", 300, 150)
    (issue_dir / "02-a.md").write_text("---\ntype: article\nheading: A\n---\n![Small chart](small.png)\n")
    issue = load_issue(issue_dir, media_url="https://x.example.org/media/test-issue")
    html = issue.blocks[1].body_html
    assert f'src="https://x.example.org/media/test-issue/{issue.media[0].name}"' in html
    assert 'width="300"' in html and 'height="150"' in html and 'alt="Small chart"' in html
    assert "[Small chart]" in issue.blocks[1].body_text


def test_an_image_used_twice_is_published_once(issue_dir: Path) -> None:
    png(issue_dir / "a.png", 100, 100)
    (issue_dir / "02-a.md").write_text("---\ntype: article\nheading: A\nimage: {src: a.png, alt: A}\n---\n![A](a.png)\n")
    assert len(load_issue(issue_dir).media) == 1


@pytest.mark.parametrize(("make", "front", "expected"), [
    (None, "image: {src: gone.png, alt: Gone}", "image gone.png not found"),
    ("ok", "image: {src: pic.png, alt: ' '}", "field 'image.alt'"),
    ("wide", "image: {src: pic.png, alt: Wide}", "is 1600 px wide: resize it to at most 1200 px, or give the width"),
    ("big", "image: {src: pic.png, alt: Big, width: 500}", "over the 1 MB limit: resize it"),
    ("text", "image: {src: pic.png, alt: Text}", "is not a PNG, JPEG or GIF image"),
    (None, "image: {src: ../outside.png, alt: Out}", "outside the issue folder"),
])
def test_unusable_images_are_refused_with_the_fix(issue_dir: Path, make: str | None, front: str, expected: str) -> None:
    pic = issue_dir / "pic.png"
    if make == "ok":
        png(pic, 10, 10)
    elif make == "wide":
        png(pic, 1600, 100)
    elif make == "big":
        png(pic, 1000, 1000, noise=True)
        assert pic.stat().st_size > MAX_BYTES
    elif make == "text":
        pic.write_text("not an image")
    png(issue_dir.parent / "outside.png", 10, 10)
    (issue_dir / "02-a.md").write_text(f"---\ntype: article\nheading: A\n{front}\n---\n")
    (error,) = errors_of(issue_dir)
    assert error.startswith(f"{issue_dir / '02-a.md'}:") and expected in error


def test_a_wide_image_with_a_width_is_accepted_at_that_width(issue_dir: Path) -> None:
    png(issue_dir / "pic.png", 1600, 800)
    (issue_dir / "02-a.md").write_text("---\ntype: article\nheading: A\nimage: {src: pic.png, alt: Wide, width: 500}\n---\n")
    image = load_issue(issue_dir).blocks[1].fields.image
    assert (image.width, image.height) == (500, 250)
