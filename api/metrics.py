"""Prometheus metrics. Counters and latencies are this process's (the sum of every
process's under `journeys api --processes N`); message and journey counts are read from
the database at scrape time, so they cover every worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func
from sqlmodel import col, select

from language.catalog import Catalog
from language.models import EventTrigger
from store.db import Database, session_scope
from store.tables import Enrollment, Message

# Set by `journeys api --processes N` for its processes before they import this module:
# prometheus_client then keeps every value in a file there, and a scrape adds them up.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
REGISTRY = CollectorRegistry(auto_describe=True)  # where the metrics are made


def _scraped() -> CollectorRegistry:
    if not os.environ.get(MULTIPROCESS_DIR):
        return REGISTRY
    every_process = CollectorRegistry()
    multiprocess.MultiProcessCollector(every_process)
    return every_process


SCRAPED = _scraped()  # what /metrics serves (and the database counts are added to)
EVENTS_RECEIVED = Counter("journeys_events_received", "Events received over HTTP", ["type", "duplicate"],
                          registry=REGISTRY)
EVENT_SECONDS = Histogram("journeys_event_handling_seconds",
                          "Time to route one event (store, signal, start); a batch's time is shared by its events",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=REGISTRY)
BUILT_IN = {"opted_in", "opted_out", "link_clicked", "sms_replied", "sms_delivered", "sms_failed", "tier_changed",
            "points_expiring", "segment_entered", "segment_exited", "referral_converted", "purchase", "signup",
            "cart_abandoned"}


def event_type_label(event_type: str, catalog: Catalog) -> str:
    """Known types only: a label per arbitrary type would let clients grow the series."""
    known = BUILT_IN | {j.journey.trigger.event for j in catalog.journeys.values()
                        if isinstance(j.journey.trigger, EventTrigger)}
    return event_type if event_type in known else "other"


class DatabaseCollector:
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Any]:
        messages = GaugeMetricFamily("journeys_messages", "Messages by status", labels=["status", "purpose"])
        started = CounterMetricFamily("journeys_started", "Journey runs started", labels=["journey"])
        ended = CounterMetricFamily("journeys_ended", "Journey runs ended", labels=["journey", "outcome"])
        active = GaugeMetricFamily("journeys_active", "Journey runs in progress", labels=["journey"])
        half_made = GaugeMetricFamily("journeys_entries_not_started",
                                      "Entries whose workflow start is not confirmed yet (the sweeper starts them)",
                                      labels=["journey"])
        with session_scope(self.db, readonly=True) as session:
            for state, purpose, count in session.exec(
                    select(Message.status, Message.purpose, func.count()).group_by(Message.status, Message.purpose)):
                messages.add_metric([state, purpose], count)
            totals: dict[str, int] = {}
            for journey, state, outcome, count in session.exec(
                    select(Enrollment.journey_id, Enrollment.status, Enrollment.outcome, func.count())
                    .group_by(Enrollment.journey_id, Enrollment.status, col(Enrollment.outcome))):
                totals[journey] = totals.get(journey, 0) + count
                if state == "active":
                    active.add_metric([journey], count)
                else:
                    ended.add_metric([journey, outcome or ""], count)
            for journey, count in totals.items():
                started.add_metric([journey], count)
            for journey, count in session.exec(
                    select(Enrollment.journey_id, func.count())
                    .where(Enrollment.status == "active", col(Enrollment.started_at).is_(None))
                    .group_by(Enrollment.journey_id)):
                half_made.add_metric([journey], count)
        yield from (messages, started, ended, active, half_made)

    def describe(self) -> list[Any]:
        return []
