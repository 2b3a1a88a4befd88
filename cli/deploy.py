"""`journeys deploy`: the builds of the worker deployment (JOURNEYS_WORKER_VERSIONING=on),
which one takes new runs, and which old ones may be retired."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from cli import output
from cli.settings import load_settings

console = output.console()
errors = output.console(stderr=True)
app = typer.Typer(help="Worker builds: status, promote a new build, the build id of this code.",
                  no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Each build with its state and open journey runs, and whether its workers may stop."""
    from processes.temporal import connect
    from processes.versioning import DeploymentError, VersionState, deployment_status

    settings = load_settings()

    async def fetch() -> list[VersionState]:
        return await deployment_status(await connect(settings), settings.deployment_name)

    try:
        states = asyncio.run(fetch())
    except DeploymentError as err:
        errors.print(f"[red]error:[/red] {err}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    table = Table("build", "state", "open journey runs", "retire?", title=f"deployment {settings.deployment_name}")
    for state in states:
        verdict = ("yes: stop its workers" if state.retirable
                   else "no: never current (journeys deploy promote)" if state.status == "inactive" else "no")
        table.add_row(state.build_id, state.status, str(state.pinned_open), verdict)
    console.print(table)


@app.command("promote")
def promote(
    build: Annotated[str, typer.Argument(help="The build id (its workers must be running)")],
    wait: Annotated[float, typer.Option(help="Seconds to wait for the build's workers to poll")] = 0.0,
) -> None:
    """Make BUILD current: new journey runs, schedules and system workflows go to it;
    runs already open stay on their build."""
    from processes.temporal import connect
    from processes.versioning import DeploymentError
    from processes.versioning import promote as make_current

    settings = load_settings()

    async def run() -> None:
        await make_current(await connect(settings), settings.deployment_name, build, wait=wait)

    try:
        asyncio.run(run())
    except DeploymentError as err:
        errors.print(f"[red]error:[/red] {err}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    console.print(f"build {build} is current in deployment {settings.deployment_name}", highlight=False)


@app.command("build-id")
def build_id() -> None:
    """Print the build id `journeys worker` registers (JOURNEYS_BUILD_ID, else version and code hash)."""
    from processes.versioning import build_id as current_build_id

    print(current_build_id(load_settings()))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="deploy")
