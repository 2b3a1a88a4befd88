"""The engine's own Prometheus series, as a worker sees them: each worker process has
its own registry (no global one: several workers in one test process never share
counts). Labels are closed vocabularies (journey, status, reason, source): never a
customer id or a number, which would grow a series per person."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 120, 300, 900, 3600)
REFRESH_BUCKETS = (0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.sends = Counter("journeys_sms_sends", "Journey send attempts by outcome",
                             ["journey", "status", "reason"], registry=self.registry)
        self.deferrals = Counter("journeys_sms_deferrals", "Journey sends deferred (quiet hours, caps)",
                                 ["journey", "reason"], registry=self.registry)
        self.settlements = Counter("journeys_sms_settlements",
                                   "Settle attempts of unconfirmed texts: settled (the provider has it, or a "
                                   "receipt said so), pending (too early), absent (sent again)",
                                   ["outcome"], registry=self.registry)
        self.routing_lag = Histogram("journeys_event_routing_lag_seconds",
                                     "From an event's receipt to the end of its routing, by who routed it",
                                     ["source"], buckets=LAG_BUCKETS, registry=self.registry)
        self.segment_refresh = Histogram("journeys_segment_refresh_seconds", "Duration of one segment refresh",
                                         ["outcome"], buckets=REFRESH_BUCKETS, registry=self.registry)
        self.activity_failures = Counter("journeys_activity_failures",
                                         "Activity attempts that raised, by activity type and error type "
                                         "(Temporal retries them unless the error is non-retryable)",
                                         ["activity_type", "error"], registry=self.registry)

    def sent(self, journey: str, status: str, reason: str | None) -> None:
        self.sends.labels(journey, status, reason or "").inc()
        if status == "deferred":
            self.deferrals.labels(journey, reason or "").inc()

    def routed(self, source: str, lag: timedelta) -> None:
        self.routing_lag.labels(source).observe(max(lag.total_seconds(), 0.0))


class CountFailures(Interceptor):
    """A worker interceptor: every activity attempt that raises is counted (then re-raised).
    Declared from the start, unlike the SDK's failure counter, which appears on the first."""

    def __init__(self, metrics: EngineMetrics) -> None:
        self.metrics = metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Counting(next, self.metrics)


class _Counting(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, metrics: EngineMetrics) -> None:
        super().__init__(next)
        self.metrics = metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except Exception as err:
            self.metrics.activity_failures.labels(activity.info().activity_type, type(err).__name__).inc()
            raise
