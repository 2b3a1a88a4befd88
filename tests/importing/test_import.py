"""Customer imports from CSV (core.intake.importing), through the core, `journeys import` and
`POST /customers/import`, on SQLite and PostgreSQL: E.164 phones, rejected rows and
their reasons, re-runs that update and never duplicate, and consent that fires
`opted_in` once, with its evidence and without a double opt-in confirmation text."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from api.app import create_app
from api.routes import imports
from api.services import Services
from cli.main import app as journeys
from core.customers import consent
from core.events.router import EventRouter
from core.intake.importing import ImportFileError, ImportReport, ImportStopped, csv_rows, import_customers
from processes.simulate import Simulation
from store.db import session_scope
from store.tables import ConsentRecord, Customer, Enrollment, Event, PhoneSuppression
from tests.api.conftest import API_SETTINGS as SETTINGS
from tests.api.conftest import WELCOME
from tests.runtime.support import CountingSender, write_journeys

DISCLOSURE = "Text me offers from Nordic Shoes. Msg&data rates may apply. Reply STOP to cancel."
TOKEN = "import-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class World:
    router: EventRouter
    db: Engine
    sender: CountingSender
    journeys: Path
    address: str

    async def run(self, text: str, source: str = "import:test", **kwargs: Any) -> ImportReport:
        return await import_customers(self.router, csv_rows(io.StringIO(text.lstrip(), newline="")), source=source,
                                      **kwargs)

    def customer(self, customer_id: str) -> Customer:
        with session_scope(self.db) as session:
            found = session.get(Customer, customer_id)
            assert found is not None, customer_id
            return found

    def count(self, table: type, **where: Any) -> int:
        with session_scope(self.db) as session:
            query = select(func.count()).select_from(table)
            for name, value in where.items():
                query = query.where(getattr(table, name) == value)
            return session.exec(query).one()

    def evidence(self, customer_id: str) -> list[ConsentRecord]:
        with session_scope(self.db) as session:
            return list(session.exec(select(ConsentRecord).where(ConsentRecord.customer_id == customer_id)
                                     .order_by(ConsentRecord.id)).all())


@pytest.fixture
async def world(tmp_path: Path, env, db: Engine) -> AsyncIterator[World]:  # type: ignore[no-untyped-def]
    catalog = write_journeys(tmp_path / "journeys", {"welcome": WELCOME}, settings=SETTINGS)
    sender = CountingSender()
    async with Simulation(env, catalog, db, sender=sender) as sim:  # starts now: imports use real time
        yield World(sim.router, db, sender, tmp_path / "journeys", env.client.service_client.config.target_host)


async def eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


def by_line(report: ImportReport) -> dict[int, tuple[str | None, str, str]]:
    return {r.line: (r.customer_id, r.field, r.reason) for r in report.rejected}


# --- the core ---------------------------------------------------------------------------


async def test_phones_in_any_common_format_are_stored_as_e164(world: World) -> None:
    report = await world.run("""
id,phone
p1,(201) 555-0123
p2,201.555.0124
p3,+1 201 555 0125
p4,1-201-555-0126
p5,+46 70 123 45 67
p6,011 46 70 123 45 68
p7,  2015550127
""")
    assert (report.created, report.rejected, report.total) == (7, [], 7)
    phones = {f"p{n}": world.customer(f"p{n}").phone for n in range(1, 8)}
    assert phones == {"p1": "+12015550123", "p2": "+12015550124", "p3": "+12015550125", "p4": "+12015550126",
                      "p5": "+46701234567", "p6": "+46701234568", "p7": "+12015550127"}
    assert world.customer("p1").phone_status == "ok"


async def test_bad_rows_are_rejected_with_the_field_and_a_reason(world: World) -> None:
    report = await world.run(f"""
