"""SIGTERM to a real `journeys worker` in the middle of a send: it stops polling, the send
already talking to the provider finishes and is recorded `sent`, and the process exits 0
within JOURNEYS_WORKER_SHUTDOWN_SECONDS (what an orchestrator's stop does)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

from sqlalchemy import text

from tests.faults.harness import JOURNEY, system

HOLD = 4.0  # the provider holds every create's answer this long
BOUND = 15  # JOURNEYS_WORKER_SHUTDOWN_SECONDS


async def test_sigterm_mid_send_finishes_the_send_and_exits_0(tmp_path: Path) -> None:
    # A client timeout above the hold: the held answer is a slow success, not an unknown outcome.
    async with system(tmp_path, "sqlite", customers=1, http_timeout=20) as sut:
        sut.env.update({"JOURNEYS_WORKER_SHUTDOWN_SECONDS": str(BOUND), "JOURNEYS_LOG_FORMAT": "json"})
        sut.provider.set_faults(hang=1.0, hang_seconds=HOLD)
        await sut.start()
        await sut.post_events()
        await sut.until_texts(1, timeout=60)  # the create arrived: its answer is being held now
        worker = sut.workers["worker"]
        asked = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, BOUND + 20)
        took = time.monotonic() - asked

        assert code == 0, (sut.workdir / "worker.log").read_text()
        assert HOLD - 1.5 < took < BOUND + 5, f"exited {took:.1f} s after SIGTERM"  # waited for the send, bounded
        with sut.db.connect() as conn:
            rows = conn.execute(text("SELECT status, provider_message_id FROM messages WHERE journey_id = :j"),
                                {"j": JOURNEY}).all()
        [created] = sut.provider.log
        assert rows == [("sent", created.sid)], rows
        assert len(sut.provider.log) == 1  # nothing sent again

        lines = [json.loads(line) for line in (sut.workdir / "worker.log").read_text().splitlines()
                 if line.startswith("{")]
        messages = [entry["message"] for entry in lines]
        assert any(m.startswith("worker stopping: polling ends, activities in flight get 15 s") for m in messages)
        assert "worker stopped" in messages
        assert all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)
