"""What a step handler may use of the run that calls it, and the two things the run and
its handlers share: the listener a step waits on and the exception that ends a journey.

Handlers depend on this Protocol, never on the workflow class, so the interpreter
(workflows/journey.py) imports the handlers and not the other way round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from language.models import Expect, Journey, StepBase
from workflows.contracts import EventMatch, Facts, RunRef


class JourneyEnded(Exception):
    """Raised to leave the journey from anywhere: an `exit` step or an `exit_on` event."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class Listener:
    """What the run is waiting for right now (a `wait_for` event, or an `ask` reply)."""

    def __init__(self, event_type: str, where: str | None = None, expect: Expect | None = None,
                 reply_step: str | None = None) -> None:
        self.event_type = event_type
        self.where = where
        self.expect = expect
        self.reply_step = reply_step
        self.matches: list[EventMatch] = []


class Run(Protocol):
    """The run's services for its step handlers (implemented by JourneyWorkflow)."""

    journey: Journey | None
    facts: Facts | None
    run_ref: RunRef | None
    listener: Listener | None
    control_changes: int  # how many operator controls the run has heard of

    def now(self) -> datetime: ...

    def record(self, step: str, action: str, at: datetime | None = None, **details: Any) -> None: ...

    def call(self, step_key: str) -> dict[str, Any]: ...

    async def local(self, name: str, arg: Any, result_type: type | None = None) -> Any: ...

    async def block(self, until: datetime | None, done: Callable[[], bool] = ...,
                    waiting_for: str = ...) -> bool: ...

    async def run_steps(self, steps: Sequence[StepBase], path: str) -> None: ...


# ``async def handler(run, step, key)``: step is the handler's own step model.
Handler = Callable[[Run, Any, str], Awaitable[None]]
