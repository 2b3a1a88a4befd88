"""send_sms with ``channel:``: a text or an email, one of them. The step sends on its first
channel and switches to the other only when the first cannot reach this customer (no usable
number or address, no consent, opted out, suppressed, bounced). A deferral (quiet hours,
caps) is waited out on the first channel, and any other skip (a render error, a cap with
``on_capped: skip``, sunset) stays a skip: switching then would go around the rules."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from language.models import SendSmsStep
from workflows import activity_names as names
from workflows.contracts import SendOutcome, StepCall
from workflows.steps.base import Run
from workflows.steps.email import deliver_email
from workflows.steps.messaging import deliver

# Marks the channel path in histories, so a later change to it can keep them replaying.
CHANNEL_PATCH = "send-channel"
# Skip reasons that mean "this channel cannot reach this customer" (texts: rules.consent and
# rules.phone; emails: activities/email.verdict and the suppression list).
UNREACHABLE = frozenset({"invalid_phone", "no_phone", "opted_out", "no_consent", "no_email", "bounced"})


def unreachable(outcome: SendOutcome) -> bool:
    reason = outcome.reason or ""
    return outcome.status == "skipped" and (reason in UNREACHABLE or reason.startswith("suppressed"))


async def send_sms(run: Run, step: SendSmsStep, key: str) -> None:
    if step.channel is None or not workflow.patched(CHANNEL_PATCH):
        await deliver(run, key, step.send_sms)
        return
    preferred = ""
    if step.channel == "preferred":
        preferred = await run.local(names.PREFERRED_CHANNEL, StepCall(**run.call(key)), result_type=str)
    first = "email" if step.channel == "email_else_sms" or preferred == "email" else "sms"
    why: dict[str, Any] = {"channel": first, "channel_rule": step.channel}
    if step.channel == "preferred":
        why["preferred"] = preferred or None  # None: no opt-in on either channel, the text goes first
    outcome = await _send_on(run, step, key, first, why)
    if unreachable(outcome):
        second = "sms" if first == "email" else "email"
        await _send_on(run, step, key, second, {"channel": second, "channel_rule": step.channel,
                                                  "fallback_reason": outcome.reason})


async def _send_on(run: Run, step: SendSmsStep, key: str, channel: str, why: dict[str, Any]) -> SendOutcome:
    if channel == "email":
        assert step.email is not None
        return await deliver_email(run, key, step.email, **why)
    return await deliver(run, key, step.send_sms, extra=why)
