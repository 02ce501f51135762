"""blox._gc.gc_paused: the collector is off inside, back on after, and what the block kept skips the young generations."""

from __future__ import annotations

import gc
import weakref

import pytest

from blox._gc import gc_paused


class _Node:
    """A GC-tracked object that can be found by identity in gc.get_objects()."""


def _generation_of(obj: object) -> int | None:
    for g in range(3):
        if any(o is obj for o in gc.get_objects(generation=g)):
            return g
    return None


def test_collector_off_inside_and_back_on_after():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the inner block leaves it off
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_back_on_after_an_exception():
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_left_off_when_it_was_off():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_what_the_block_kept_goes_to_the_oldest_generation():
    # Without the promotion, the new objects would sit in generation 0, and the first allocation after
    # the block would scan all of them (for a 300,000-tensor header, 0.1 s).
    gc.collect()
    with gc_paused():
        kept = [_Node() for _ in range(2000)]
        gen0_inside = gc.get_count()[0]
    assert gen0_inside >= 2000  # made while paused: counted in generation 0
    assert _generation_of(kept[0]) == 2 and _generation_of(kept[-1]) == 2
    assert gc.get_count()[0] < 2000


def test_objects_someone_froze_stay_frozen():
    gc.collect()
    frozen = _Node()
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with gc_paused():
            young = _Node()
        assert gc.get_freeze_count() == before  # not unfrozen by the block
        assert _generation_of(frozen) is None  # still in the permanent generation
        assert _generation_of(young) == 0  # nothing moved
    finally:
        gc.unfreeze()


def test_cycles_made_in_the_block_are_still_collected():
    gc.collect()
    with gc_paused():
        a, b = _Node(), _Node()
        a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert gone() is not None  # a cycle: reference counting alone never frees it
    gc.collect()  # a full collection finds it in the oldest generation
    assert gone() is None
