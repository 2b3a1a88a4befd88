"""Plain events of concurrent callers stored together (a group commit).

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

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.event import EventIn
from core.events.store import Plain, Stored

MAX_GROUP = 200  # events in one transaction

StoreMany = Callable[[Sequence[EventIn], str], list[Stored | Plain | None]]


@dataclass
class _Waiting:
    event: EventIn
    outcome: asyncio.Future[Stored | Plain | None]


class PlainGroups:
    """Groups the plain events of concurrent callers, per event loop and source."""

    def __init__(self, store_many: StoreMany) -> None:
        self._store_many = store_many
        self._waiting: dict[tuple[asyncio.AbstractEventLoop, str], list[_Waiting]] = {}
        self._draining: set[asyncio.Task[None]] = set()

    async def store(self, event: EventIn, source: str) -> Stored | Plain | None:
        """What ``store_many([event], source)[0]`` gives, stored with the others waiting."""
        loop = asyncio.get_running_loop()
        key = (loop, source)
        outcome: asyncio.Future[Stored | Plain | None] = loop.create_future()
        if key in self._waiting:  # a group is being stored: go in the next one
            self._waiting[key].append(_Waiting(event, outcome))
        else:
            self._waiting[key] = [_Waiting(event, outcome)]
            draining = loop.create_task(self._drain(key))
            self._draining.add(draining)  # held: the loop keeps only a weak reference
            draining.add_done_callback(self._draining.discard)
        return await outcome

    async def _drain(self, key: tuple[asyncio.AbstractEventLoop, str]) -> None:
        group: list[_Waiting] = []
        try:
            while waiting := self._waiting[key]:
                group, self._waiting[key] = waiting[:MAX_GROUP], waiting[MAX_GROUP:]
                await self._store_group(group, key[1])
                group = []
        except BaseException as err:  # cancelled at shutdown: nobody is left waiting for ever
            for one in group + self._waiting[key]:
                _settle(one, error=err)
            raise
        finally:
            del self._waiting[key]

    async def _store_group(self, group: list[_Waiting], source: str) -> None:
        try:
            outcomes = await asyncio.to_thread(self._store_many, [w.event for w in group], source)
        except Exception as err:
            if len(group) == 1:
                _settle(group[0], error=err)
                return
            for one in group:  # each on its own: a failure is only its own caller's
                await self._store_group([one], source)
            return
        for one, outcome in zip(group, outcomes, strict=True):
            _settle(one, outcome=outcome)


def _settle(waiting: _Waiting, *, outcome: Stored | Plain | None = None, error: BaseException | None = None) -> None:
    if waiting.outcome.done():  # its caller went away (cancelled): the event is stored all the same
        return
    if isinstance(error, asyncio.CancelledError):
        waiting.outcome.cancel()
    elif error is not None:
        waiting.outcome.set_exception(error)
    else:
        waiting.outcome.set_result(outcome)