id,phone,timezone,birthday,sms_consent,consent_at,consent_text,email
ok1,(201) 555-0123,Europe/Stockholm,1990-04-23,opted_in,2026-01-31T10:00:00Z,{DISCLOSURE},ana@example.com
b1,555-12,,,,,,
b2,,Mars/Olympus,,,,,
b3,(201) 555-0124,,,opted_in,,,
b4,,,1990-02-30,,,,
b5,,,23/04/1990,,,,
,(201) 555-0125,,,,,,
ana@example.com,,,,,,,
12015550126,,,,,,,
b6,,,,pending,,,
b7,(201) 555-0127,,,opted_in,2026-01-31 10:00,{DISCLOSURE},
ok1,,,,,,,
b8,,,,,,,not-an-email
b9,,,,,,{DISCLOSURE},
b10,,,,maybe,,,
b11,,,,,,,,surplus
ok2,,europe/stockholm,,,,,
""")
    rejected = by_line(report)
    assert {line: (cid, column) for line, (cid, column, _) in rejected.items()} == {
        3: ("b1", "phone"), 4: ("b2", "timezone"), 5: ("b3", "consent_text"), 6: ("b4", "birthday"),
        7: ("b5", "birthday"), 8: (None, "id"), 9: (None, "id"), 10: (None, "id"), 11: ("b6", "sms_consent"),
        12: ("b7", "consent_at"), 13: ("ok1", "id"), 14: ("b8", "email"), 15: ("b9", "consent_text"),
        16: ("b10", "sms_consent"), 17: ("b11", "row"),
    }
    assert "too short" in rejected[3][2]
    assert "IANA time zone" in rejected[4][2]
    assert "disclosure text" in rejected[5][2]
    assert "no such date" in rejected[6][2] and "YYYY-MM-DD" in rejected[7][2]
    assert "missing" in rejected[8][2]
    assert "not an email or phone" in rejected[9][2] and "phone number" in rejected[10][2]
    assert "pending" in rejected[11][2]
    assert "time zone" in rejected[12][2]
    assert "line 2" in rejected[13][2]
    assert "without sms_consent" in rejected[15][2]
    assert "quotes" in rejected[17][2]
    # Reasons never repeat what may be personal data: the number, the email, the id that is one.
    secrets = ("555", "ana@", "not-an-email", "1990", "23/04")
    assert not any(secret in reason for _, _, reason in rejected.values() for secret in secrets)
    assert (report.total, report.created, len(report.rejected)) == (17, 2, 15)
    assert world.count(Customer) == 2  # nothing of a rejected row is written
    assert world.customer("ok2").timezone == "Europe/Stockholm"
    ok = world.customer("ok1")
    assert (ok.phone, ok.timezone, ok.birthday.isoformat(), ok.sms_consent) == (  # type: ignore[union-attr]
        "+12015550123", "Europe/Stockholm", "1990-04-23", "opted_in")
    [evidence] = world.evidence("ok1")
    assert (evidence.source, evidence.disclosure, evidence.occurred_at) == (
        "import:test", DISCLOSURE, datetime(2026, 1, 31, 10, tzinfo=UTC))


async def test_the_example_in_the_docs_imports_cleanly(world: World) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "importing.md"
    example = docs.read_text().split("```csv\n", 1)[1].split("```", 1)[0]
    report = await world.run(example)
    assert (report.created, report.rejected, report.consent_events) == (3, [], 2)
    assert world.customer("c-1002").attributes == {"shoe_size": "44"}


async def test_a_file_that_cannot_be_imported_says_why() -> None:
    for text, expected in [("", "empty"), ("phone,first_name\n+12015550123,Ana\n", "no `id` column"),
                           ("id,phon\nc1,x\n", "unknown column 'phon'"), ("id,id\n", "appears twice"),
                           ("id,attr_\n", "attribute name")]:
        with pytest.raises(ImportFileError, match=expected):
            list(csv_rows(io.StringIO(text)))
    rows = list(csv_rows(io.StringIO("\ufeffID;Phone;Attr_Shoe_Size\nc1;+12015550123;38\n\nc2;;\n")))
    assert rows == [{"id": "c1", "phone": "+12015550123", "attr_Shoe_Size": "38"}, {},
                    {"id": "c2", "phone": "", "attr_Shoe_Size": ""}]


async def test_running_the_same_file_again_updates_and_never_duplicates(world: World) -> None:
    calls: list[str] = []
    route = world.router.route

    async def counting_route(event, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(event.type)
        return await route(event, **kwargs)

    world.router.route = counting_route  # type: ignore[method-assign]
    header = "id,phone,first_name,last_name,sms_consent,consent_source,consent_text,attr_shoe_size,attr_vip\n"
    rows = [f"r{n},(201) 555-{n:04d},Name{n},Last{n},opted_in,checkout,{DISCLOSURE},{36 + n % 8},yes\n"
            for n in range(1, 21)]
    first = await world.run(header + "".join(rows))
    assert (first.created, first.updated, first.unchanged, first.rejected) == (20, 0, 0, [])
    assert first.consent_events == 20 and calls == ["opted_in"] * 20
    counts = world.count(Customer), world.count(ConsentRecord), world.count(Event, type="opted_in")
    assert counts == (20, 20, 20)

    calls.clear()
    again = await world.run(header + "".join(rows))
    assert (again.created, again.updated, again.unchanged, again.consent_events) == (0, 0, 20, 0)
    assert calls == []  # an unchanged row costs no call to Temporal

    rows[2] = f"r3,(201) 555-0003,Renamed,Last3,opted_in,checkout,{DISCLOSURE},41,\n"
    changed = await world.run(header + "".join(rows))
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 19)
    assert calls == []
    assert (world.count(Customer), world.count(ConsentRecord), world.count(Event, type="opted_in")) == counts
    renamed = world.customer("r3")
    assert renamed.first_name == "Renamed" and renamed.attributes == {"shoe_size": "41", "vip": "yes"}


async def test_an_imported_opt_in_fires_opted_in_once_and_sends_no_confirmation(world: World) -> None:
    text = f"id,phone,sms_consent,consent_source,consent_text\nc1,(201) 555-0123,opted_in,checkout,{DISCLOSURE}\n"
    first = await world.run(text)
    assert first.consent_events == 1 and world.customer("c1").sms_consent == "opted_in"
    # The welcome journey started and sent; the double opt-in confirmation did not go out.
    sent = await eventually(lambda: world.sender.sent)
    assert [m.body for m in sent] == ["Welcome aboard"]
    for _ in range(2):
        assert (await world.run(text)).consent_events == 0
    assert world.count(Event, type="opted_in") == 1
    assert world.count(Enrollment, journey_id="welcome") == 1
    assert [(e.status, e.source, e.disclosure) for e in world.evidence("c1")] == [
        ("opted_in", "checkout", DISCLOSURE)]
    # New evidence for the same decision is kept, and announces nothing.
    assert (await world.run(text.replace("checkout", "store_tablet"))).consent_events == 0
    assert [e.source for e in world.evidence("c1")] == ["checkout", "store_tablet"]
    # An opt-out is a change: it fires opted_out.
    out = await world.run("id,sms_consent\nc1,opted_out\n")
    assert out.consent_events == 1 and world.count(Event, type="opted_out") == 1
    assert world.customer("c1").sms_consent == "opted_out"
    assert [m.body for m in world.sender.sent] == ["Welcome aboard"]


async def test_an_import_never_overrides_a_later_opt_out(world: World) -> None:
    stop = datetime.now(UTC) - timedelta(days=2)
    await world.run("id,phone\nc1,(201) 555-0123\nc2,(201) 555-0124\n")
    await asyncio.to_thread(consent.record, world.db, "c1", "opted_out", source="sms_keyword", at=stop,
                            disclosure="customer texted 'STOP'")
    before, after = (stop - timedelta(days=1)).isoformat(), (stop + timedelta(days=1)).isoformat()
    header = "id,sms_consent,consent_at,consent_text\n"
    undated = await world.run(header + f"c1,opted_in,,{DISCLOSURE}\n")
    assert by_line(undated)[2][1] == "sms_consent" and "opted out on" in by_line(undated)[2][2]
    older = await world.run(header + f"c1,opted_in,{before},{DISCLOSURE}\n")
    assert by_line(older)[2][1] == "consent_at" and "never overrides a later decision" in by_line(older)[2][2]
    assert (await world.run(header + "c1,none,,\n")).rejected != []  # none would forget the STOP just as well
    assert world.customer("c1").sms_consent == "opted_out"
    newer = await world.run(header + f"c1,opted_in,{after},{DISCLOSURE}\n")
    assert newer.rejected == [] and world.customer("c1").sms_consent == "opted_in"
    # A number that texted STOP (before it was anyone's) cannot be opted in by an import.
    with session_scope(world.db) as session:
        session.add(PhoneSuppression(phone="+12015550124", reason="opted_out", source="sms_keyword", created_at=stop))
    blocked = await world.run(f"id,sms_consent,consent_text\nc2,opted_in,{DISCLOSURE}\n")
    assert by_line(blocked)[2][:2] == ("c2", "sms_consent") and "START" in by_line(blocked)[2][2]
    nophone = await world.run(f"id,sms_consent,consent_text\nc3,opted_in,{DISCLOSURE}\n")
    assert by_line(nophone)[2][1] == "phone"
    assert world.count(Customer) == 2


async def test_an_import_stopped_midway_finishes_when_run_again(world: World) -> None:
    text = "id,phone,sms_consent,consent_text\n" + "".join(
        f"s{n},(201) 555-{n:04d},opted_in,{DISCLOSURE}\n" for n in range(1, 6))
    route = world.router.route

    async def temporal_down(event, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("connection refused")

    world.router.route = temporal_down  # type: ignore[method-assign]
    with pytest.raises(ImportStopped, match="run the same import again") as stopped:
        await world.run(text)
    assert stopped.value.report is not None and stopped.value.report.created == 5
    assert world.count(Event, type="opted_in") == 0
    world.router.route = route  # type: ignore[method-assign]
    again = await world.run(text)
    assert (again.unchanged, again.consent_events) == (5, 5)  # the announcements that never went out
    assert world.count(Event, type="opted_in") == 5 and world.count(ConsentRecord) == 5
    assert (await world.run(text)).consent_events == 0


async def test_progress_counts_every_row(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.intake.importing.CHUNK", 7)
    seen: list[int] = []
    text = "id,first_name\n" + "".join(f"g{n},G\n" for n in range(30)) + "\n"
    report = await world.run(text, progress=seen.append)
    assert seen == [7, 7, 7, 7, 3] and report.total == 30 and report.created == 30


# --- `journeys import` --------------------------------------------------------------------


async def test_the_cli_imports_reports_and_exits_by_the_file(world: World, tmp_path: Path) -> None:
    env = {"JOURNEYS_DATABASE_URL": world.db.url.render_as_string(hide_password=False),
           "TEMPORAL_ADDRESS": world.address}
    file = tmp_path / "customers.csv"
    file.write_text(f"""id,phone,first_name,sms_consent,consent_text
