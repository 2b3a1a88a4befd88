"""`journeys enroll JOURNEY --segment S | --csv F` against a real Temporal dev server and
both databases: a line per customer (entered, or the reason not) and a summary."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlmodel import select
from typer.testing import CliRunner

from cli import runtime as runtime_cli
from core.clock import utcnow
from core.journeys.enroll import IdFileError, read_id_file, segment_pages
from processes.dev import wait_for_server
from store.db import session_scope
from store.tables import Customer, Enrollment, SegmentMembership
from tests.e2e.conftest import dev_server  # noqa: F401  (fixture)
from tests.runtime.support import write_journeys

SETTINGS = """
brand: Nordic Shoes
default_timezone: America/New_York
quiet_hours: {start: "00:00", end: "00:00"}
"""
FLASH = """
id: JOURNEY
name: Flash
trigger: {manual: true}
audience: "customer.locale == 'en'"
steps:
  - wait: 1d
"""


def cli() -> typer.Typer:
    app = typer.Typer()
    runtime_cli.register(app)
    return app


def _journey(db: Any) -> str:
    """One dev server serves both databases' runs: a journey of its own for each."""
    return f"flash_{db.dialect.name}"


def _setup(db: Any, tmp_path: Path) -> Path:
    journeys = tmp_path / "journeys"
    write_journeys(journeys, {_journey(db): FLASH.replace("JOURNEY", _journey(db))}, settings=SETTINGS)
    with session_scope(db) as session:
        for customer_id, locale in [("c1", "en"), ("c2", "fr"), ("c3", "en")]:
            session.add(Customer(id=customer_id, locale=locale))
        session.flush()
        for customer_id in ("c1", "c2", "c3"):
            session.add(SegmentMembership(customer_id=customer_id, segment="active", entered_at=utcnow()))
    return journeys


def _entered(db: Any) -> list[str]:
    with session_scope(db, readonly=True) as session:
        return sorted(e.customer_id for e in session.exec(select(Enrollment)))


def test_enroll_a_segment_then_a_file(db, tmp_path: Path, dev_server: str) -> None:  # noqa: F811
    asyncio.run(wait_for_server(dev_server))
    journeys = _setup(db, tmp_path)
    env = {"JOURNEYS_DATABASE_URL": db.url.render_as_string(hide_password=False), "TEMPORAL_ADDRESS": dev_server,
           "JOURNEYS_DIR": str(journeys)}
    flash = _journey(db)
    done = CliRunner().invoke(cli(), ["enroll", flash, "--segment", "active"], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == ["c1: entered", "c2: not in audience", "c3: entered",
                                        f"2 entered, 1 not entered ({flash})"]
    assert _entered(db) == ["c1", "c3"]
    ids = tmp_path / "ids.csv"
    ids.write_text("email,customer_id\nx,c1\ny,nobody\n")
    again = CliRunner().invoke(cli(), ["enroll", flash, "--csv", str(ids)], env=env)
    assert again.exit_code == 0, again.output
    assert again.output.splitlines() == ["c1: already in this journey", "nobody: unknown customer",
                                         f"0 entered, 2 not entered ({flash})"]
    assert _entered(db) == ["c1", "c3"]
    unknown = CliRunner().invoke(cli(), ["enroll", flash, "--segment", "nope"], env=env)
    assert unknown.exit_code == 2 and "no segment 'nope'" in unknown.output


def test_a_file_with_bad_lines_enters_nobody(db, tmp_path: Path) -> None:
    journeys = _setup(db, tmp_path)
    ids = tmp_path / "ids.txt"
    ids.write_text("c1\nc3\n2015550123\n\nmail@example.com\n")
    env = {"JOURNEYS_DATABASE_URL": db.url.render_as_string(hide_password=False), "JOURNEYS_DIR": str(journeys)}
    done = CliRunner().invoke(cli(), ["enroll", _journey(db), "--csv", str(ids)], env=env)
    assert done.exit_code == 2
    said = " ".join(done.output.replace("│", " ").split())
    assert "line 3: the customer id looks like a phone number" in said
    assert "line 5: the customer id must be 1-64 letters" in said
    assert "2 bad line(s); nothing was entered" in said and "example.com" not in said
    assert _entered(db) == []
    neither = CliRunner().invoke(cli(), ["enroll", _journey(db)], env=env)
    assert neither.exit_code == 2 and "one of --customer, --segment or --csv" in neither.output


def test_id_files_and_segment_pages(db, tmp_path: Path) -> None:
    _setup(db, tmp_path)
    assert list(segment_pages(db, "active", size=2)) == [["c1", "c2"], ["c3"]]
    plain = tmp_path / "plain.txt"
    plain.write_text("c1\nc2\nc1\n")
    assert read_id_file(plain) == ["c1", "c2"]  # a repeated id is entered once
    wide = tmp_path / "wide.csv"
    wide.write_text("a,b\n1,2\n")
    with pytest.raises(IdFileError) as refused:
        read_id_file(wide)
    assert refused.value.problems == ["line 1: one id per line, or a customer_id column",
                                      "line 2: one id per line, or a customer_id column"]
    with pytest.raises(IdFileError, match="is 9 bytes, more than 4: split it"):
        read_id_file(plain, max_bytes=4)
