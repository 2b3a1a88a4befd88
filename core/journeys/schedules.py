"""The Temporal Schedules the engine keeps in step with the journeys directory.

Each time-based journey gets a schedule with a readable id (`journey-schedule/<id>`);
other parts of the engine (segment refresh, the loyalty day) add theirs. At worker
start, `sync_schedules` creates what is missing, updates what changed (keeping an
operator's pause), and deletes schedules of journeys that are gone. Operators pause
and trigger them in the Web UI or with `journeys schedules`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from core.journeys.cron import Cron
from language.catalog import Catalog
from language.models import DateTrigger, Journey, ScheduleTrigger
from workflows.contracts import JOURNEY_TASK_QUEUE
from workflows.fanout import FANOUT_WORKFLOW, FanoutInput

log = logging.getLogger(__name__)

JOURNEY_PREFIX = "journey-schedule/"
CATCHUP = timedelta(days=1)  # a firing missed while the system was down still runs, within a day


def journey_spec(journey: Journey) -> ScheduleSpec | None:
    trigger = journey.trigger
    if isinstance(trigger, ScheduleTrigger):
        spec = trigger.schedule
        if spec.timezone != "customer":
            return ScheduleSpec(cron_expressions=[spec.cron], time_zone_name=spec.timezone)
        # Each customer's local time: fire at every UTC minute that is the cron's minute
        # in some zone, and let the firing pick the customers whose local time matches.
        minutes = ",".join(str(m) for m in Cron.parse(spec.cron).utc_minutes())
        return ScheduleSpec(cron_expressions=[f"{minutes} * * * *"])
    if isinstance(trigger, DateTrigger):
        hour, minute = trigger.date.at.split(":")
        minutes = ",".join(str(m) for m in Cron.parse(f"{int(minute)} {int(hour)} * * *").utc_minutes())
        return ScheduleSpec(cron_expressions=[f"{minutes} * * * *"])
    return None


def journey_schedules(catalog: Catalog, fanout_per_second: float = 50.0) -> dict[str, Schedule]:
    """A schedule per time-based journey; each firing enters at most ``fanout_per_second``."""
    schedules = {}
    for pinned in catalog.journeys.values():
        journey = pinned.journey
        spec = journey_spec(journey)
        if spec is None:
            continue
        schedules[f"{JOURNEY_PREFIX}{journey.id}"] = Schedule(
            action=ScheduleActionStartWorkflow(
                FANOUT_WORKFLOW, FanoutInput(journey_id=journey.id, per_second=fanout_per_second),
                id=f"fanout/{journey.id}", task_queue=JOURNEY_TASK_QUEUE),
            spec=spec,
            # Firings queue up rather than overlap or drop: each is its own occasion.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ALL, catchup_window=CATCHUP),
        )
    return schedules


ScheduleSource = Callable[[Catalog], dict[str, Schedule]]


async def sync_schedules(client: Client, catalog: Catalog, sources: list[ScheduleSource], *,
                         retired: Iterable[str] = ()) -> dict[str, str]:
    """Create, update or delete schedules so Temporal has exactly what the catalog says
    (``retired``: ids of schedules earlier releases made, deleted when found).
    Returns what was done to each id."""
    retired = frozenset(retired)
    wanted: dict[str, Schedule] = {}
    for source in sources:
        wanted.update(source(catalog))
    done: dict[str, str] = {}
    for schedule_id, schedule in wanted.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            done[schedule_id] = "created"
        except ScheduleAlreadyRunningError:
            def keep_state(update: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                new.state = update.description.schedule.state  # an operator's pause survives a deploy
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(keep_state)
            done[schedule_id] = "updated"
    async for listed in await client.list_schedules():
        if (listed.id.startswith(JOURNEY_PREFIX) or listed.id in retired) and listed.id not in wanted:
            await client.get_schedule_handle(listed.id).delete()
            done[listed.id] = "deleted"
    log.info("schedules: %s", ", ".join(f"{k} {v}" for k, v in sorted(done.items())) or "none")
    return done
