"""The web app: signup with double opt-in, confirm, one-click unsubscribe, preferences, archive.

Routes live in `pages/` and only parse, call one flow function and render.
The flows (`signup_flow`, `member_flow`, `archive`) hold the session-level
work and call the audience lifecycle API for every state change, so the
consent log stays the single audit trail.
"""
