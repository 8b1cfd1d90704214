"""Bulk jobs freeze what was alive before them out of the collector, and give it back after."""

from __future__ import annotations

import gc
import weakref

import pytest

from bulletin.heap import long_lived_frozen


def test_a_job_freezes_what_lived_before_it_and_gives_it_back_however_it_ends() -> None:
    gc.unfreeze()  # whatever an earlier test left (a CLI main() freezes on its way out)
    with long_lived_frozen():
        frozen = gc.get_freeze_count()
        assert frozen > 1000
        with long_lived_frozen():  # inside another job: the outer one keeps charge
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), long_lived_frozen():
        raise RuntimeError("the job failed")
    assert gc.get_freeze_count() == 0


def test_garbage_from_before_a_job_is_collected_not_frozen() -> None:
    """An engine no one holds any more may still have its pooled connections open until the collector
    reaches it: freezing it would keep them open for the whole job (or for good)."""
    gc.unfreeze()

    class Held:
        pass

    a, b = Held(), Held()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    with long_lived_frozen():
        assert gone() is None


def test_garbage_made_during_a_job_is_still_collected() -> None:
    gc.unfreeze()

    class Node:
        pass

    with long_lived_frozen():
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
