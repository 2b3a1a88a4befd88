"""The journey workflow: a small interpreter that walks a pinned journey definition.

The core only walks step lists, keeps the run's facts, and turns incoming events
into exits, clicks, replies and matches. Each step type is handled by its own small
function in ``workflows.steps``; adding a step type never touches this file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from language.models import Expect, Journey, StepBase, step_kind
    from workflows import activity_names as names
    from workflows.contracts import EventMatch, Facts, FinishInput, InspectEventInput, ProgressInput, RunRef
    from workflows.io import (
        CONTROL_SIGNAL,
        EVENT_SIGNAL,
        STATUS_QUERY,
        WORKFLOW_NAME,
        ControlSignal,
        EventSignal,
        JourneyInput,
        JourneyResult,
        JourneyStatus,
        TimelineEntry,
    )
    from workflows.steps import HANDLERS
    from workflows.steps.base import JourneyEnded, Listener

STEP_ATTRIBUTE = SearchAttributeKey.for_keyword("JourneyStep")
OUTCOME_ATTRIBUTE = SearchAttributeKey.for_keyword("JourneyOutcome")
CONTROL_ATTRIBUTE = SearchAttributeKey.for_keyword("JourneyControl")

LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                          non_retryable_error_types=["UnknownCustomer"])
MAX_SEEN_EVENT_IDS = 500
MAX_BETWEEN_WAITS = 50
# Events that came while the run was busy between waits are heard by the next wait_for
# (histories made before it replay as they ran: without, such an event was dropped).
BETWEEN_WAITS_PATCH = "events-between-waits-heard"


@workflow.defn(name=WORKFLOW_NAME)
class JourneyWorkflow:
    def __init__(self) -> None:
        self.inbox: list[EventSignal] = []
        self.seen_event_ids: list[str] = []
        self.listener: Listener | None = None
        # Events that came while no wait was running (the run busy with a step): the
        # next wait_for hears them; any wait that starts forgets them.
        self.between_waits: list[EventSignal] = []
        self.current_step: str | None = None
        self.outcome: str | None = None
        self.timeline: list[TimelineEntry] = []
        self.facts: Facts | None = None
        self.journey: Journey | None = None
        self.run_ref: RunRef | None = None
        self.offset = timedelta(0)
        self.control = "active"  # an operator's control of the journey (the `control` signal)
        self.control_changes = 0

    # --- messages from outside ------------------------------------------------------

    @workflow.signal(name=EVENT_SIGNAL)
    def on_event(self, signal: EventSignal) -> None:
        # Events may be delivered more than once (retries, replays of the router):
        # the event id makes each count once.
        if signal.event_id in self.seen_event_ids:
            return
        self.seen_event_ids.append(signal.event_id)
        del self.seen_event_ids[:-MAX_SEEN_EVENT_IDS]
        self.inbox.append(signal)

    @workflow.signal(name=CONTROL_SIGNAL)
    def on_control(self, signal: ControlSignal) -> None:
        # Only a signal changes these: histories without one replay as before.
        self.control = signal.state
        self.control_changes += 1
        workflow.upsert_search_attributes([
            CONTROL_ATTRIBUTE.value_unset() if signal.state == "active" else CONTROL_ATTRIBUTE.value_set(signal.state)
        ])

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> JourneyStatus:
        facts = self.facts
        return JourneyStatus(
            step=self.current_step,
            waiting_for=self.listener.event_type if self.listener else None,
            outcome=self.outcome,
            variants=facts.variants if facts else {},
            sent=facts.sent if facts else [],
            clicked=facts.clicked if facts else [],
            answers=facts.answers if facts else {},
        )

    # --- the run --------------------------------------------------------------------

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        self.journey = input.pinned.journey
        self.offset = timedelta(seconds=input.clock_offset_seconds)
        self.run_ref = RunRef(
            enrollment_id=input.enrollment_id,
            customer_id=input.customer_id,
            journey_id=self.journey.id,
            journey_version=input.pinned.version,
            trigger_event_id=input.trigger_event_id,
            simulated=input.simulated,
        )
        started_at = self.now()
        self.facts = Facts(entered_at=started_at)
        try:
            await self.run_steps(self.journey.steps, "steps")
            self.outcome = "completed"
        except JourneyEnded as ended:
            self.outcome = ended.outcome
        except asyncio.CancelledError:
            self.outcome = "cancelled"
            await asyncio.shield(asyncio.ensure_future(self._finish()))
            raise
        await self._finish()
        return JourneyResult(
            outcome=self.outcome,
            started_at=started_at,
            ended_at=self.now(),
            timeline=self.timeline,
            variants=self.facts.variants,
        )

    async def _finish(self) -> None:
        assert self.run_ref and self.facts and self.outcome
        self.current_step = None
        workflow.upsert_search_attributes(
            [STEP_ATTRIBUTE.value_unset(), OUTCOME_ATTRIBUTE.value_set(self.outcome)]
        )
        workflow.set_current_details(f"**Ended**: `{self.outcome}`")
        await self.local(
            names.FINISH,
            FinishInput(run=self.run_ref, at=self.now(), outcome=self.outcome, variants=self.facts.variants),
        )

    async def run_steps(self, steps: Sequence[StepBase], path: str) -> None:
        for index, step in enumerate(steps):
            key = step.id or f"{path}.{index}"
            await self.process_inbox(between_waits=True)
            self.current_step = key
            kind = step_kind(step)
            assert kind is not None
            await HANDLERS[kind](self, step, key)

    # --- services for step handlers -----------------------------------------------------

    def now(self) -> datetime:
        return workflow.now() + self.offset

    def record(self, step: str, action: str, at: datetime | None = None, **details: Any) -> None:
        self.timeline.append(TimelineEntry(at=at or self.now(), step=step, action=action, details=details))

    def call(self, step_key: str) -> dict[str, Any]:
        """The common fields of a step activity's input."""
        assert self.run_ref and self.facts
        return {"run": self.run_ref, "at": self.now(), "step_key": step_key, "facts": self.facts}

    async def local(self, name: str, arg: Any, result_type: type | None = None) -> Any:
        return await workflow.execute_local_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_RETRY,
        )

    async def block(self, until: datetime | None, done: Callable[[], bool] = lambda: False,
                    waiting_for: str = "time") -> bool:
        """Wait until ``done()`` or the deadline, handling events (and exits) as they come.

        Returns whether ``done()`` became true. Every wait in a journey goes through
        here, so an `exit_on` event ends the journey even in the middle of a 30-day wait.
        """
        assert self.run_ref and self.facts
        deadline = f" until {until.isoformat()}" if until else ""
        workflow.set_current_details(f"**Step** `{self.current_step}`: waiting for {waiting_for}{deadline}")
        workflow.upsert_search_attributes([STEP_ATTRIBUTE.value_set(self.current_step or "")])
        await self.local(
            names.RECORD_PROGRESS,
            ProgressInput(run=self.run_ref, step=self.current_step, variants=self.facts.variants),
        )
        await self._hear_between_waits()
        while True:
            await self.process_inbox()
            if done():
                return True
            remaining = None if until is None else (until - self.now()).total_seconds()
            if remaining is not None and remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: bool(self.inbox) or self.control == "stopped" or done(),
                    timeout=remaining,
                    timeout_summary=f"{self.current_step}: {waiting_for}",
                )

    async def _hear_between_waits(self) -> None:
        """A wait starts: its listener hears the events that came since the last wait ended
        (a purchase while the text before the wait_for was being sent counts)."""
        came, self.between_waits = self.between_waits, []
        listener = self.listener
        heard = [signal for signal in came if listener and listener.event_type == signal.type]
        if heard and workflow.patched(BETWEEN_WAITS_PATCH):
            for signal in heard:
                await self._hear(signal)

    async def process_inbox(self, between_waits: bool = False) -> None:
        """Turn pending events into facts; raise JourneyEnded for an `exit_on` match, or
        once an operator stopped the journey. ``between_waits``: no wait is running, so an
        event no listener hears is kept for the next one."""
        assert self.journey and self.facts
        if self.control == "stopped":
            raise JourneyEnded("stopped")
        while self.inbox:
            signal = self.inbox.pop(0)
            for rule in self.journey.exit_on:
                if rule.event == signal.type and (await self.inspect(signal, rule.where)).matched:
                    raise JourneyEnded(f"exited:{signal.type}")
            if signal.type == "link_clicked":
                match = await self.inspect(signal)
                if match.matched and match.step and match.step not in self.facts.clicked:
                    self.facts.clicked.append(match.step)
            elif signal.type == "sms_replied":
                await self._take_reply(signal)
                continue
            if self.listener is not None:
                await self._hear(signal)
            elif between_waits:
                self.between_waits.append(signal)
                del self.between_waits[:-MAX_BETWEEN_WAITS]

    async def _hear(self, signal: EventSignal) -> None:
        listener = self.listener
        if listener and listener.event_type == signal.type:
            match = await self.inspect(signal, listener.where)
            if match.matched:
                listener.matches.append(match)

    async def _take_reply(self, signal: EventSignal) -> None:
        assert self.facts
        listener = self.listener
        expect = listener.expect if listener and listener.event_type == "sms_replied" else None
        match = await self.inspect(signal, expect=expect)
        if not (match.matched and match.reply_to):
            return
        if match.reply_to not in self.facts.replied:
            self.facts.replied.append(match.reply_to)
        if listener and listener.reply_step == match.reply_to:
            listener.matches.append(match)

    async def inspect(self, signal: EventSignal, where: str | None = None,
                      expect: Expect | None = None) -> EventMatch:
        return await self.local(
            names.INSPECT_EVENT,
            InspectEventInput(**self.call(self.current_step or "start"), event_id=signal.event_id,
                              where=where, expect=expect),
            result_type=EventMatch,
        )


@workflow.defn(name=WORKFLOW_NAME, versioning_behavior=VersioningBehavior.PINNED)
class PinnedJourneyWorkflow(JourneyWorkflow):
    """The journey as versioned workers run it (JOURNEYS_WORKER_VERSIONING=on): pinned, a
    customer in a journey finishes it on the build it started on (processes/versioning.py).
    The same code; a class of its own because an unversioned worker must not declare a
    versioning behaviour (the server refuses its workflow tasks)."""

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)
