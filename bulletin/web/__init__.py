"""The web shell: signup with double opt-in, confirm, one-click unsubscribe, preferences, archive.

HTTP only. Routes live in `pages/` and only parse, call one stage function and
render; the work itself is in `bulletin.audience.optin` (signup, confirm),
`bulletin.audience.self_service` (unsubscribe, preferences, export, erase) and
`bulletin.delivery.archive`, which call the audience lifecycle API for every
state change, so the consent log stays the single audit trail.
"""
