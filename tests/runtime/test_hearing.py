"""What a `wait_for` hears: events that come while it waits, or while the run is busy
with the steps before it; never those that came during an earlier wait."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from core.event import EventIn
from messaging.senders.base import OutgoingSms, ProviderReceipt
from tests.runtime.support import CountingSender, at, write_journeys
from workflows.journey import JourneyWorkflow


class HeldSender(CountingSender):
    """Holds each text until the test lets it go: the run is busy sending meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = threading.Event()
        self.release = threading.Event()

    def send(self, sms: OutgoingSms) -> ProviderReceipt:
        self.sending.set()
        assert self.release.wait(30), "the test never let the text go"
        return super().send(sms)


@pytest.fixture
def sender() -> HeldSender:
    return HeldSender()


REMIND_THEN_WAIT = """
id: remind
name: Remind
trigger: {event: cart_abandoned}
steps:
  - id: nudge
    send_sms: {text: "Your cart is waiting"}
  - wait_for: {event: purchase, timeout: 1d}
    then: [{exit: bought}]
    else: [{exit: not_bought}]
"""


async def test_a_purchase_while_the_text_before_the_wait_is_sent_is_heard(journeys_dir: Path, simulation,
                                                                           sender: HeldSender) -> None:
    catalog = write_journeys(journeys_dir, {"remind": REMIND_THEN_WAIT})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("remind")
        assert await asyncio.to_thread(sender.sending.wait, 30)
        bought = EventIn(id="bought", type="purchase", customer_id="sim-customer", occurred_at=run.sim.clock,
                         properties={"amount": 5})
        assert (await run.sim.router.route(bought)).signalled == ["remind"]  # while the text is in flight
        sender.release.set()
        timeline = await run.timeline("remind")
        handle = run.sim.env.client.get_workflow_handle(await run.sim.run_id("remind", "sim-customer"))
        history = await handle.fetch_history()
    assert timeline["outcome"] == "bought"
    # The patched path replays on the code that made it.
    replayer = Replayer(workflows=[JourneyWorkflow], data_converter=pydantic_data_converter)
    assert (await replayer.replay_workflow(history)).replay_failure is None
    assert timeline["ended_at"] == at("0s")  # heard as the wait began, not at its timeout


WAIT_THEN_WAIT_FOR = """
id: later
name: Later
trigger: {event: cart_abandoned}
steps:
  - wait: 30m
  - wait_for: {event: purchase, timeout: 1h}
    then: [{exit: bought}]
    else: [{exit: not_bought}]
"""


async def test_a_purchase_during_an_earlier_wait_is_not_heard(journeys_dir: Path, simulation,
                                                              sender: HeldSender) -> None:
    sender.release.set()
    catalog = write_journeys(journeys_dir, {"later": WAIT_THEN_WAIT_FOR})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("later")
        await run.at('purchase@+10m {"amount": 5}')
        timeline = await run.timeline("later")
    assert timeline["outcome"] == "not_bought" and timeline["ended_at"] == at("1h30m")
