"""`journeys customers erase ID`, on SQLite and PostgreSQL, against a customer whom real
journeys wrote (the API fixture's simulation; checks in erasure_support.py); that erasure
covers every table; and the keyed hash an erased number's opt-out is kept under."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel, col
from typer.testing import CliRunner, Result

from cli.main import app
from core.customers import pseudonyms, suppressions
from core.customers.erasure import ERASED_TABLES, UnknownCustomer, erase_customer
from store.db import session_scope
from store.tables import Customer, Enrollment, Erasure, Message, PhoneSuppression, PseudonymKey, SegmentMembership
from tests.api.conftest import Api
from tests.api.conftest import api as api  # the fixture, for the CLI tests
from tests.customers.erasure_support import PHONE, aggregates, check_erased, check_number_stays_suppressed, seed

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Tables that hold nothing of any one customer.
# webhook_deliveries: platform delivery ids; import_cursors: the next page's address;
# shop_discounts: a code's state in the shop (the coupon, kept, names the customer).
# journey_controls: an operator's pause or stop (its changed_by names staff, never a customer).
NOT_PERSONAL = {"journey_versions", "segment_refreshes", "pseudonym_keys", "coupon_pool", "webhook_deliveries",
                "import_cursors", "shop_discounts", "journey_controls"}


def _cli_env(api: Api) -> dict[str, str]:
    client = api.run.sim.env.client
    return {"JOURNEYS_DATABASE_URL": api.run.sim.db.url.render_as_string(hide_password=False),
            "TEMPORAL_ADDRESS": client.service_client.config.target_host, "TEMPORAL_NAMESPACE": client.namespace}


async def _erase(api: Api, *args: str, input: str | None = None) -> Result:
    # The command runs its own event loop: in a thread, beside this test's.
    return await asyncio.to_thread(CliRunner().invoke, app, ["customers", "erase", *args], env=_cli_env(api),
                                   input=input)


async def test_cli_erase_asks_then_erases_for_good_and_keeps_reports_and_the_opt_out(api: Api) -> None:
    await seed(api)
    before = aggregates(api.run.sim.db)

    declined = await _erase(api, "c1", input="n\n")
    assert declined.exit_code == 1 and "nothing was erased" in declined.output
    assert api.run.customer_row("c1").phone == PHONE
    unknown = await _erase(api, "nobody", "--yes")
    assert unknown.exit_code == 1 and "no customer 'nobody'" in unknown.output

    done = await _erase(api, "c1", input="y\n")
    assert done.exit_code == 0, done.output
    assert "erased customer c1" in done.output and "  messages: " in done.output and "  runs_stopped: 1" in done.output
    await check_erased(api, before, source="cli")

    again = await _erase(api, "c1", "--yes")  # idempotent
    assert again.exit_code == 0 and "  runs_stopped: 0" in again.output
    with session_scope(api.run.sim.db, readonly=True) as session:
        assert [e.source for e in session.execute(select(Erasure).where(col(Erasure.customer_id) == "c1"))
                .scalars()] == ["cli", "cli"]
    await check_number_stays_suppressed(api)


def test_erasure_covers_every_table_that_holds_a_customer_or_a_number() -> None:
    # A new table must say what erasure does to it (ERASED_TABLES) or be listed here as holding
    # nothing of a person; one with a customer_id or a number column is always the former.
    tables = {table.name: set(table.columns.keys()) for table in SQLModel.metadata.sorted_tables}
    personal = {name for name, columns in tables.items() if columns & {"customer_id", "phone", "reply_to"}}
    assert personal <= set(ERASED_TABLES) - NOT_PERSONAL, personal - set(ERASED_TABLES)
    assert set(ERASED_TABLES) | NOT_PERSONAL == set(tables)


def _suppressed(db: Any, phone: str) -> str | None:
    with session_scope(db) as session:
        found = suppressions.find(session, phone)
        return found.reason if found else None


def test_an_erased_number_is_found_by_either_key_and_never_kept_plain(db) -> None:
    with session_scope(db) as session:
        session.add(PhoneSuppression(phone=PHONE, reason="unusable", source="provider:21614", created_at=T0))
    with session_scope(db) as session:
        assert suppressions.keep_only_hashed(session, PHONE, T0, source="erasure:cli") == 2
    with session_scope(db, readonly=True) as session:
        rows = session.execute(select(PhoneSuppression)).scalars().all()
        stored = session.execute(select(PseudonymKey)).scalars().all()
    assert [(r.phone.startswith("hmac:"), len(r.phone), r.reason) for r in rows] == [(True, 69, "opted_out")]
    assert len(stored) == 1 and PHONE not in rows[0].phone
    assert _suppressed(db, PHONE) == "opted_out" and _suppressed(db, "+12015550124") is None

    # The key set later (JOURNEYS_PSEUDONYM_KEY): earlier hashes still count, new ones use it.
    pseudonyms.use_key(db, "a-key-from-the-environment")
    try:
        assert _suppressed(db, PHONE) == "opted_out"
        with session_scope(db) as session:
            suppressions.keep_only_hashed(session, "+12015550124", T0, source="erasure:api")
        with session_scope(db, readonly=True) as session:
            assert session.get(PhoneSuppression, pseudonyms.hashed(session, "+12015550124")) is not None
            assert pseudonyms.hashed(session, PHONE) != rows[0].phone  # a different key: a different hash
    finally:
        pseudonyms.use_key(db, None)
    assert _suppressed(db, "+12015550124") is None  # made with the key only the environment holds
    with session_scope(db) as session:
        suppressions.lift_opt_out(session, PHONE, T0)  # START from the number: its owner asked
    assert _suppressed(db, PHONE) is None


class Stopper:
    """A RunStopper whose Temporal is down (``fail``), or that stops what it is asked to."""

    def __init__(self, *, fail: bool) -> None:
        self.fail, self.asked = fail, []

    async def stop(self, workflow_id: str, reason: str) -> bool:
        self.asked.append((workflow_id, reason))
        if self.fail:
            raise RuntimeError("Temporal is unreachable")
        return True


async def test_a_run_temporal_cannot_stop_leaves_the_erasure_open_until_it_is_erased_again(db) -> None:
    with session_scope(db) as session:
        session.add(Customer(id="c1", phone=PHONE, first_name="Ada", sms_consent="opted_in", created_at=T0))
        session.add(Enrollment(id="run1", journey_id="promo", journey_version="v1", customer_id="c1",
                               workflow_id="journey/promo/c1", entered_at=T0, started_at=T0))
        session.add(Message(id="m1", key="run1:offer", customer_id="c1", enrollment_id="run1", journey_id="promo",
                            step_id="offer", body="Hi Ada", status="deferred", reason="quiet_hours", created_at=T0))
    down = Stopper(fail=True)
    report = await erase_customer(db, down, "c1", source="cli")
    assert down.asked == [("journey/promo/c1", "erased")]
    assert report.completed_at is None and report.runs_not_stopped == ["journey/promo/c1"]
    with session_scope(db, readonly=True) as session:
        customer, message = session.get(Customer, "c1"), session.get(Message, "m1")
        assert customer is not None and message is not None
        # Erased all the same, and nothing can go out: the deferred text never will.
        assert (customer.phone, customer.first_name, customer.sms_consent) == (None, None, "opted_out")
        assert (message.status, message.reason, message.body) == ("skipped", "erased", None)
        assert session.get(Erasure, report.erasure_id).completed_at is None  # type: ignore[union-attr]
    up = Stopper(fail=False)
    again = await erase_customer(db, up, "c1", source="api")
    assert up.asked == [("journey/promo/c1", "erased")]  # the run an earlier erasure ended, stopped now
    assert again.completed_at is not None and again.runs_not_stopped == [] and again.counts["runs_stopped"] == 1
    with pytest.raises(UnknownCustomer, match="no customer 'nobody'"):
        await erase_customer(db, up, "nobody", source="api")


AGAIN = """
id: again
name: Every promo
trigger: {event: promo}
reentry: always
steps:
  - id: offer
    send_sms: {text: "New in"}
"""


async def test_an_erased_customer_enters_no_journey_and_no_segment_later(journeys_dir, simulation) -> None:  # type: ignore[no-untyped-def]
    from core.event import EventIn
    from core.journeys.stopping import TemporalRunStopper
    from core.segments.refresh import refresh
    from tests.runtime.support import write_journeys

    catalog = write_journeys(journeys_dir, {"again": AGAIN})
    async with simulation(catalog) as run:
        await run.customer(orders=[{"at": "-40d", "amount": 30}])  # lapsed_30d's rule holds for them
        promo = [EventIn(id=f"promo-{n}", type="promo", customer_id="sim-customer", occurred_at=run.sim.clock)
                 for n in range(2)]
        assert (await run.sim.router.route(promo[0])).started == ["again"]  # `reentry: always`: it would again
        await erase_customer(run.sim.db, TemporalRunStopper(run.sim.env.client), "sim-customer", source="cli")
        assert (await run.sim.router.route(promo[1])).started == []
        await refresh(catalog, run.sim.db, run.sim.router, at=run.sim.clock)
        with session_scope(run.sim.db, readonly=True) as session:
            assert session.execute(select(SegmentMembership)).all() == []
            assert len(session.execute(select(Enrollment)).all()) == 1
