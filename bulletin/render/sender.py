"""Who sends a list, as the footers name it: the list's own identity, else the workspace's.

CAN-SPAM wants a postal address in every commercial mail and the UK's PECR the
sender's identity, so both footers carry them. lists.toml may set
`organisation` and `postal_address` per list; bulletin.toml's settings of the
same names are the defaults. An address missing from both is a `bulletin check`
error, never a silent blank.
"""

from __future__ import annotations

from bulletin.audience.lists import ListSpec, lists_file, load_lists
from bulletin.config import Settings
from bulletin.render.compiled import Sender


def sender_of(settings: Settings, *, list_name: str, from_name: str, organisation: str = "",
              postal_address: str = "") -> Sender:
    """A list's footer identity; the organisation falls back to the From name rather than to nothing."""
    return Sender(
        organisation=organisation or settings.organisation or from_name,
        list_name=list_name,
        postal_address=postal_address or settings.postal_address,
    )


def sender_for_list(settings: Settings, slug: str) -> Sender:
    """The identity lists.toml gives `slug`; the workspace defaults when the file does not name it."""
    spec = _spec(settings, slug)
    if spec is None:
        return sender_of(settings, list_name=slug, from_name=slug)
    return sender_of(settings, list_name=spec.name, from_name=spec.from_name, organisation=spec.organisation,
                     postal_address=spec.postal_address)


def _spec(settings: Settings, slug: str) -> ListSpec | None:
    path = lists_file(settings.path(settings.subscribers_dir))
    if not path.is_file():
        return None
    return next((s for s in load_lists(path) if s.slug == slug), None)

