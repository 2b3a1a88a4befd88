"""Which event types a journey listens to while it runs: the router signals a run only
with those, so a busy customer's events do not fill every run's history."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from language.models import AskStep, Journey, Message, SendSmsStep, StepBase, WaitForStep, children


def listens_to(journey: Journey) -> frozenset[str]:
    types = {rule.event for rule in journey.exit_on}
    for step in _walk(journey.steps):
        if isinstance(step, WaitForStep):
            types.add(step.wait_for.event)
        if isinstance(step, AskStep):
            types.add("sms_replied")
        message = step.send_sms if isinstance(step, SendSmsStep) else step.ask if isinstance(step, AskStep) else None
        if message is not None and _has_links(message):
            types.add("link_clicked")
    return frozenset(types)


def _has_links(message: Message) -> bool:
    texts = [message.text or "", *(message.texts or {}).values()]
    return any("link(" in text for text in texts)


def _walk(steps: Sequence[StepBase]) -> Iterator[StepBase]:
    for step in steps:
        yield step
        for _, nested in children(step):
            yield from _walk(nested)
