"""What activities need from the outside world, handed in by the worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from activities.contracts import StepCall
from engine.customers import utcnow
from language.catalog import Catalog

if TYPE_CHECKING:
    from engine.events import EventRouter
    from messaging.senders.base import SmsSender


@dataclass
class Deps:
    catalog: Catalog
    engine: Any  # sqlalchemy Engine
    sender: SmsSender
    router: EventRouter


def moment(call: StepCall) -> datetime:
    """The time a decision is made at: the journey's clock in simulations (the
    time-skipping server moves it, the wall clock does not), the wall clock otherwise."""
    return call.at if call.run.simulated else utcnow()


def run_key(call: StepCall) -> str:
    """The business key of one step of one run: the basis of every idempotent write."""
    return f"{call.run.enrollment_id}:{call.step_key}"
