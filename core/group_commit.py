"""The work of concurrent callers done together: a group commit.

While one group is being done (``do_many(items, key)``, in a thread: it is a database
transaction), the items that arrive wait and go in the next group, at most ``max_group``
at a time; a caller alone waits for nobody. Each caller gets its own item's result only
once its group is done, and a group that fails is done again item by item, so a failure
is only its own caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    result: asyncio.Future[R]


class GroupCommit(Generic[K, T, R]):
    """Groups the items of concurrent callers, per event loop and key."""

    def __init__(self, do_many: Callable[[Sequence[T], K], list[R]], max_group: int = 200) -> None:
        self._do_many = do_many
        self.max_group = max_group
        self._waiting: dict[tuple[asyncio.AbstractEventLoop, K], list[_Waiting[T, R]]] = {}
        self._draining: set[asyncio.Task[None]] = set()

    async def submit(self, item: T, key: K) -> R:
        """What ``do_many([item], key)[0]`` gives, done with the others waiting."""
        loop = asyncio.get_running_loop()
        slot = (loop, key)
        result: asyncio.Future[R] = loop.create_future()
        if slot in self._waiting:  # a group is being done: go in the next one
            self._waiting[slot].append(_Waiting(item, result))
        else:
            self._waiting[slot] = [_Waiting(item, result)]
            draining = loop.create_task(self._drain(slot))
            self._draining.add(draining)  # held: the loop keeps only a weak reference
            draining.add_done_callback(self._draining.discard)
        return await result

    async def _drain(self, slot: tuple[asyncio.AbstractEventLoop, K]) -> None:
        group: list[_Waiting[T, R]] = []
        try:
            while waiting := self._waiting[slot]:
                group, self._waiting[slot] = waiting[:self.max_group], waiting[self.max_group:]
                await self._do_group(group, slot[1])
                group = []
        except BaseException as err:  # cancelled at shutdown: nobody is left waiting for ever
            for one in group + self._waiting[slot]:
                _settle(one, error=err)
            raise
        finally:
            del self._waiting[slot]

    async def _do_group(self, group: list[_Waiting[T, R]], key: K) -> None:
        try:
            results = await asyncio.to_thread(self._do_many, [w.item for w in group], key)
        except Exception as err:
            if len(group) == 1:
                _settle(group[0], error=err)
                return
            for one in group:  # each on its own: a failure is only its own caller's
                await self._do_group([one], key)
            return
        for one, result in zip(group, results, strict=True):
            _settle(one, result=result)


def _settle(waiting: _Waiting[T, R], *, result: R | None = None, error: BaseException | None = None) -> None:
    if waiting.result.done():  # its caller went away (cancelled): the work is done all the same
        return
    if isinstance(error, asyncio.CancelledError):
        waiting.result.cancel()
    elif error is not None:
        waiting.result.set_exception(error)
    else:
        waiting.result.set_result(result)  # type: ignore[arg-type]
