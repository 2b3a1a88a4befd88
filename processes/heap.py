"""The garbage collector of a long-running process, once it is set up.

Everything alive when a worker or API process is ready (modules, the SDK, SQLAlchemy's
mappers, the journeys catalog: about 260,000 objects in a worker) stays alive for the
life of the process, yet every full collection walked it all again: 150-230 ms during
which nothing else in the process ran, in the middle of a burst of reactions. Frozen,
a full collection walks only what the work made since (20-75 ms; bench/README.md,
"Events benchmark")."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what start-up left over, then keep every live object out of later
    collections (``gc.freeze``: they are still freed when their last reference goes).
    Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
