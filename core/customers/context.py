"""The names an expression or template can use, built for one customer at one moment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.customers.habits import habit_values
from core.customers.records import customer_view, segments_of
from language.catalog import Catalog
from language.expressions import Namespace, build_context
from store.tables import Customer, Event
from workflows.contracts import Facts, RunRef


def event_view(event: Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {"id": event.id, "type": event.type, "occurred_at": event.occurred_at,
            "properties": dict(event.properties or {})}


def _answer(session: Session, facts: Facts, step: str) -> Any:
    if step in facts.answers:
        return facts.answers[step]
    event_id = facts.text_answers.get(step)
    reply = session.get(Event, event_id) if event_id else None
    return " ".join(str((reply.properties or {}).get("body", "")).split()) if reply else None


def expression_context(
    session: Session,
    catalog: Catalog,
    customer: Customer,
    at: datetime,
    *,
    trigger: Event | None = None,
    event: Event | None = None,
    run: RunRef | None = None,
    facts: Facts | None = None,
    extra_functions: dict[str, Callable[..., Any]] | None = None,
    reads: frozenset[str] | None = None,
) -> dict[str, Any]:
    """``reads``: the fields of ``customer`` the expression names (``language.expressions.
    customer_reads``; None: all of them); fields that need a query of their own are
    computed only when named."""
    view = {**customer_view(session, customer, at, reads), **habit_values(session, customer, at, reads)}
    facts = facts or Facts(entered_at=at)
    values: dict[str, Any] = {
        "customer": view,
        "brand": catalog.settings.brand,
        "trigger": event_view(trigger),
        "event": event_view(event),
    }
    journey: dict[str, Any] = {}
    if run is not None:
        journey = {
            "id": run.journey_id,
            "version": run.journey_version,
            "entered_at": facts.entered_at,
            "days_in_journey": (at - facts.entered_at).days,
        }

    def segments() -> list[str]:
        if "segments" not in view:  # not named: in_segment() reads them when called
            view["segments"] = segments_of(session, customer.id)
        return view["segments"]

    functions: dict[str, Callable[..., Any]] = {
        "now": lambda: at,
        "clicked": lambda step=None: bool(facts.clicked) if step is None else step in facts.clicked,
        "replied": lambda step=None: bool(facts.replied) if step is None else step in facts.replied,
        "answer": lambda step: _answer(session, facts, step),
        "sent": lambda step: step in facts.sent,
        "in_segment": lambda name: name in segments(),
        "reward_code": lambda step: facts.rewards.get(step),
    }
    functions.update(extra_functions or {})
    context = build_context(values, functions)
    journey_ns = Namespace(build_context(journey, {}))
    journey_ns["variant"] = lambda split: facts.variants.get(split)
    context["journey"] = journey_ns
    return context
