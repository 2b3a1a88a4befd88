"""wait and wait_for: durable timers that still hear exits and events."""

from __future__ import annotations

from datetime import datetime, timedelta

from language.durations import format_duration
from language.models import WaitForStep, WaitStep
from workflows import activity_names as names
from workflows.contracts import NextLocalTimeInput
from workflows.steps.base import Listener, Run


async def wait(run: Run, step: WaitStep, key: str) -> None:
    if isinstance(step.wait, timedelta):
        until = run.now() + step.wait
        label = format_duration(step.wait)
    else:
        until = await run.local(
            names.NEXT_LOCAL_TIME,
            NextLocalTimeInput(**run.call(key), time_of_day=step.wait.until),
            result_type=datetime,
        )
        label = f"{step.wait.until} local time"
    run.record(key, "wait", until=until)
    await run.block(until, waiting_for=label)


async def wait_for(run: Run, step: WaitForStep, key: str) -> None:
    spec = step.wait_for
    listener = Listener(spec.event, where=spec.where)
    run.listener = listener
    run.record(key, "wait_for", event=spec.event, until=run.now() + spec.timeout)
    try:
        came = await run.block(run.now() + spec.timeout, lambda: bool(listener.matches),
                               waiting_for=f"event {spec.event}")
    finally:
        run.listener = None
    run.record(key, "event" if came else "timeout", event=spec.event)
    await run.run_steps(step.then if came else step.else_, f"{key}.{'then' if came else 'else'}")
