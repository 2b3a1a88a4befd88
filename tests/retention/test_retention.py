"""Retention (core/retention.py) on SQLite and PostgreSQL, at fixed instants: rows seeded
through the real paths (the event path, the send activity, a click) long ago and lately;
the job anonymises or deletes the old ones, leaves the new ones, the rows of a running
enrollment and events not yet routed, keeps every count the reports read, works in
batches, and a second run finds nothing to do."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from api.routes import links as link_routes
from core.retention import KINDS, non_personal, origin_only, run_all, run_batch
from language.config import Settings
from tests.retention.support import (
    CART,
    ENDED,
    NOW,
    PERSONAL,
    RUNNING,
    Clock,
    catalog_for,
    report_counts,
    seed,
    snapshot,
)


async def test_old_rows_go_new_and_running_ones_stay_and_the_reports_keep_their_totals(seeded, db) -> None:
    before = seeded.before
    old_events = {i for i, e in before["events"].items() if e.received_at < NOW - timedelta(days=730)}
    assert {"order-old-0", "order-running", "order-unrouted", "click:" + before["links"][ENDED[0]].code} <= old_events
    dry = run_all(db, seeded.catalog.settings.retention, NOW, batch_size=2, dry_run=True)
    assert snapshot(db) == before  # a dry run changes nothing...
    report = run_all(db, seeded.catalog.settings.retention, NOW, batch_size=2)
    assert dry.changed == report.changed  # ...and counts what the real run does
    after = snapshot(db)
    # Events: the old routed ones keep only their non-personal properties; the running
    # run's trigger, the unrouted event and the new one are as they were.
    anonymised = {i for i, e in after["events"].items() if e.anonymised_at is not None}
    assert anonymised == old_events - {"order-running", "order-unrouted", "inbound:SM-c1"}
    assert after["events"]["inbound:SM-c2"].properties == {}  # the answer's text is gone
    assert after["events"]["inbound:SM-c1"].properties["body"] == "Call me, Ana"  # c1's run is running
    assert report.changed["events"] == len(anonymised)
    assert after["events"]["order-old-0"].properties == {"amount": 120, "currency": "USD", "category": "shoes"}
    assert after["events"]["order-old-0"].anonymised_at == NOW
    click = after["events"]["click:" + before["links"][ENDED[0]].code].properties
    assert "url" not in click and click["code"] == before["links"][ENDED[0]].code and click["journey"] == "promo"
    for kept in ("order-running", "order-unrouted", "order-new"):
        assert after["events"][kept].properties == PERSONAL and after["events"][kept].anonymised_at is None
    # Messages: the old texts of ended runs and the old reply lose body and reply_to.
    for message_id, message in after["messages"].items():
        old_and_done = message.created_at < NOW - timedelta(days=730) and message.enrollment_id != RUNNING
        assert (message.body is None and message.reply_to is None) == old_and_done, message_id
        assert (message.anonymised_at == NOW) == old_and_done
    assert report.changed["messages"] == 4  # three ended runs' texts and the reply
    kept = {m.enrollment_id: m for m in after["messages"].values()}
    assert kept[RUNNING].body == before["messages"][kept[RUNNING].id].body and CART not in kept[RUNNING].body
    # Links: the old ones of ended runs keep only their origin.
    for enrollment_id, link in after["links"].items():
        if enrollment_id in ENDED:
            assert link.url == f"https://shop.example#{link.code}" and link.anonymised_at == NOW
        else:
            assert link.url == CART and link.anonymised_at is None
    assert report.changed["clicks"] == 3
    # Emails: the old ones of ended runs lose subject, text and HTML; status and ids stay.
    for enrollment_id, email in after["emails"].items():
        gone = enrollment_id in ENDED
        assert (email.subject is None and email.body is None and email.html is None) == gone, enrollment_id
        assert (email.anonymised_at == NOW) == gone and email.status == "sent" and email.provider_message_id
    assert report.changed["emails"] == 2
    # Decisions of ended runs go (step answers and update_segments answers); the running
    # run's, the segment outbox and the new one stay. Inbound ids stay (nothing personal;
    # a deleted one could be replayed).
    assert after["decisions"] == {f"{RUNNING}:check:condition", "segment-outbox:t1:vip:in:0",
                                  "ended-new:check:condition"}
    assert report.changed["decisions"] == 2
    assert after["inbound"] == {"SMold", "SMnew"}
    assert report_counts(after) == report_counts(before)
    # A second run, or one the day after, finds nothing to do.
    assert run_all(db, seeded.catalog.settings.retention, NOW).changed == dict.fromkeys(KINDS, 0)
    assert run_all(db, seeded.catalog.settings.retention, NOW + timedelta(days=1)).changed == dict.fromkeys(KINDS, 0)
    assert snapshot(db) == after


async def test_batches_go_in_order_and_a_run_cut_short_is_finished_by_the_next(seeded, db) -> None:
    retention = seeded.catalog.settings.retention
    first = run_batch(db, retention, "messages", NOW, limit=2)  # 5 old texts: the running run's among them
    assert first.changed == 2 and first.next_after is not None
    second = run_batch(db, retention, "messages", NOW, after=first.next_after, limit=2)
    assert second.next_after is not None and second.next_after.at > first.next_after.at
    last = run_batch(db, retention, "messages", NOW, after=second.next_after, limit=2)
    assert last.next_after is None and first.changed + second.changed + last.changed == 4
    # Stopped after the first events batch (a crash): the next run does the rest, once.
    assert run_batch(db, retention, "events", NOW, limit=2).changed == 2
    report = run_all(db, retention, NOW, batch_size=2)
    assert report.changed["messages"] == 0
    assert report.changed["events"] == sum(1 for e in snapshot(db)["events"].values() if e.anonymised_at) - 2


async def test_a_link_past_retention_answers_410_gone(seeded, db) -> None:
    app = FastAPI()
    app.include_router(link_routes.router)
    app.state.services = SimpleNamespace(catalog=seeded.catalog, db=db, router=seeded.router, api_token="t")
    links = seeded.before["links"]
    run_all(db, seeded.catalog.settings.retention, NOW)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        gone = await client.get(f"/l/{links[ENDED[1]].code}", headers={"User-Agent": "Mozilla/5.0"})
        assert gone.status_code == 410 and "expired" in gone.text
        live = await client.get(f"/l/{links['ended-new'].code}", headers={"User-Agent": "Slackbot 1.0"})
        assert live.status_code == 302 and live.headers["location"] == CART
        assert (await client.get("/l/nosuchcode")).status_code == 404
    clicks = snapshot(db)["clicks"]
    assert clicks[(links[ENDED[1]].code, None)] == 0  # an expired link's request is not counted
    assert clicks[(links["ended-new"].code, "slackbot")] == 1


async def test_null_keeps_a_kind_forever_and_longer_periods_keep_more(journeys_dir: Path, db, sender,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = catalog_for(journeys_dir, "retention: {events: null, messages: 900d, decisions: 730d}\n")
    await seed(db, catalog, sender, Clock(monkeypatch))
    report = run_all(db, catalog.settings.retention, NOW)
    assert report.kept_forever == ["events"]
    assert (report.changed["events"], report.changed["messages"], report.changed["decisions"]) == (0, 0, 2)
    assert report.changed["clicks"] == 3  # the default 730d


@pytest.mark.parametrize(("written", "words"), [
    ({"messages": "1d"}, "retention.messages"), ({"events": "soon"}, "retention.events"),
    ({"clicks": "99999d"}, "retention.clicks"), ({"inbound": "30d"}, "retention.inbound"),
])
def test_bad_retention_settings_name_the_field(written: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as err:
        Settings.model_validate({"retention": written})
    assert words in str(err.value)


def test_the_defaults_and_what_an_event_keeps() -> None:
    retention = Settings().retention
    assert {k: getattr(retention, k).days for k in KINDS} == {"events": 730, "messages": 730, "clicks": 730,
                                                              "decisions": 90, "emails": 730}
    assert non_personal({"amount": 9.5, "to": "gold", "email": "a@b.example", "name": "Ana", "sku": ["a"],
                         "paid": True}) == {"amount": 9.5, "to": "gold"}
    assert origin_only("HTTPS://Shop.Example:8443/a?b=c#d", "AbC") == "https://shop.example#AbC"
    assert origin_only("not a url", "AbC") == "#AbC"
