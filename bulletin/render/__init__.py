"""Render stage: Issue -> Compiled (Jinja2 -> MJML -> premailer), plain text, slots, pre-send checks."""
