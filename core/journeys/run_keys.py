"""Run keys: a journey's ``run_key`` read from an event, as the hash runs are known by.

A keyed journey holds "one run at a time" per customer and key (each cart its own
reminder). The key is the value of the expression with ``trigger`` bound to the event;
ids and the database only ever see its hash (workflows.io.run_key_hash).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.customers.context import event_view
from language.expressions import ExpressionError, build_context, evaluate
from language.models import MAX_RUN_KEY_VALUE, Journey
from store.tables import Event
from workflows.io import run_key_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyOf:
    """What an event says about a journey's run key: its hash, or why there is none."""

    hash: str | None
    problem: str | None = None  # "no run key" (missing or empty), "run key too long"


def key_of(journey: Journey, event: Event) -> KeyOf:
    assert journey.run_key is not None
    try:
        value = evaluate(journey.run_key, build_context({"trigger": event_view(event)}, {}))
    except ExpressionError as err:  # the kind, never the message: it may quote the event's data
        log.warning("run_key of %s failed to evaluate (%s)", journey.id, err.kind)
        return KeyOf(None, "no run key")
    if value is None or isinstance(value, dict | list) or str(value) == "":
        return KeyOf(None, "no run key")
    key = str(value)
    if len(key) > MAX_RUN_KEY_VALUE:
        return KeyOf(None, "run key too long")
    return KeyOf(run_key_hash(journey.id, key))


def reaches(journey: Journey, run_key: str | None, event: Event) -> bool:
    """Whether an event for the customer reaches their run with this key: an unkeyed run,
    or an event without the key (a purchase naming no cart reaches every run), hears it;
    an event with a key reaches only the run of that key."""
    if journey.run_key is None or run_key is None:
        return True
    said = key_of(journey, event)
    return said.hash is None or said.hash == run_key
