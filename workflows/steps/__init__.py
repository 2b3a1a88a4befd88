"""One handler per step type. A handler is ``async def (run, step, key) -> None``, where
``run`` is the run's services (``workflows.steps.base.Run``: now, record, call, local,
block, run_steps). Adding a step type is adding a handler here and its model in the
language."""

from __future__ import annotations

from workflows.steps import branching, channels, effects, email, messaging, waiting
from workflows.steps.base import Handler

HANDLERS: dict[str, Handler] = {
    "send_sms": channels.send_sms,  # with or without channel:
    "send_email": email.send_email,
    "ask": messaging.ask,
    "wait": waiting.wait,
    "wait_for": waiting.wait_for,
    "if": branching.if_,
    "choose": branching.choose,
    "split": branching.split,
    "award_points": effects.award_points,
    "redeem_reward": effects.redeem_reward,
    "update_segments": effects.update_segments,
    "set": effects.set_,
    "unsubscribe": effects.unsubscribe,
    "emit": effects.emit,
    "exit": effects.exit_,
}
