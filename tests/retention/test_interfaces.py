"""What operators and the worker see of retention: the Retention workflow calling its
activity kind after kind (time-skipping server), `journeys retention run [--dry-run]`,
the retention-daily schedule, and that schedule made at worker start running the job
(dev server)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy, WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner

from activities.deps import Deps
from activities.retention import RetentionActivities
from cli.main import app as cli_app
from core.clock import utcnow
from core.retention import KINDS, retention_schedule, retention_schedules, run_all, run_batch
from processes.settings import ServiceSettings
from store.db import open_database, session_scope
from store.migrate import upgrade
from store.tables import Message
from tests.e2e.conftest import dev_address, dev_server  # noqa: F401  (fixtures)
from tests.retention.support import NOW, catalog_for, snapshot
from tests.runtime.support import CountingSender
from workflows.retention import (
    RETENTION_WORKFLOW,
    ApplyRetentionInput,
    Cursor,
    Retention,
    RetentionInput,
    RetentionResult,
)

runner = CliRunner()


async def test_the_workflow_runs_the_activity_until_every_kind_is_done(seeded, db, env) -> None:
    expected = run_all(db, seeded.catalog.settings.retention, NOW, dry_run=True).changed
    assert all(expected[kind] for kind in KINDS)
    deps = Deps(catalog=seeded.catalog, db=db, sender=CountingSender(), router=seeded.router)
    queue = f"retention-test-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=[Retention],
                      activities=[RetentionActivities(deps).apply]):
        # A budget of 0: one batch per activity call, so the workflow goes on from each cursor.
        handle = await env.client.start_workflow(
            Retention.run, RetentionInput(moment=NOW, batch_size=2, budget_seconds=0),
            id=f"retention-test-{uuid.uuid4().hex[:8]}", task_queue=queue)
        result = await handle.result()
        calls = [e for e in (await handle.fetch_history()).events if e.HasField("activity_task_scheduled_event_attributes")]
    assert (result.moment, result.changed) == (NOW, expected)
    assert len(calls) > len(KINDS)  # more than one call for the kinds with more than 2 rows
    assert run_all(db, seeded.catalog.settings.retention, NOW).changed == dict.fromkeys(KINDS, 0)


def _url(db: Any) -> str:
    return db.url.render_as_string(hide_password=False)


async def test_the_command_prints_the_figures_and_a_dry_run_changes_nothing(journeys_dir: Path, db, seeded,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", _url(db))
    monkeypatch.setenv("JOURNEYS_DIR", str(journeys_dir))
    # The command's "now": the fixed instant the seeded rows are old at.
    monkeypatch.setattr("processes.commands.utcnow", lambda: NOW)
    dry = await asyncio.to_thread(runner.invoke, cli_app, ["retention", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.split("\n")[:2] == ["events             6 would be anonymised",
                                          "messages           4 would be anonymised"]
    assert "decisions          2 would be deleted" in dry.output and "dry run: nothing changed" in dry.output
    assert snapshot(db) == seeded.before
    done = await asyncio.to_thread(runner.invoke, cli_app, ["retention", "run"])
    assert done.exit_code == 0, done.output
    assert done.output.strip().split("\n") == ["events             6 anonymised", "messages           4 anonymised",
                                               "clicks             3 anonymised", "decisions          2 deleted",
                                               "emails             2 anonymised"]
    again = await asyncio.to_thread(runner.invoke, cli_app, ["retention", "run"])
    assert [line.split()[1] for line in again.output.strip().split("\n")] == ["0"] * len(KINDS)


def test_the_command_says_which_kinds_are_kept_forever(journeys_dir: Path, db,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    catalog_for(journeys_dir, "retention: {events: null, decisions: null}\n")
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", _url(db))
    monkeypatch.setenv("JOURNEYS_DIR", str(journeys_dir))
    result = runner.invoke(cli_app, ["retention", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "events     kept forever (retention.events: null)" in result.output
    assert "decisions  kept forever (retention.decisions: null)" in result.output
    assert "messages           0 would be anonymised" in result.output


def test_the_daily_schedule(journeys_dir: Path) -> None:
    catalog = catalog_for(journeys_dir)
    schedule_id, schedule = retention_schedule(catalog)
    assert schedule_id == "retention-daily" and list(retention_schedules(catalog)) == ["retention-daily"]
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.id, action.task_queue) == (RETENTION_WORKFLOW, "retention-daily", "journeys")
    assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert schedule.spec.cron_expressions == ["30 4 * * *"]
    assert schedule.spec.time_zone_name == "America/New_York"


async def test_the_worker_makes_the_schedule_and_a_firing_runs_the_job(tmp_path: Path, dev_address: str) -> None:  # noqa: F811
    from processes.temporal import connect_to
    from processes.worker import run_worker

    journeys_dir = tmp_path / "journeys"
    catalog_for(journeys_dir)
    url = f"sqlite:///{tmp_path / 'j.db'}"
    db = open_database(url)
    upgrade(db)
    # The schedule fires at the real "now": a reply text sent 800 days before it is old.
    old = utcnow() - timedelta(days=800)
    with session_scope(db) as session:
        session.add(Message(id="m-old", key="reply:help:SM1", customer_id="c1", purpose="reply", body="HELP text",
                            reply_to="+12015550123", status="sent", created_at=old, sent_at=old))
    settings = ServiceSettings.from_mapping({"TEMPORAL_ADDRESS": dev_address, "JOURNEYS_DIR": str(journeys_dir),
                                             "JOURNEYS_DATABASE_URL": url})
    stop, ready = asyncio.Event(), asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        client = await connect_to(dev_address)
        handle = client.get_schedule_handle("retention-daily")
        described = await handle.describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == RETENTION_WORKFLOW
        await handle.trigger()
        for _ in range(300):
            recent = (await handle.describe()).info.recent_actions
            if recent:
                run = client.get_workflow_handle(recent[0].action.workflow_id,  # type: ignore[attr-defined]
                                                 run_id=recent[0].action.first_execution_run_id,  # type: ignore[attr-defined]
                                                 result_type=RetentionResult)
                if (await run.describe()).status == WorkflowExecutionStatus.COMPLETED:
                    break
            await asyncio.sleep(0.1)
        result = await run.result()
        assert result.changed["messages"] == 1
        with session_scope(db, readonly=True) as session:
            row = session.exec(select(Message).where(Message.id == "m-old")).one()
        assert (row.body, row.reply_to, row.status) == (None, None, "sent")
    finally:
        stop.set()
        await asyncio.wait_for(worker, 60)
        db.dispose()


async def test_the_activity_heartbeats_its_batches_and_a_retry_goes_on_from_the_last_beat(seeded, db) -> None:
    activities = RetentionActivities(Deps(catalog=seeded.catalog, db=db, sender=CountingSender(),
                                          router=seeded.router))
    retention = seeded.catalog.settings.retention
    first = run_batch(db, retention, "messages", NOW, limit=2, dry_run=True)
    assert first.changed == 2 and first.next_after is not None
    # A retry of a call that had heartbeated after its first batch: it starts after that
    # batch, not from the call's own cursor (the start).
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, heartbeat_details=[first.next_after.model_dump(mode="json")])
    beats: list[Any] = []
    retry.on_heartbeat = lambda *details: beats.append(details[0])
    result = await retry.run(activities.apply, ApplyRetentionInput(moment=NOW, kind="messages", batch_size=2))
    assert (result.changed, result.next_after) == (2, None)  # the 5 old texts: 2 skipped, the running one kept
    assert [Cursor.model_validate(beat).at > first.next_after.at for beat in beats] == [True]
    bodies = sorted((m.created_at, m.body is None) for m in snapshot(db)["messages"].values())
    assert [gone for _, gone in bodies[:2]] == [False, False]  # the first batch's rows: untouched by the retry
