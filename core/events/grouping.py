"""Plain events of concurrent callers stored together (a group commit, core/group_commit.py).

Each ``POST /events`` with one event is its own caller. Storing each in a transaction of
its own costs three statements and their CPU per event; while one group is being stored,
the events that arrive wait for it and then go in the next group, one transaction of
three statements for all of them (``EventStore.store_plain_many``). One caller alone
waits for nobody: its group is itself, stored at once.

Each caller still gets its own event's outcome only after its transaction committed, so
"stored before 202" holds, and a group that fails is stored again one event at a time, so
one caller's failure is never another's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.event import EventIn
from core.events.store import Plain, Stored
from core.group_commit import GroupCommit

MAX_GROUP = 200  # events in one transaction

StoreMany = Callable[[Sequence[EventIn], str], list[Stored | Plain | None]]


class PlainGroups(GroupCommit[str, EventIn, Stored | Plain | None]):
    """Groups the plain events of concurrent callers, per event loop and source."""

    def __init__(self, store_many: StoreMany) -> None:
        super().__init__(store_many, MAX_GROUP)

    async def store(self, event: EventIn, source: str) -> Stored | Plain | None:
        """What ``store_many([event], source)[0]`` gives, stored with the others waiting."""
        return await self.submit(event, source)
