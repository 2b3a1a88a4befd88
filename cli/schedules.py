"""`journeys schedules`: list, pause, unpause and trigger the engine's Temporal Schedules
(the same controls as the Web UI's Schedules page)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from cli import output
from cli.settings import load_settings

console = output.console()
app = typer.Typer(help="Time-based journeys, segment refresh and other schedules.", invoke_without_command=True)


@app.callback()
def list_schedules(ctx: typer.Context) -> None:
    """List schedules with their next run and state."""
    if ctx.invoked_subcommand is not None:
        return

    async def fetch() -> list[tuple[str, str, str, str]]:
        from processes.temporal import connect

        client = await connect(load_settings())
        rows = []
        async for listed in await client.list_schedules():
            description = await client.get_schedule_handle(listed.id).describe()
            upcoming = description.info.next_action_times[:1]
            recent = description.info.recent_actions[-1:]
            rows.append((listed.id, "paused" if description.schedule.state.paused else "active",
                         upcoming[0].isoformat(timespec="minutes") if upcoming else "-",
                         recent[0].scheduled_at.isoformat(timespec="minutes") if recent else "-"))
        return sorted(rows)

    table = Table("schedule", "state", "next run (UTC)", "last run (UTC)")
    for row in asyncio.run(fetch()):
        table.add_row(*row)
    console.print(table)


def _act(schedule_id: str, action: str) -> None:
    async def run() -> None:
        from processes.temporal import connect

        handle = (await connect(load_settings())).get_schedule_handle(schedule_id)
        if action == "pause":
            await handle.pause(note="paused with journeys schedules pause")
        elif action == "unpause":
            await handle.unpause(note="unpaused with journeys schedules unpause")
        else:
            await handle.trigger()

    asyncio.run(run())
    console.print(f"{schedule_id}: {action}d" if action != "trigger" else f"{schedule_id}: triggered now")


@app.command()
def pause(schedule_id: Annotated[str, typer.Argument(help="e.g. journey-schedule/vip_flash_sale")]) -> None:
    """Pause a schedule (journeys already running go on)."""
    _act(schedule_id, "pause")


@app.command()
def unpause(schedule_id: Annotated[str, typer.Argument()]) -> None:
    """Resume a paused schedule."""
    _act(schedule_id, "unpause")


@app.command()
def trigger(schedule_id: Annotated[str, typer.Argument()]) -> None:
    """Run a schedule now (for its current occasion)."""
    _act(schedule_id, "trigger")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="schedules")