c1,(201) 555-0123,Ana,opted_in,{DISCLOSURE}
c2,555-12,Bo,,
ana@example.com,,,,
c3,+46 70 123 45 67,Erik,opted_out,
""", encoding="utf-8")
    report = tmp_path / "rejected.csv"
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(journeys, ["import", *args], env=env)

    result = await asyncio.to_thread(run, str(file), "--journeys", str(world.journeys), "--report", str(report))
    assert result.exit_code == 0, result.output
    assert "4 rows: 2 created, 0 updated, 0 unchanged, 2 rejected" in result.stdout
    assert "too short" in result.stdout and "c2" in result.stdout
    assert list(csv.reader(report.open())) == [
        ["line", "id", "field", "reason"],
        ["3", "c2", "phone", "too short for +1 (US)"],
        ["4", "", "id", "must be 1-64 letters, digits or _ . : - (an opaque id, not an email or phone)"]]
    assert world.customer("c1").phone == "+12015550123" and world.customer("c3").sms_consent == "opted_out"
    assert world.count(Event, type="opted_in") == 1

    again = await asyncio.to_thread(run, str(file), "--journeys", str(world.journeys))
    assert again.exit_code == 0 and "0 created, 0 updated, 2 unchanged, 2 rejected" in again.stdout

    (tmp_path / "no_id.csv").write_text("phone,first_name\n+12015550123,Ana\n")
    (tmp_path / "latin1.csv").write_bytes("id,first_name\nc9,Bj\xf6rn\n".encode("latin-1"))
    for name, message in [("no_id.csv", "no `id` column"), ("missing.csv", "cannot read"),
                          ("latin1.csv", "not UTF-8")]:
        failed = await asyncio.to_thread(run, str(tmp_path / name), "--journeys", str(world.journeys))
        assert failed.exit_code == 1 and message in failed.stderr, failed.output
    assert world.count(Customer, id="c9") == 0


async def test_the_cli_without_temporal_imports_nothing_and_says_why(world: World, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    file = tmp_path / "customers.csv"
    file.write_text("id,first_name\nc1,Ana\n")
    env = {"JOURNEYS_DATABASE_URL": world.db.url.render_as_string(hide_password=False),
           "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}
    result = await asyncio.to_thread(CliRunner().invoke, journeys,
                                     ["import", str(file), "--journeys", str(world.journeys)], env=env)
    assert result.exit_code == 1 and "cannot reach Temporal" in result.stderr
    assert world.count(Customer) == 0


# --- POST /customers/import -----------------------------------------------------------------


@pytest.fixture
async def http(world: World) -> AsyncIterator[httpx.AsyncClient]:
    services = Services.build(world.router.catalog, world.db, world.router, world.sender, api_token=TOKEN,
                              public_url="https://journeys.example")
    app = create_app(services)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://journeys.example") as client:
            yield client


async def test_the_http_import_takes_csv_and_answers_with_the_report(world: World, http: httpx.AsyncClient,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    body = f"id,phone,sms_consent,consent_text\nc1,(201) 555-0123,opted_in,{DISCLOSURE}\nc2,555-12,,\n"
    csv_type = {"Content-Type": "text/csv"}
    assert (await http.post("/customers/import", content=body, headers=csv_type)).status_code == 401
    response = await http.post("/customers/import", content=body, headers={**AUTH, **csv_type})
    assert response.status_code == 200, response.text
    assert response.json() == {"total": 2, "created": 1, "updated": 0, "unchanged": 0, "consent_events": 1,
                               "rejected": [{"line": 3, "customer_id": "c2", "field": "phone",
                                             "reason": "too short for +1 (US)"}]}
    again = await http.post("/customers/import", content=body.encode("utf-8-sig"),
                            headers={**AUTH, "Content-Type": "text/csv; charset=utf-8"})
    assert again.json()["unchanged"] == 1 and again.json()["consent_events"] == 0
    assert world.count(Event, type="opted_in") == 1

    as_json = await http.post("/customers/import", json={"id": "c1"}, headers=AUTH)
    assert as_json.status_code == 415
    no_id = await http.post("/customers/import", content="phone\n+12015550123\n", headers={**AUTH, **csv_type})
    assert no_id.status_code == 422 and "no `id` column" in no_id.json()["detail"][0]["msg"]
    latin1 = await http.post("/customers/import", content="id,first_name\nc9,Bj\xf6rn\n".encode("latin-1"),
                             headers={**AUTH, **csv_type})
    assert latin1.status_code == 422 and "UTF-8" in latin1.json()["detail"][0]["msg"]
    monkeypatch.setattr(imports, "MAX_BYTES", 64)
    large = await http.post("/customers/import", content=body * 10, headers={**AUTH, **csv_type})
    assert large.status_code == 413
    assert world.count(Customer) == 1

    described = (await http.get("/openapi.json")).json()["paths"]["/customers/import"]["post"]
    assert "text/csv" in described["requestBody"]["content"]
    assert {"200", "413", "415", "422"} <= set(described["responses"])
