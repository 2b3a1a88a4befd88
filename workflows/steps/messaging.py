"""send_sms and ask: every SMS goes through the send activity, which applies the
sending rules; a deferral (quiet hours, caps) is a wait in the workflow, never a drop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from language.models import AskStep, Message, SendSmsStep
from workflows import activity_names as names
from workflows.contracts import HELD_REASONS, SMS_TASK_QUEUE, SendInput, SendOutcome, SettleInput
from workflows.steps.base import JourneyEnded, Listener, Run

# One attempt: database work and one provider call (whose HTTP timeout is 10 s by
# default). Short, so a send on a worker that died is retried on another soon.
SEND_TIMEOUT = timedelta(seconds=30)
# A customer who no longer exists will not come back: that is not worth retrying.
SEND_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5),
                         non_retryable_error_types=["UnknownCustomer"])


async def deliver(run: Run, key: str, message: Message, *, reprompt: bool = False,
                  expects_reply: bool = False, extra: dict[str, Any] | None = None) -> SendOutcome:
    """Send one message, waiting out deferrals and settling unknown outcomes (the step is
    sent only once the provider's own records say so); record it on the timeline (with
    ``extra``: the channel choice, for a step with ``channel:``)."""
    assert run.journey
    purpose = message.purpose or run.journey.sending.purpose
    send = SendInput(**run.call(key), message=message, purpose=purpose, on_capped=run.journey.sending.on_capped,
                     reprompt=reprompt, expects_reply=expects_reply)
    heard = run.control_changes  # a control that comes during the attempt wakes a held send too
    outcome = await _attempt(names.SEND_SMS, send, key)
    while outcome.status in ("deferred", "unconfirmed", "absent"):
        if outcome.status == "deferred" and outcome.reason in HELD_REASONS:
            await hold(run, outcome, heard)
            heard = run.control_changes
            outcome = await _attempt(names.SEND_SMS, send.model_copy(update=run.call(key)), key)
        elif outcome.status == "deferred":
            assert outcome.defer_until is not None
            # The Web UI's details name the region rules too (absent from older histories).
            regions = f"; region rules {outcome.send_region}" if outcome.send_region else ""
            await run.block(outcome.defer_until, waiting_for=f"send window ({outcome.reason}{regions})")
            heard = run.control_changes
            outcome = await _attempt(names.SEND_SMS, send.model_copy(update=run.call(key)), key)
        elif outcome.status == "unconfirmed":
            assert outcome.settle_at is not None and outcome.message_id is not None
            run.record(key, "sms_unconfirmed", message_id=outcome.message_id, reason=outcome.reason)
            # A plain timer, not run.block: an exit during it must not leave the text unsettled
            # (events wait in the inbox; the grace is minutes).
            wait = (outcome.settle_at - run.now()).total_seconds()
            if wait > 0:
                await workflow.sleep(wait, summary=f"{key}: the provider's word on the text")
            outcome = await _attempt(names.SETTLE_SMS, SettleInput(**run.call(key), message_id=outcome.message_id),
                                     key)
        else:  # absent: the provider never got it; the rules decide again, now
            run.record(key, "sms_resend", message_id=outcome.message_id)
            outcome = await _attempt(names.SEND_SMS, send.model_copy(update=run.call(key)), key)
    details: dict[str, Any] = {"message_id": outcome.message_id, "status": outcome.status,
                               "encoding": outcome.encoding, "segments": outcome.segments}
    if outcome.reason and outcome.status == "skipped":
        details["reason"] = outcome.reason
    if outcome.send_rule:  # whose clock quiet hours followed: details only, no new command
        details["send_zone"], details["send_rule"] = outcome.send_zone, outcome.send_rule
        if outcome.send_region:  # and the state or country rules on top of the shop's window
            details["send_region"] = outcome.send_region
    run.record(key, "sms", **details, **(extra or {}))
    if outcome.status == "sent" and not reprompt and run.facts and key not in run.facts.sent:
        run.facts.sent.append(key)
    return outcome


async def hold(run: Run, outcome: SendOutcome, heard: int) -> None:
    """Wait out an operator's hold: until the next control signal (a resume sends one) or the
    re-check time, whichever comes first; a stop ends the run from inside the wait."""
    assert outcome.defer_until is not None
    # The store says stopped: a run that missed the stop signal (started as it was sent)
    # ends now, rather than hold its text at every re-check for good.
    if outcome.reason == "journey_stopped" and workflow.patched("stopped-by-the-store"):
        raise JourneyEnded("stopped")
    await run.block(outcome.defer_until, lambda: run.control_changes != heard,
                    waiting_for=f"the journey to be resumed ({outcome.reason})")


async def _attempt(activity: str, call: SendInput | SettleInput, key: str) -> SendOutcome:
    try:
        # No overall deadline: a provider or worker outage delays the text (the rules
        # run again on every attempt, so it never lands in quiet hours), it never drops it.
        outcome: SendOutcome = await workflow.execute_activity(
            activity, call, result_type=SendOutcome, task_queue=SMS_TASK_QUEUE,
            start_to_close_timeout=SEND_TIMEOUT, retry_policy=SEND_RETRY,
            summary=f"{'settle' if activity == names.SETTLE_SMS else 'send'} {key}",
        )
    except ActivityError as err:
        # Only a non-retryable failure gets here (a bug, not the provider): the journey
        # records the skip and goes on rather than fail as a whole.
        workflow.logger.error("send %s failed for good: %s", key, err.cause)
        outcome = SendOutcome(status="skipped", reason="send_failed")
    return outcome


async def send_sms(run: Run, step: SendSmsStep, key: str) -> None:
    await deliver(run, key, step.send_sms)


async def ask(run: Run, step: AskStep, key: str) -> None:
    spec = step.ask
    outcome = await deliver(run, key, spec, expects_reply=True)
    answered = False
    if outcome.status == "sent":
        deadline = run.now() + spec.timeout
        listener = Listener("sms_replied", expect=spec.expect, reply_step=key)
        run.listener = listener
        reprompted = False
        try:
            while True:
                got = await run.block(deadline, lambda: bool(listener.matches), waiting_for=f"a reply to {key}")
                if not got:
                    break
                match = listener.matches.pop(0)
                if match.valid_answer:
                    assert run.facts
                    if match.answer_event_id:
                        run.facts.text_answers[key] = match.answer_event_id
                        run.record(key, "answer", event_id=match.answer_event_id)
                    else:
                        run.facts.answers[key] = match.answer
                        run.record(key, "answer", value=match.answer)
                    answered = True
                    break
                run.record(key, "invalid_reply")
                if spec.reprompt and not reprompted:
                    reprompted = True
                    await deliver(run, f"{key}.reprompt", Message(text=spec.reprompt, purpose="transactional"),
                                  reprompt=True, expects_reply=True)
        finally:
            run.listener = None
    if not answered:
        run.record(key, "no_answer")
    await run.run_steps(step.then if answered else step.else_, f"{key}.{'then' if answered else 'else'}")
