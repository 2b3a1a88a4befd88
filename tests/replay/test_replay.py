"""Replay the recorded histories (tests/replay/histories, from real runs: see record.py)
against the workflow code as it is now. A change that would make a run in flight take a
different path than it took fails here with a NondeterminismError: guard such a change
with `workflow.patched(...)`, do not re-record the old histories.

The worker's data converter, too: a history is replayed the way a worker would read it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from language.validate import load_catalog
from tests.replay import fakes
from workflows.fanout import JourneyFanout
from workflows.journey import JourneyWorkflow, PinnedJourneyWorkflow
from workflows.loyalty_maintenance import LoyaltyMaintenance
from workflows.outbox import EventSweep, EventSweeper
from workflows.reply import ReplyWorkflow
from workflows.retention import Retention
from workflows.segment_refresh import SegmentRefreshWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
SHIPPED = Path(__file__).resolve().parents[2] / "journeys"
FILES = sorted(HISTORIES.glob("*.json"))
WORKFLOWS = [JourneyWorkflow, ReplyWorkflow, JourneyFanout, LoyaltyMaintenance, EventSweeper, EventSweep,
             SegmentRefreshWorkflow, Retention]
RECORD = ".venv/bin/python -m tests.replay.record"


def recorded(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
async def test_history_replays_on_the_current_code(replayer: Replayer, path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay/{path.stem}", recorded(path))
    # Raises (NondeterminismError, or the workflow task's own error) if replay fails.
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None


def test_every_shipped_journey_has_recorded_histories() -> None:
    """At least two paths per journey (its main path and a branch or exit)."""
    per_journey = Counter(path.stem.split("-", 1)[0] for path in FILES)
    missing = sorted(journey for journey in load_catalog(SHIPPED).journeys if per_journey[journey] < 2)
    assert not missing, (f"journeys without two recorded histories: {', '.join(missing)}. Add their scenarios to "
                         f"tests/replay/record.py and run `{RECORD} {' '.join(missing)}`")


def test_every_workflow_type_has_a_recorded_history() -> None:
    types = {recorded(path)["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
             for path in FILES}
    names = {workflow.__temporal_workflow_definition.name for workflow in WORKFLOWS}  # type: ignore[attr-defined]
    assert names <= types, f"no recorded history for {sorted(names - types)}: run `{RECORD} system`"


def test_the_histories_exercise_signals_timers_activities_and_a_deferral() -> None:
    """What makes replay worth it: runs that were woken by events, slept, called out and
    waited out quiet hours. A recorder that lost those paths would make this test hollow."""
    events = Counter(event["eventType"] for path in FILES for event in recorded(path)["events"])
    for kind in ("WORKFLOW_EXECUTION_SIGNALED", "TIMER_STARTED", "TIMER_FIRED", "ACTIVITY_TASK_COMPLETED",
                 "MARKER_RECORDED", "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"):
        assert events[f"EVENT_TYPE_{kind}"] > 0, f"no history has a {kind} event"
    texts = {path.stem: fakes.readable(recorded(path)) for path in FILES}
    deferred = [name for name, text in texts.items() if '"status":"deferred","reason":"quiet_hours"' in text]
    assert deferred, "no history has a send deferred for quiet hours"


def test_no_customer_data_in_the_histories() -> None:
    """Histories carry ids only: the recorder's fake name, email and phone never get in,
    not even inside the (base64) payloads."""
    for path in FILES:
        text = fakes.readable(recorded(path))
        leaked = [value for value in fakes.PII if value in text]
        assert not leaked, f"{path.name} holds {leaked}"
    assert fakes.CUSTOMER_ID in fakes.readable(recorded(HISTORIES / "welcome-stop.json"))  # the search does see payloads


JOURNEY_FILES = [path for path in FILES if recorded(path)["events"][0]["workflowExecutionStartedEventAttributes"]
                 ["workflowType"]["name"] == JourneyWorkflow.__temporal_workflow_definition.name]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", JOURNEY_FILES, ids=[path.stem for path in JOURNEY_FILES])
async def test_the_pinned_journey_of_versioned_workers_replays_like_the_journey(path: Path) -> None:
    """Versioned workers register PinnedJourneyWorkflow (processes/workers.py): the same code."""
    replayer = Replayer(workflows=[PinnedJourneyWorkflow], data_converter=pydantic_data_converter)
    history = WorkflowHistory.from_json(f"replay/{path.stem}", recorded(path))
    assert (await replayer.replay_workflow(history)).replay_failure is None
