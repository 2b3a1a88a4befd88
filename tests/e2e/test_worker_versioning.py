"""Code deploys never change a customer in flight: on the real dev server, a journey run
started on build 1 finishes on build 1 after build 2 is deployed and made current, while
new runs go to build 2 (Worker Deployments, processes/versioning.py)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import VersioningBehavior

from core.event import EventIn
from core.events.router import EventRouter
from language.catalog import Catalog
from processes.settings import ServiceSettings
from processes.temporal import connect_to
from processes.versioning import current_build, deployment_config, deployment_status, promote, version_config
from processes.worker import run_worker
from processes.workers import build_workers
from store.db import Database, open_database, session_scope
from store.migrate import upgrade
from store.tables import Customer
from tests.runtime.support import CountingSender, write_journeys
from workflows.outbox import SWEEPER_ID

JOURNEYS = Path(sys.executable).parent / "journeys"
HOLD = """
id: hold
name: Hold
trigger: {event: signup}
reentry: always
sending: {purpose: transactional}
steps:
  - id: received
    send_sms: {text: "Order received"}
  - wait_for: {event: go, timeout: 1d}
  - id: shipped
    send_sms: {text: "Order shipped"}
"""
PHONES = {"early": "+12015550123", "late": "+12015550124"}


class BuildSender(CountingSender):
    """The send step of one build: what it sent says which build ran the step."""


@contextlib.asynccontextmanager
async def build(client: Client, catalog: Catalog, db: Database, deployment: str, build_id: str,
                sender: CountingSender) -> AsyncIterator[None]:
    """The workers of one build, running until the block ends."""
    workers = build_workers(client, catalog, db, sender, router=EventRouter(catalog, db, client),
                            deployment=version_config(deployment, build_id))
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        yield
    finally:
        await asyncio.gather(*(worker.shutdown() for worker in workers))
        await asyncio.gather(*tasks)


async def until(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    """Until ``check()`` (a value, or an awaitable of one) is truthy, or the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.3)


async def waiting(client: Client, customer: str) -> bool:
    """The run's wait_for has begun (its timeout timer is started)."""
    events = client.get_workflow_handle(f"journey/hold/{customer}").fetch_history_events()
    return any([event.event_type == EventType.EVENT_TYPE_TIMER_STARTED async for event in events])


def texts(sender: CountingSender, customer: str) -> list[str]:
    return [sms.body for sms in sender.sent if sms.to == PHONES[customer]]


async def deploy_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [str(JOURNEYS), "deploy", *args], env={**os.environ, **env},
                                   capture_output=True, text=True, timeout=60)


def status_row(output: str, build_id: str) -> list[str]:
    [row] = [line for line in output.splitlines() if f" {build_id} " in line]
    return [cell.strip() for cell in row.strip("│┃ ").split("│")]


async def test_a_run_started_on_build_1_finishes_on_build_1_after_build_2_is_current(
        tmp_path: Path, dev_address: str) -> None:
    catalog = write_journeys(tmp_path / "journeys", {"hold": HOLD})
    db = open_database(f"sqlite:///{tmp_path / 'j.db'}")
    upgrade(db)
    now = datetime.now(UTC)
    with session_scope(db) as session:
        for cid, phone in PHONES.items():
            session.add(Customer(id=cid, phone=phone, sms_consent="opted_in", created_at=now, updated_at=now))
    client = await connect_to(dev_address)
    router = EventRouter(catalog, db, client)
    deployment = f"journeys-{uuid.uuid4().hex[:8]}"  # its own deployment: nothing left over from another run
    env = {"TEMPORAL_ADDRESS": dev_address, "JOURNEYS_DEPLOYMENT_NAME": deployment}
    one, two = BuildSender(), BuildSender()

    async def send(type: str, customer: str) -> None:
        await router.route(EventIn(id=f"{type}-{customer}", type=type, customer_id=customer, occurred_at=now))

    async with build(client, catalog, db, deployment, "build-1", one):
        await promote(client, deployment, "build-1", wait=30)
        await send("signup", "early")
        assert await until(lambda: texts(one, "early") == ["Order received"])
        assert await until(lambda: waiting(client, "early"))  # at the wait_for step when build 1 stops

    async with build(client, catalog, db, deployment, "build-2", two):
        async def build_2_waits() -> bool:  # polling, not current yet: neither taking runs nor to retire
            return any(s.build_id == "build-2" for s in await deployment_status(client, deployment))

        assert await until(build_2_waits)
        shown = await deploy_cli("status", env=env)
        assert status_row(shown.stdout, "build-2")[:3] == ["build-2", "inactive", "0"], shown.stdout
        assert status_row(shown.stdout, "build-2")[3].startswith("no: never current"), shown.stdout
        assert status_row(shown.stdout, "build-1")[:2] == ["build-1", "current"], shown.stdout
        promoted = await deploy_cli("promote", "build-2", "--wait", "30", env=env)
        assert promoted.returncode == 0, promoted.stderr
        shown = await deploy_cli("status", env=env)
        assert shown.returncode == 0, shown.stderr
        assert status_row(shown.stdout, "build-2")[:2] == ["build-2", "current"]

        async def one_open_on_build_1() -> bool:
            return [(s.build_id, s.pinned_open, s.retirable) for s in await deployment_status(client, deployment)
                    if s.build_id == "build-1"] == [("build-1", 1, False)]

        assert await until(one_open_on_build_1)
        shown = await deploy_cli("status", env=env)
        assert status_row(shown.stdout, "build-1") == ["build-1", "draining", "1", "no"], shown.stdout

        await send("signup", "late")  # a new run: build 2 takes it, from start to end
        assert await until(lambda: texts(two, "late") == ["Order received"]), (one.sent, two.sent)
        assert await until(lambda: waiting(client, "late"))
        await send("go", "late")
        assert await until(lambda: texts(two, "late") == ["Order received", "Order shipped"])
        await send("go", "early")  # the old run's wait ends while only build 2 runs: it waits for build 1
        await asyncio.sleep(3)
        assert texts(two, "early") == [] and texts(one, "early") == ["Order received"]
        early = client.get_workflow_handle("journey/hold/early")
        assert (await early.describe()).status == WorkflowExecutionStatus.RUNNING

        async with build(client, catalog, db, deployment, "build-1", one):  # build 1 back to drain its run
            await asyncio.wait_for(early.result(), timeout=30)
        assert texts(one, "early") == ["Order received", "Order shipped"] and texts(two, "early") == []

        async def build_1_retirable() -> bool:
            return any(s.build_id == "build-1" and s.retirable for s in await deployment_status(client, deployment))

        assert await until(build_1_retirable)
        shown = await deploy_cli("status", env=env)
        assert status_row(shown.stdout, "build-1")[:3] == ["build-1", "draining", "0"], shown.stdout
        assert "yes" in status_row(shown.stdout, "build-1")[3]
    db.dispose()


