"""Fault scenarios against the real system (tests/faults/harness.py): each ends with no
text lost or doubled, one run per customer, points awarded once, and records that agree
with the provider and Temporal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import Verdict, busiest_window, run_scenario

CUSTOMERS = 12


def judged(verdict: Verdict) -> None:
    if verdict.problems():
        pytest.fail(verdict.report(), pytrace=False)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_provider_faults(tmp_path: Path, backend: str) -> None:
    verdict, _ = await run_scenario("provider_faults", tmp_path, backend, customers=CUSTOMERS)
    judged(verdict)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_worker_killed_while_sending_a_backlog(tmp_path: Path, backend: str) -> None:
    verdict, _ = await run_scenario("worker_kill_backlog", tmp_path, backend, customers=CUSTOMERS)
    judged(verdict)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_worker_killed_during_waits(tmp_path: Path, backend: str) -> None:
    verdict, _ = await run_scenario("worker_kill_waits", tmp_path, backend, customers=CUSTOMERS)
    judged(verdict)


async def test_temporal_killed_and_restarted_on_its_store(tmp_path: Path) -> None:
    verdict, _ = await run_scenario("temporal_kill", tmp_path, "sqlite", customers=CUSTOMERS)
    judged(verdict)


async def test_api_killed_while_events_stream_in(tmp_path: Path) -> None:
    verdict, _ = await run_scenario("api_kill", tmp_path, "sqlite", customers=CUSTOMERS)
    judged(verdict)


async def test_postgres_connections_terminated_mid_run(tmp_path: Path) -> None:
    verdict, _ = await run_scenario("postgres_connections", tmp_path, "postgres", customers=CUSTOMERS)
    judged(verdict)


async def test_two_workers_share_the_work_within_one_rate_limit(tmp_path: Path) -> None:
    rate = 5
    verdict, sut = await run_scenario("two_workers", tmp_path, "sqlite", customers=20, sms_per_second=rate)
    judged(verdict)
    shares = sut.identities  # type: ignore[attr-defined]
    assert set(shares) == {"worker-1", "worker-2"}, f"sends per worker: {shares}"
    stamps = [m.created_at for m in sut.provider.log]
    # Temporal's limit is a token bucket on the task queue: allow it one second's burst.
    assert busiest_window(stamps, 1.0) <= 2 * rate, f"{busiest_window(stamps, 1.0)} sends within one second"
    assert busiest_window(stamps, 3.0) <= 3 * rate + rate, f"{busiest_window(stamps, 3.0)} sends within 3 s"
