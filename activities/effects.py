"""Steps that change the customer. Each write is keyed by (run, step): a retried or
replayed step finds its earlier write and does nothing again. Changes that other
journeys may react to (segments, consent, tiers, emitted events) go through the
engine's one event path."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from temporalio import activity

from activities.deps import Deps, moment, run_key
from core.customers import consent
from core.customers.context import expression_context
from core.customers.records import get_customer
from core.event import EventIn, follow_up_id
from core.loyalty import ledger as loyalty
from core.loyalty import rewards
from core.segments import refresh as segments
from language.bounds import MAX_VALUE_BYTES
from language.expressions import ExpressionError, render
from store.db import session_scope
from store.tables import AttributeChange, Event
from workflows import activity_names as names
from workflows.contracts import (
    AwardPointsInput,
    AwardPointsOutcome,
    EmitInput,
    EmitOutcome,
    RedeemRewardInput,
    RedeemRewardOutcome,
    SegmentsOutcome,
    SetAttributesInput,
    SetAttributesOutcome,
    UnsubscribeInput,
    UpdateSegmentsInput,
)

log = logging.getLogger(__name__)


class _Failed(Exception):
    """A value that cannot be written: the step fails with ``reason``, the run goes on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _render_values(templates: dict[str, str], context: dict[str, Any], where: str) -> dict[str, str]:
    """Every value rendered and within MAX_VALUE_BYTES, or _Failed (logged without the values)."""
    values = {}
    for name, template in templates.items():
        try:
            values[name] = render(template, context)
        except ExpressionError as err:
            log.warning("%s: %s could not be rendered (%s); nothing written", where, name, err.kind)
            raise _Failed("render_error") from None
        if len(json.dumps(values[name]).encode()) > MAX_VALUE_BYTES:
            log.warning("%s: %s is over %d bytes; nothing written", where, name, MAX_VALUE_BYTES)
            raise _Failed("too_long")
    return values


class EffectActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def _route(self, events: list[EventIn], origin: str) -> None:
        for event in events:
            await self.deps.router.route(event, source="journey", origin=origin)

    @activity.defn(name=names.AWARD_POINTS)
    async def award_points(self, input: AwardPointsInput) -> AwardPointsOutcome:
        outcome, follow_ups = await asyncio.to_thread(self._award, input)
        await self._route(follow_ups, input.run.enrollment_id)
        return outcome

    def _award(self, input: AwardPointsInput) -> tuple[AwardPointsOutcome, list[EventIn]]:
        at = moment(input)
        rules = self.deps.catalog.loyalty
        with session_scope(self.deps.db) as session:
            customer = get_customer(session, input.run.customer_id, for_update=True)
            expires = (at + timedelta(seconds=input.expires_in_seconds) if input.expires_in_seconds
                       else loyalty.default_expiry(rules, at))
            loyalty.award(session, customer, key=run_key(input), points=input.points, reason=input.reason,
                          at=at, expires_at=expires, source=f"journey:{input.run.journey_id}")
            old, new = loyalty.refresh_points_and_tier(session, customer, rules, at)
            change = loyalty.tier_changed_event(rules, customer.id, old, new,
                                                event_id=follow_up_id(run_key(input), "tier"), at=at)
            return AwardPointsOutcome(points=input.points, balance=customer.points), [change] if change else []

    @activity.defn(name=names.REDEEM_REWARD)
    async def redeem_reward(self, input: RedeemRewardInput) -> RedeemRewardOutcome:
        return await asyncio.to_thread(self._redeem, input)

    def _redeem(self, input: RedeemRewardInput) -> RedeemRewardOutcome:
        # Keyed by (run, step): a retried or replayed step returns the coupon it got.
        key = run_key(input)
        if len(key) > rewards.MAX_KEY_LENGTH:  # a step without an id, deep in branches: its path
            key = "run:" + hashlib.sha256(key.encode()).hexdigest()
        try:
            done = rewards.redeem(self.deps.db, self.deps.catalog.loyalty, input.run.customer_id, input.reward,
                                  key=key, at=moment(input))
        except rewards.RewardRefused as err:  # the journey goes on; later steps can test reward_code()
            log.info("run %s step %s: reward %s refused (%s)", input.run.enrollment_id, input.step_key,
                     input.reward, err.reason)
            return RedeemRewardOutcome(code=None, reason=err.reason)
        return RedeemRewardOutcome(code=done.code, points=done.points, balance=done.balance)

    @activity.defn(name=names.UPDATE_SEGMENTS)
    async def update_segments(self, input: UpdateSegmentsInput) -> SegmentsOutcome:
        # The same code as the API's manual segment changes: memberships and their
        # segment_entered/exited events, each change announced once even across retries.
        change = await segments.change_memberships(self.deps.router, input.run.customer_id, add=input.add,
                                                   remove=input.remove, at=moment(input), key=run_key(input),
                                                   origin=input.run.enrollment_id)
        return SegmentsOutcome(added=change.added, removed=change.removed)

    @activity.defn(name=names.SET_ATTRIBUTES)
    def set_attributes(self, input: SetAttributesInput) -> SetAttributesOutcome:
        at = moment(input)
        key = run_key(input)
        with session_scope(self.deps.db) as session:
            if session.get(AttributeChange, key) is None:
                customer = get_customer(session, input.run.customer_id, for_update=True)
                trigger = session.get(Event, input.run.trigger_event_id) if input.run.trigger_event_id else None
                context = expression_context(session, self.deps.catalog, customer, at, trigger=trigger,
                                             run=input.run, facts=input.facts)
                try:
                    values = _render_values(input.values, context, f"journey {input.run.journey_id}, step "
                                                                   f"{input.step_key}")
                except _Failed as failed:
                    return SetAttributesOutcome(keys=[], failed=failed.reason)
                customer.attributes = {**(customer.attributes or {}), **values}
                customer.updated_at = at
                session.add(customer)
                session.add(AttributeChange(key=key, customer_id=customer.id, values=values, changed_at=at))
        return SetAttributesOutcome(keys=sorted(input.values))

    @activity.defn(name=names.UNSUBSCRIBE)
    async def unsubscribe(self, input: UnsubscribeInput) -> None:
        at = moment(input)
        changed = await asyncio.to_thread(
            consent.record, self.deps.db, input.run.customer_id, "opted_out",
            source=f"journey:{input.run.journey_id}", at=at, disclosure=f"unsubscribed by journey: {input.reason}",
        )
        if changed:
            await self._route([EventIn(id=f"{run_key(input)}:opted_out", type="opted_out",
                                       customer_id=input.run.customer_id, occurred_at=at,
                                       properties={"source": "journey", "reason": input.reason})],
                              input.run.enrollment_id)

    @activity.defn(name=names.EMIT)
    async def emit(self, input: EmitInput) -> EmitOutcome:
        try:
            event = await asyncio.to_thread(self._render_event, input)
        except _Failed as failed:
            return EmitOutcome(event_id=None, failed=failed.reason)
        await self._route([event], input.run.enrollment_id)
        return EmitOutcome(event_id=event.id)

    def _render_event(self, input: EmitInput) -> EventIn:
        at = moment(input)
        with session_scope(self.deps.db) as session:
            customer = get_customer(session, input.run.customer_id)
            trigger = session.get(Event, input.run.trigger_event_id) if input.run.trigger_event_id else None
            context = expression_context(session, self.deps.catalog, customer, at, trigger=trigger,
                                         run=input.run, facts=input.facts)
            properties: dict[str, Any] = _render_values(
                input.properties, context, f"journey {input.run.journey_id}, step {input.step_key}")
        properties["journey"] = input.run.journey_id
        return EventIn(id=run_key(input), type=input.event, customer_id=input.run.customer_id, occurred_at=at,
                       properties=properties)

