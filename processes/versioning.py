"""Worker Deployments (Temporal worker versioning): a code deploy never changes a
customer in flight.

Every worker process registers as one *version* (deployment name + build id) of the
deployment. A journey run is pinned to the build it started on and finishes there
(workflows.journey.PinnedJourneyWorkflow); the schedules' and system workflows
auto-upgrade to the current build (the workers' default). New runs go to the
*current* version, which an operator sets (``journeys deploy promote``) once the new
build's workers poll; an old build can be retired when no pinned run is open on it
any more (``journeys deploy status``).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from temporalio.api.deployment.v1 import WorkerDeploymentInfo
from temporalio.api.enums.v1 import WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

from processes.settings import ServiceSettings

log = logging.getLogger(__name__)

DISTRIBUTION = "loyalty-journeys"
# The packages whose code a worker runs: a change in any of them is a new build.
WORKER_PACKAGES = ("workflows", "activities", "core", "language", "messaging", "store", "processes")


class DeploymentError(RuntimeError):
    """A deployment command cannot do what was asked (the message says why)."""


def code_hash(packages: tuple[str, ...] = WORKER_PACKAGES) -> str:
    """12 hex digits over the worker's Python sources (paths and contents)."""
    digest = hashlib.sha256()
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise DeploymentError(f"package {package!r} not found: set JOURNEYS_BUILD_ID")
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def default_build_id() -> str:
    """The package version and a hash of the worker's code: a release, and also any
    edit deployed without a version bump, is a build of its own."""
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = "0"
    return f"{version}-{code_hash()}"


def build_id(settings: ServiceSettings) -> str:
    return settings.build_id or default_build_id()


def deployment_config(settings: ServiceSettings) -> WorkerDeploymentConfig | None:
    """The workers' deployment version, or None with JOURNEYS_WORKER_VERSIONING off."""
    if not settings.worker_versioning:
        return None
    return version_config(settings.deployment_name, build_id(settings))


def version_config(deployment: str, build: str) -> WorkerDeploymentConfig:
    """Workflows auto-upgrade unless they say otherwise: the schedules' and system
    workflows follow the current build; build_workers registers the journey pinned."""
    return WorkerDeploymentConfig(version=WorkerDeploymentVersion(deployment, build), use_worker_versioning=True,
                                  default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE)


@dataclass(frozen=True)
class VersionState:
    build_id: str
    status: str  # current | ramping | draining | drained | inactive
    pinned_open: int  # journey runs still open on this build

    @property
    def retirable(self) -> bool:
        """It was current once, new runs go elsewhere now, and none of its pinned runs is
        open: its workers may stop. (A build never made current is inactive: not retirable.)"""
        return self.status in ("draining", "drained") and self.pinned_open == 0


_STATUS = {
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT: "current",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING: "ramping",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING: "draining",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED: "drained",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE: "inactive",
}


async def _describe(client: Client, deployment: str) -> WorkerDeploymentInfo | None:
    """The server's view of the deployment; None if no worker of it ever polled."""
    try:
        return (await client.workflow_service.describe_worker_deployment(DescribeWorkerDeploymentRequest(
            namespace=client.namespace, deployment_name=deployment))).worker_deployment_info
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def current_build(client: Client, deployment: str) -> str | None:
    """The build new runs go to; None if the deployment has none (or does not exist yet)."""
    info = await _describe(client, deployment)
    return (info.routing_config.current_deployment_version.build_id or None) if info else None


async def deployment_status(client: Client, deployment: str) -> list[VersionState]:
    """Each version of the deployment, newest first, with its open pinned runs (from
    visibility, which trails the server by a moment)."""
    info = await _describe(client, deployment)
    if info is None:
        raise DeploymentError(f"no worker deployment {deployment!r} in namespace {client.namespace}: start "
                              "`journeys worker` with JOURNEYS_WORKER_VERSIONING=on first")
    summaries = sorted(info.version_summaries, key=lambda s: s.create_time.ToDatetime(), reverse=True)
    states = []
    for summary in summaries:
        build = summary.deployment_version.build_id
        states.append(VersionState(build_id=build, status=_STATUS.get(summary.status, "inactive"),
                                   pinned_open=await pinned_open_runs(client, deployment, build)))
    return states


async def pinned_open_runs(client: Client, deployment: str, build: str) -> int:
    query = (f"TemporalWorkerDeploymentVersion = '{deployment}:{build}' AND "
             "TemporalWorkflowVersioningBehavior = 'Pinned' AND ExecutionStatus = 'Running'")
    return (await client.count_workflows(query)).count


async def promote(client: Client, deployment: str, build: str, *, wait: float = 0.0) -> None:
    """Make ``build`` current: new runs (and auto-upgrading ones) go to it. Its workers
    must have polled already; ``wait`` seconds are allowed for them to start."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(namespace=client.namespace, deployment_name=deployment,
                                                         build_id=build, identity="journeys deploy promote"))
            return
        except RPCError as err:
            # NOT_FOUND / FAILED_PRECONDITION: no worker of that build has polled (yet).
            if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
            if asyncio.get_running_loop().time() >= deadline:
                raise DeploymentError(f"build {build!r} of deployment {deployment!r} cannot be made current "
                                      f"({err.message}): start its workers first (`journeys worker` with "
                                      f"JOURNEYS_BUILD_ID={build})") from None
        await asyncio.sleep(0.5)


async def adopt_if_first(client: Client, deployment: str, build: str) -> None:
    """On a worker's start: a deployment without a current build (the very first
    versioned deploy) takes this one, so runs start at all; otherwise say how to promote."""
    current = await current_build(client, deployment)
    if current is None:
        await promote(client, deployment, build, wait=30.0)
        log.info("worker deployment %s: build %s is current (the first build)", deployment, build)
    elif current != build:
        log.info("worker deployment %s: build %s registered; new runs still go to build %s until "
                 "`journeys deploy promote %s`", deployment, build, current, build)
