"""processes/heap.py: what is alive when a process is set up is kept out of later garbage
collections; what start-up left as garbage is collected first, not kept for ever."""

from __future__ import annotations

import gc
import weakref

from processes.heap import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_the_live_heap_is_frozen_and_leftover_cycles_are_collected_first() -> None:
    alive = _Node()
    cycle_a, cycle_b = _Node(), _Node()
    cycle_a.other, cycle_b.other = cycle_b, cycle_a  # garbage only a collection frees
    gone = weakref.ref(cycle_a)
    del cycle_a, cycle_b
    try:
        frozen = freeze_startup_heap()
        assert gone() is None  # collected before the freeze, not frozen with the rest
        assert frozen == gc.get_freeze_count() > 0
        assert not any(obj is alive for obj in gc.get_objects())  # no collection walks it any more
    finally:
        gc.unfreeze()  # the test process goes on as before
    assert any(obj is alive for obj in gc.get_objects())
