"""Render stage: Issue -> Compiled (Jinja2 -> MJML -> premailer), plain text, slots, pre-send checks.

Front door, by module: `build` (compile and write an issue), `checks` (pre-send
checks), `preview` (the local preview page), `media` (issue images published and
served), `overrides` (which template comes from where). Internal: `pipeline`, `templating`,
`compiled` (the `Compiled` value other stages read).
"""

__all__ = ["build", "checks", "media", "overrides", "preview"]
