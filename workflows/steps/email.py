"""send_email: the activity applies the email rules and hands the message to the relay
exactly once. A deferral (an email frequency cap) is a wait, never a drop; there are no
quiet hours for email. No settlement: an unknown outcome is final (``unconfirmed``), as
SMTP cannot be asked what it accepted."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from language.models import EmailMessage, SendEmailStep
from workflows import activity_names as names
from workflows.contracts import HELD_REASONS, SMS_TASK_QUEUE, SendEmailInput, SendOutcome
from workflows.steps.base import Run
from workflows.steps.messaging import SEND_RETRY, SEND_TIMEOUT, hold


async def send_email(run: Run, step: SendEmailStep, key: str) -> None:
    await deliver_email(run, key, step.send_email)


async def deliver_email(run: Run, key: str, message: EmailMessage, **extra: Any) -> SendOutcome:
    """Send one email, waiting out deferrals; record it on the timeline (with ``extra``:
    the channel choice, for a step with ``channel:``)."""
    assert run.journey
    purpose = message.purpose or run.journey.sending.purpose
    call = SendEmailInput(**run.call(key), message=message, purpose=purpose, on_capped=run.journey.sending.on_capped)
    heard = run.control_changes
    outcome = await _attempt(call, key)
    while outcome.status == "deferred":
        assert outcome.defer_until is not None
        if outcome.reason in HELD_REASONS:
            await hold(run, outcome, heard)
        else:
            await run.block(outcome.defer_until, waiting_for=f"email send window ({outcome.reason})")
        heard = run.control_changes
        outcome = await _attempt(call.model_copy(update=run.call(key)), key)
    details: dict[str, Any] = {"message_id": outcome.message_id, "status": outcome.status}
    if outcome.reason and outcome.status in ("skipped", "unconfirmed"):
        details["reason"] = outcome.reason
    run.record(key, "email", **details, **extra)
    if outcome.status == "sent" and run.facts and key not in run.facts.sent:
        run.facts.sent.append(key)
    return outcome


async def _attempt(call: SendEmailInput, key: str) -> SendOutcome:
    try:
        # The same worker and queue as texts: the senders live there. No overall deadline:
        # a relay outage delays the email, it never drops it.
        outcome: SendOutcome = await workflow.execute_activity(
            names.SEND_EMAIL, call, result_type=SendOutcome, task_queue=SMS_TASK_QUEUE,
            start_to_close_timeout=SEND_TIMEOUT, retry_policy=SEND_RETRY, summary=f"email {key}",
        )
    except ActivityError as err:
        workflow.logger.error("email %s failed for good: %s", key, err.cause)
        outcome = SendOutcome(status="skipped", reason="send_failed")
    return outcome
