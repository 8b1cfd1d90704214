"""The garbage collector during a bulk job: what was alive before the job is not the job's garbage.

An import, a queue or a send makes millions of short-lived objects, and every so
often they set off a full collection, which walks every object alive: the
modules, SQLAlchemy's and pydantic's class graphs, the models, the compiled
issue. Those outlive the job, so each walk finds nothing, and it holds the GIL
the whole time. Frozen (`gc.freeze`), they are skipped; they are given back to
the collector when the job ends, so a long-running worker leaks nothing. A
collection runs first, so nothing that is already garbage (an engine no one
holds, with its pooled connections still open) is frozen with them.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def long_lived_frozen() -> Iterator[None]:
    """Freeze what is alive now for the length of the block; a block inside another leaves it to the outer."""
    if gc.get_freeze_count():
        yield
        return
    gc.collect()  # what is garbage now must not be frozen with the rest (an engine's open connections)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
