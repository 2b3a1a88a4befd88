"""Steps that change the customer: points, segments, attributes, consent, events, exit.
Each activity is idempotent by (run, step), so a retry or a replay writes once."""

from __future__ import annotations

from typing import Any

from language.models import (
    AwardPointsStep,
    EmitStep,
    ExitStep,
    RedeemRewardStep,
    SetStep,
    UnsubscribeStep,
    UpdateSegmentsStep,
)
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
from workflows.steps.base import JourneyEnded, Run


async def award_points(run: Run, step: AwardPointsStep, key: str) -> None:
    spec = step.award_points
    expires = spec.expires_in.total_seconds() if spec.expires_in else None
    result: AwardPointsOutcome = await run.local(
        names.AWARD_POINTS,
        AwardPointsInput(**run.call(key), points=spec.points, reason=spec.reason, expires_in_seconds=expires),
        result_type=AwardPointsOutcome,
    )
    run.record(key, "points", points=result.points, balance=result.balance)


async def redeem_reward(run: Run, step: RedeemRewardStep, key: str) -> None:
    result: RedeemRewardOutcome = await run.local(
        names.REDEEM_REWARD, RedeemRewardInput(**run.call(key), reward=step.redeem_reward.reward),
        result_type=RedeemRewardOutcome,
    )
    if result.code is not None and run.facts is not None:
        run.facts.rewards[key] = result.code
    run.record(key, "reward", reward=step.redeem_reward.reward, code=result.code, reason=result.reason,
               points=result.points, balance=result.balance)


async def update_segments(run: Run, step: UpdateSegmentsStep, key: str) -> None:
    spec = step.update_segments
    result: SegmentsOutcome = await run.local(
        names.UPDATE_SEGMENTS,
        UpdateSegmentsInput(**run.call(key), add=spec.add, remove=spec.remove),
        result_type=SegmentsOutcome,
    )
    run.record(key, "segments", add=spec.add, remove=spec.remove, changed_in=result.added,
               changed_out=result.removed)


async def set_(run: Run, step: SetStep, key: str) -> None:
    result: SetAttributesOutcome = await run.local(
        names.SET_ATTRIBUTES, SetAttributesInput(**run.call(key), values=step.set),
        result_type=SetAttributesOutcome,
    )
    # A failure is recorded, not raised: the journey goes on (replay-safe: no new command).
    failed: dict[str, Any] = {"failed": result.failed} if result.failed else {}
    run.record(key, "set", keys=result.keys, **failed)


async def unsubscribe(run: Run, step: UnsubscribeStep, key: str) -> None:
    await run.local(names.UNSUBSCRIBE, UnsubscribeInput(**run.call(key), reason=step.unsubscribe.reason))
    run.record(key, "unsubscribe", reason=step.unsubscribe.reason)


async def emit(run: Run, step: EmitStep, key: str) -> None:
    result: EmitOutcome = await run.local(
        names.EMIT, EmitInput(**run.call(key), event=step.emit.event, properties=step.emit.properties),
        result_type=EmitOutcome,
    )
    failed: dict[str, Any] = {"failed": result.failed} if result.failed else {}
    run.record(key, "emit", event=step.emit.event, event_id=result.event_id, **failed)


async def exit_(run: Run, step: ExitStep, key: str) -> None:
    run.record(key, "exit", outcome=step.exit)
    raise JourneyEnded(step.exit)
