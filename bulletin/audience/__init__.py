"""Audience stage: lists, subscribers, subscriptions, the consent log, import/export, signed tokens.

Front door (what the CLI, the web app and the console may import), by module:
`lists` (lists.toml sync, overview), `subscribers` (readers: get_list, find_subscriber,
who gets a send), `staff` (operations by address), `importer` / `exporter` (CSV),
`access` (the subject-access export), `directory` (what the console shows: search, a person, pending signups, bounce evidence), `optin` (signup and confirmation),
`self_service` (unsubscribe, preferences, erase from a link), `links` (every URL,
address and token), `addresses` (normalising and hashing addresses), `segments` (segments.toml and who
each one chooses), `notices` (queued single mails and their sender), `data_requests`
(export and erase by a mailed single-use link), `text` (the one character rule). Erasure everywhere
(the rows here, then delivery's outbox copies, then SQLite's old pages) is `bulletin.forget`, above
both stages: this stage never imports delivery. Internal too: `conditions` (the condition language; its parser and its two compilations are
`condition_syntax`, `condition_match` and `condition_sql`) and `targeting`.
Internal: `lifecycle` (every state change and its consent event; the modules
above call it), `tokens`, `erasure`, `bulk`.
"""

__all__ = ["access", "addresses", "data_requests", "directory", "exporter", "importer", "links", "lists", "notices",
           "optin", "segments", "self_service", "staff", "subscribers", "text"]
