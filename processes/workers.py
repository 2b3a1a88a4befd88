"""Putting the pieces together: the workers that run journeys and send SMS.

The worker, the dev command, the tests and simulations all build workers here, so
they run the very same workflow and activities.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkerDeploymentConfig

from activities.decisions import DecisionActivities
from activities.deps import Deps
from activities.effects import EffectActivities
from activities.email import EmailActivities
from activities.fanout import FanoutActivities
from activities.loyalty import LoyaltyActivities
from activities.metrics import CountFailures, EngineMetrics
from activities.outbox import OutboxActivities
from activities.progress import ProgressActivities
from activities.replies import ReplyActivities
from activities.retention import RetentionActivities
from activities.segments import SegmentActivities
from activities.sending import SendingActivities
from core.events.router import EventRouter
from language.catalog import Catalog
from messaging.senders.base import SmsSender
from messaging.senders.email import ConsoleEmailSender, EmailSender
from shops.base import DiscountPlatform
from store.db import Database
from workflows.contracts import JOURNEY_TASK_QUEUE, SMS_TASK_QUEUE
from workflows.fanout import JourneyFanout
from workflows.journey import JourneyWorkflow, PinnedJourneyWorkflow
from workflows.loyalty_maintenance import LoyaltyMaintenance
from workflows.outbox import EventSweep, EventSweeper
from workflows.reply import ReplyWorkflow
from workflows.retention import Retention
from workflows.segment_refresh import SegmentRefreshWorkflow

# Workflows run without Temporal's sandbox. It would import each workflow's module afresh
# for every run and cross into the sandbox for every payload of every activation: most
# of a short run's worker CPU (bench/README.md). Its checks guard code it imports itself;
# the step code was passed through it already. Determinism is kept by the code (no clock,
# randomness or I/O outside workflow.*) and checked by tests/replay, which replays every
# recorded history in the default sandbox.
WORKFLOW_RUNNER = UnsandboxedWorkflowRunner()


def build_workers(client: Client, catalog: Catalog, db: Database, sender: SmsSender, *,
                  router: EventRouter | None = None, simulated: bool = False,
                  clock_offset_seconds: float = 0.0, sms_per_second: float | None = None,
                  settle_after: timedelta = timedelta(minutes=2), secrets: tuple[str, ...] = (),
                  threads: int = 16, graceful_shutdown: timedelta = timedelta(seconds=30),
                  deployment: WorkerDeploymentConfig | None = None,
                  metrics: EngineMetrics | None = None, email_sender: EmailSender | None = None,
                  shops: Mapping[str, DiscountPlatform] | None = None,
                  max_cached_workflows: int = 2000) -> list[Worker]:
    """One worker for journeys (workflows and their local activities), one for SMS.

    SMS sending has its own task queue so a carrier's throughput limit
    (``sms_per_second``, enforced by the server across all workers) never slows
    the journeys themselves. ``max_cached_workflows``: the sticky cache, runs kept in
    memory between their workflow tasks (JOURNEYS_WORKER_MAX_CACHED_WORKFLOWS). ``metrics``:
    where the activities and the router count (the worker process serves it on its
    /metrics); default, a registry nobody reads.
    """
    router = router or EventRouter(catalog, db, client, simulated=simulated,
                                   clock_offset_seconds=clock_offset_seconds)
    metrics = metrics or EngineMetrics()
    router.on_routed = router.on_routed or metrics.routed
    deps = Deps(catalog=catalog, db=db, sender=sender, router=router, settle_after=settle_after, secrets=secrets,
                metrics=metrics, email_sender=email_sender or ConsoleEmailSender(), shops=shops or {})
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="activity")
    decisions, effects, progress = DecisionActivities(deps), EffectActivities(deps), ProgressActivities(deps)
    journey_activities: list[Callable[..., Any]] = [
        decisions.evaluate, decisions.next_local_time, decisions.inspect_event, decisions.preferred_channel,
        effects.award_points, effects.redeem_reward, effects.update_segments, effects.set_attributes,
        effects.unsubscribe, effects.emit,
        progress.record_progress, progress.finish,
    ]
    fanout, outbox = FanoutActivities(deps), OutboxActivities(deps)
    journey_activities += [fanout.select_due, fanout.enter_batch, LoyaltyActivities(deps).maintain_page,
                           outbox.sweep_for, outbox.sweep, SegmentActivities(deps).refresh,
                           RetentionActivities(deps).apply]
    journey = PinnedJourneyWorkflow if deployment else JourneyWorkflow  # same code; unversioned: no behaviour
    journeys = Worker(client, task_queue=JOURNEY_TASK_QUEUE,
                      workflows=[journey, ReplyWorkflow, JourneyFanout, LoyaltyMaintenance, EventSweeper,
                                 EventSweep, SegmentRefreshWorkflow, Retention],
                      activities=journey_activities, activity_executor=executor,
                      # the SDK refuses more concurrent workflow tasks than cache slots (0: no cache, no limit)
                      max_concurrent_workflow_tasks=min(64, max_cached_workflows or 64),
                      max_cached_workflows=max_cached_workflows, workflow_runner=WORKFLOW_RUNNER,
                      graceful_shutdown_timeout=graceful_shutdown, deployment_config=deployment,
                      interceptors=[CountFailures(metrics)])
    sending, replies, emails = SendingActivities(deps), ReplyActivities(deps), EmailActivities(deps)
    # On shutdown, a send already talking to the provider gets time to finish: cut
    # short, it would end `unconfirmed` (and wait for the provider's records to settle it).
    sms = Worker(client, task_queue=SMS_TASK_QUEUE, activities=[sending.send_sms, sending.settle_sms,
                                                                replies.send, replies.settle, emails.send_email],
                 activity_executor=executor, max_task_queue_activities_per_second=sms_per_second,
                 graceful_shutdown_timeout=graceful_shutdown, deployment_config=deployment,
                 interceptors=[CountFailures(metrics)])
    return [journeys, sms]
