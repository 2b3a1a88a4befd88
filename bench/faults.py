"""The fault scenarios of tests/faults at scale: hundreds of customers through the real
processes (Temporal dev server, `journeys worker`, `journeys api`) and the real Twilio SDK
against the fake provider, each scenario judged by the provider's own log, Temporal and
the database, printed as one table.

    .venv/bin/python -m bench.faults                                  # every scenario, 300 customers, SQLite
    .venv/bin/python -m bench.faults --scenario provider_faults --customers 100
    .venv/bin/python -m bench.faults --database-url postgresql://postgres@127.0.0.1:5432/test

Every column but the first two should read 0; "delivered once" should equal "texts expected".
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.harness import add_database_url, backend_name, leave, log, print_load_average
from tests.faults.harness import POSTGRES_ADMIN_URL, SCENARIOS, Verdict, run_scenario

POSTGRES_ONLY = {"postgres_connections"}
COLUMNS = ("scenario", "texts expected", "delivered once", "duplicates", "lost", "journeys lost/doubled",
           "points doubled", "records wrong", "seconds")


def row(name: str, verdict: Verdict, seconds: float) -> list[str]:
    return [name, str(verdict.texts_expected), str(verdict.delivered_once), str(len(verdict.duplicates)),
            str(len(verdict.lost)), f"{len(verdict.journeys_lost)}/{len(verdict.journeys_doubled)}",
            str(len(verdict.points_doubled)), str(len(verdict.records_wrong)), f"{seconds:.0f}"]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)),
             "-|-".join("-" * w for w in widths)]
    lines += [" | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
              for r in rows]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    backend = "postgres" if args.database_url else "sqlite"
    names = args.scenario or [n for n in SCENARIOS if backend == "postgres" or n not in POSTGRES_ONLY]
    rows, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for name in names:
            workdir = Path(tmp) / name
            workdir.mkdir()
            log(f"{name}: {args.customers} customers on {backend_name(args.database_url)} ...")
            started = time.monotonic()
            try:
                verdict, _ = await run_scenario(name, workdir, backend, customers=args.customers, wait=args.wait,
                                                settle=args.settle, admin_url=args.database_url or POSTGRES_ADMIN_URL,
                                                **({"sms_per_second": args.sms_per_second}
                                                   if name == "two_workers" and args.sms_per_second else {}))
            except Exception as err:  # one broken scenario should not hide the others' figures
                log(f"{name}: could not run: {type(err).__name__}: {err}")
                failed += 1
                continue
            seconds = time.monotonic() - started
            rows.append(row(name, verdict, seconds))
            failed += bool(verdict.problems())
            log(f"{name} ({seconds:.0f} s):\n  " + verdict.report().replace("\n", "\n  "))
    print(table(rows), flush=True)
    print_load_average()
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                        help="run only this scenario (repeatable); default: all that fit the backend")
    parser.add_argument("--wait", default="20s", help="the wait between a journey's two texts")
    parser.add_argument("--settle", type=float, default=600, help="seconds to wait for the runs to close")
    parser.add_argument("--sms-per-second", type=float, default=None,
                        help="JOURNEYS_SMS_PER_SECOND for two_workers (default: unlimited)")
    add_database_url(parser)
    leave(asyncio.run(main(parser.parse_args())))
