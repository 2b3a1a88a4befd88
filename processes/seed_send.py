"""`journeys test-send`: a journey's texts, rendered with a sample customer, sent for real
to a seed list through the configured sender, so a marketer sees them on a phone.

Each text is recorded as a message with purpose ``test``, no run and no customer, and
``counts_toward_caps`` false: frequency caps count marketing texts only and journey
reports count the texts of runs, so a test never shows up in either. Links go straight
to their target (no tracked link is made) and a coupon reads ``TEST-<SERIES>`` (no code
is issued): a test has no customer to give them to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.clock import utcnow
from core.customers.context import expression_context
from language.catalog import Catalog
from language.checks_values import url_problem
from language.expressions import ExpressionError, render
from language.models import AskStep, ChooseStep, ChooseWhen, IfStep, SendSmsStep, SplitStep, StepBase, WaitForStep
from messaging.encoding import analyze
from messaging.phone import mask, to_e164
from messaging.senders.base import OutgoingSms, ProviderError, SmsSender
from processes.simulate import CustomerSpec
from store.db import Database, session_scope
from store.tables import Customer, Event, Message

MAX_RECIPIENTS = 10  # a seed list, not a campaign
TEST_PURPOSE = "test"


class TestSendError(ValueError):
    """Bad input: says what and where."""


@dataclass
class TestText:
    step: str
    text: str | None = None
    segments: int | None = None
    problem: str | None = None  # why it was not sent (it cannot be rendered for the sample)
    sent: list[str] = field(default_factory=list)  # masked numbers it went to
    failed: dict[str, str] = field(default_factory=dict)  # masked number -> the provider's reason


def message_steps(steps: Sequence[StepBase]) -> Iterator[SendSmsStep | AskStep]:
    """Every send_sms and ask step, in the order they are written, branches included."""
    for step in steps:
        if isinstance(step, SendSmsStep | AskStep):
            yield step
        if isinstance(step, IfStep | AskStep | WaitForStep):
            yield from message_steps(step.then)
            yield from message_steps(step.else_)
        elif isinstance(step, ChooseStep):
            for branch in step.choose:
                yield from message_steps(branch.steps if isinstance(branch, ChooseWhen) else branch.else_)
        elif isinstance(step, SplitStep):
            for variant in step.split.variants:
                yield from message_steps(variant.steps)


def recipients(numbers: Sequence[str], default_country: str) -> list[str]:
    """The seed list as E.164, each once; raises TestSendError naming a bad one."""
    if not numbers:
        raise TestSendError("--to: give at least one number")
    found: list[str] = []
    for raw in numbers:
        try:
            number = to_e164(raw, default_country)
        except ValueError as err:
            raise TestSendError(f"--to {raw!r}: {err}") from None
        if number not in found:
            found.append(number)
    if len(found) > MAX_RECIPIENTS:
        raise TestSendError(f"--to: at most {MAX_RECIPIENTS} numbers (got {len(found)}): a test goes to a seed list")
    return found


def send_tests(catalog: Catalog, db: Database, sender: SmsSender, journey_id: str, numbers: Sequence[str], *,
               step_id: str | None = None, customer: CustomerSpec | None = None,
               trigger: dict[str, Any] | None = None, at: datetime | None = None) -> list[TestText]:
    """Render each text of the journey (or only ``step_id``'s) and send it to every number."""
    pinned = catalog.journey(journey_id)  # KeyError: no such journey
    to = recipients(numbers, catalog.settings.default_country)
    steps = [step for step in message_steps(pinned.journey.steps) if step.id]
    if step_id is not None:
        steps = [step for step in steps if step.id == step_id]
        if not steps:
            known = ", ".join(s.id or "" for s in message_steps(pinned.journey.steps) if s.id) or "none"
            raise TestSendError(f"--step {step_id!r}: no send_sms or ask step of {journey_id} has that id "
                                f"(its steps: {known})")
    spec = customer or CustomerSpec()
    at = at or utcnow()
    results = []
    for step in steps:
        result = TestText(step=step.id or "")
        try:
            result.text = _render(catalog, db, step, spec, trigger or {}, at)
        except ExpressionError as err:
            result.problem = f"cannot render it for this customer: {err}"
            results.append(result)
            continue
        result.segments = analyze(result.text).segments
        for number in to:
            error = _send(catalog, db, sender, pinned.journey.id, result, number, at)
            if error is None:
                result.sent.append(mask(number))
            else:
                result.failed[mask(number)] = error
        results.append(result)
    return results


def _render(catalog: Catalog, db: Database, step: SendSmsStep | AskStep, spec: CustomerSpec,
            trigger: dict[str, Any], at: datetime) -> str:
    from activities.sending import pick_text

    message = step.send_sms if isinstance(step, SendSmsStep) else step.ask

    def link(url: str) -> str:
        if reason := url_problem(str(url)):
            raise ExpressionError(f"link() target {reason}")
        return str(url)

    def coupon(series: str) -> str:
        return f"TEST-{series}"

    # A customer as the sample says, never stored: nothing of it is left after the test.
    customer = Customer(id=spec.id, phone=spec.phone, first_name=spec.first_name, last_name=spec.last_name,
                        email=spec.email, locale=spec.locale, timezone=spec.timezone, birthday=spec.birthday,
                        attributes=spec.attributes, sms_consent=spec.sms_consent, created_at=at, updated_at=at)
    event = Event(id="test-send", customer_id=spec.id, type="test", occurred_at=at, received_at=at,
                  properties=trigger, source="test")
    with session_scope(db, readonly=True) as session:
        context = expression_context(session, catalog, customer, at, trigger=event,
                                     extra_functions={"link": link, "coupon": coupon})
        return render(pick_text(message, spec.locale), context).strip()


def _send(catalog: Catalog, db: Database, sender: SmsSender, journey_id: str, text: TestText, number: str,
          at: datetime) -> str | None:
    """One test text to one number, recorded first (purpose test); the provider's reason if it failed."""
    assert text.text is not None
    info = analyze(text.text)
    row = Message(id=uuid.uuid4().hex, key=f"test:{uuid.uuid4().hex}", customer_id="", journey_id=journey_id,
                  step_id=text.step, purpose=TEST_PURPOSE, counts_toward_caps=False, body=text.text,
                  reply_to=number, encoding=info.encoding, segments=info.segments, status="sending",
                  provider=sender.name, created_at=at, sent_at=at, updated_at=at)
    with session_scope(db) as session:
        session.add(row)
    callback = f"{catalog.settings.links.base_url.rstrip('/')}/twilio/status?m={row.id}"
    try:
        receipt = sender.send(OutgoingSms(to=number, body=text.text, status_callback=callback, message_key=row.key))
    except ProviderError as err:
        _settle(db, row.id, "failed", reason=err.reason, error_code=err.code)
        return str(err)
    _settle(db, row.id, "sent", provider_message_id=receipt.provider_message_id)
    return None


def _settle(db: Database, message_id: str, status: str, **fields: str | None) -> None:
    with session_scope(db) as session:
        row = session.get(Message, message_id)
        assert row is not None
        row.status = status
        for name, value in fields.items():
            setattr(row, name, value)
        session.add(row)