def test_versioning_is_off_unless_asked_and_the_build_id_defaults_to_version_and_code() -> None:
    assert deployment_config(ServiceSettings.from_mapping({})) is None
    on = deployment_config(ServiceSettings.from_mapping({"JOURNEYS_WORKER_VERSIONING": "on",
                                                         "JOURNEYS_BUILD_ID": "2026.12.1"}))
    assert on is not None and on.use_worker_versioning
    assert (on.version.deployment_name, on.version.build_id) == ("journeys", "2026.12.1")
    default = deployment_config(ServiceSettings.from_mapping({"JOURNEYS_WORKER_VERSIONING": "true"}))
    assert default is not None
    version, _, digest = default.version.build_id.rpartition("-")
    assert version and len(digest) == 12 and int(digest, 16) >= 0


async def test_the_first_versioned_worker_becomes_current_and_runs_the_system_workflows(
        tmp_path: Path, dev_address: str) -> None:
    write_journeys(tmp_path / "journeys", {"hold": HOLD})
    url = f"sqlite:///{tmp_path / 'j.db'}"
    upgrade(open_database(url))
    deployment = f"journeys-{uuid.uuid4().hex[:8]}"
    settings = ServiceSettings.from_mapping({
        "TEMPORAL_ADDRESS": dev_address, "JOURNEYS_DIR": str(tmp_path / "journeys"), "JOURNEYS_DATABASE_URL": url,
        "JOURNEYS_WORKER_VERSIONING": "on", "JOURNEYS_DEPLOYMENT_NAME": deployment, "JOURNEYS_BUILD_ID": "first"})
    stop, ready = asyncio.Event(), asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        client = await connect_to(dev_address)
        assert await current_build(client, deployment) == "first"  # no current build before: this one
        await promote(client, deployment, "first")  # promoting the current build again: nothing to do, no error
        sweeper = client.get_workflow_handle(SWEEPER_ID)

        async def swept_on_first() -> bool:  # started before the build was current, run by it after
            versioning = (await sweeper.describe()).raw_description.workflow_execution_info.versioning_info
            return versioning.deployment_version.build_id == "first"

        assert await until(swept_on_first)
        described = (await sweeper.describe()).raw_description.workflow_execution_info.versioning_info
        assert described.behavior == VersioningBehavior.AUTO_UPGRADE.value
    finally:
        stop.set()
        await asyncio.wait_for(worker, 60)


async def test_deploy_commands_say_what_is_missing(dev_address: str) -> None:
    env = {"TEMPORAL_ADDRESS": dev_address, "JOURNEYS_DEPLOYMENT_NAME": f"nobody-{uuid.uuid4().hex[:8]}"}
    status = await deploy_cli("status", env=env)
    assert status.returncode == 1 and "no worker deployment" in status.stderr, status.stderr
    assert "JOURNEYS_WORKER_VERSIONING=on" in status.stderr
    promoted = await deploy_cli("promote", "build-9", env=env)
    assert promoted.returncode == 1 and "start its workers first" in promoted.stderr, promoted.stderr
    built = await deploy_cli("build-id", env={"JOURNEYS_BUILD_ID": "2026.12.1"})
    assert (built.returncode, built.stdout) == (0, "2026.12.1\n")
