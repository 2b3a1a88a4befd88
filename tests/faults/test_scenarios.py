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
    # 40 first texts at once: a backlog of 8 s at 5/s, but 4 s if each worker had its own 5/s.
    verdict, sut = await run_scenario("two_workers", tmp_path, "sqlite", customers=40, sms_per_second=rate)
    judged(verdict)
    shares = sut.identities  # type: ignore[attr-defined]
    assert set(shares) == {"worker-1", "worker-2"}, f"sends per worker: {shares}"
    stamps = [m.created_at for m in sut.provider.log]
    # Temporal's limit is a token bucket on the task queue, enforced by the server for all
    # its pollers, that starts full: allow a burst of about two seconds' worth on top.
    one, four = busiest_window(stamps, 1.0), busiest_window(stamps, 4.0)
    assert one <= 3 * rate, f"{one} sends within one second at {rate}/s"
    assert four <= 4 * rate + 2 * rate, f"{four} sends within 4 s at {rate}/s"
