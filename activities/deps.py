"""What activities need from the outside world, handed in by the worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from activities.metrics import EngineMetrics
from core.clock import utcnow
from core.events.router import EventRouter
from language.catalog import Catalog
from messaging.senders.base import SmsSender
from messaging.senders.email import ConsoleEmailSender, EmailSender
from shops.base import DiscountPlatform
from store.db import Database
from workflows.contracts import StepCall


@dataclass
class Deps:
    catalog: Catalog
    db: Database
    sender: SmsSender
    router: EventRouter
    # How long after an attempt with an unknown outcome the provider's records are
    # trusted to show the message if it has it (absent then: sent again).
    settle_after: timedelta = timedelta(minutes=2)
    # The server's own secrets (API token, Twilio auth token, database password): a text
    # holding one is never sent. Handed in by the composition code, which reads them.
    secrets: tuple[str, ...] = ()
    # The worker's own series (sends, settlements, refreshes), served on its /metrics.
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    # Email goes through its own sender (SMTP or the console); the console unless configured.
    email_sender: EmailSender = field(default_factory=ConsoleEmailSender)
    # The shop platforms' admin APIs by name (shopify, woocommerce): where platform-backed
    # coupon codes are created before a text carries them. Unconfigured: such texts wait.
    shops: Mapping[str, DiscountPlatform] = field(default_factory=dict)


def moment(call: StepCall) -> datetime:
    """The time a decision is made at: the journey's clock in simulations (the
    time-skipping server moves it, the wall clock does not), the wall clock otherwise."""
    return call.at if call.run.simulated else utcnow()


def run_key(call: StepCall) -> str:
    """The business key of one step of one run: the basis of every idempotent write."""
    return f"{call.run.enrollment_id}:{call.step_key}"
