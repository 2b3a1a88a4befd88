"""Migration 0021 gives the coupons already issued by journey texts their text's run,
journey, version and step, so the journey report, which counts coupons from their own
table, still counts them; a reward's coupon, or one whose text is another customer's,
stays without. Migration 0022 does the same for clicks, from their link."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from store.migrate import alembic_config

AT = "2026-03-02 15:00:00+00:00"


def test_existing_coupons_get_their_texts_journey_version_and_step(db: Engine) -> None:
    command.downgrade(alembic_config(db), "0020")
    try:
        with db.begin() as connection:
            for key, customer, run, journey, version in (("run-1:offer", "c1", "run-1", "promo", "v1"),
                                                          ("run-2:offer", "c2", "run-2", "promo", "v2")):
                connection.execute(text(
                    "INSERT INTO messages (id, key, customer_id, enrollment_id, journey_id, journey_version, step_id,"
                    " purpose, counts_toward_caps, expects_reply, status, created_at) VALUES (:key, :key, :customer,"
                    " :run, :journey, :version, 'offer', 'marketing', true, false, 'sent', :at)"),
                    {"key": key, "customer": customer, "run": run, "journey": journey, "version": version, "at": AT})
            for code, key, customer in (("TEXT1", "run-1:offer:WELCOME10", "c1"),
                                        ("REWARD1", "reward:c1:1", "c1"),
                                        ("OTHER1", "run-2:offer:WELCOME10", "c1")):  # run-2's text is c2's
                connection.execute(text(
                    "INSERT INTO coupons (code, series, key, customer_id, issued_at)"
                    " VALUES (:code, 'WELCOME10', :key, :customer, :at)"),
                    {"code": code, "key": key, "customer": customer, "at": AT})
    finally:
        command.upgrade(alembic_config(db), "head")
    with db.connect() as connection:
        coupons = {row[0]: tuple(row[1:]) for row in connection.execute(text(
            "SELECT code, enrollment_id, journey_id, journey_version, step_id FROM coupons"))}
    assert coupons == {"TEXT1": ("run-1", "promo", "v1", "offer"), "REWARD1": (None,) * 4, "OTHER1": (None,) * 4}


def test_existing_clicks_get_their_links_run_journey_version_and_step(db: Engine) -> None:
    """Migration 0022: clicks carry their link's origin, so the report counts them alone."""
    command.downgrade(alembic_config(db), "0021")
    try:
        with db.begin() as connection:
            connection.execute(text(
                "INSERT INTO links (code, message_key, url, customer_id, enrollment_id, journey_id, journey_version,"
                " step_id, created_at) VALUES ('L1', 'run-1:offer', 'https://shop.example/', 'c1', 'run-1', 'promo',"
                " 'v1', 'offer', :at), ('L2', 'reply:x', 'https://shop.example/', 'c2', NULL, NULL, NULL, NULL, :at)"),
                {"at": AT})
            connection.execute(text(
                "INSERT INTO clicks (link_code, event_id, bot, clicked_at) VALUES ('L1', 'click:L1', NULL, :at),"
                " ('L1', NULL, 'head', :at), ('L2', 'click:L2', NULL, :at)"), {"at": AT})
    finally:
        command.upgrade(alembic_config(db), "head")
    with db.connect() as connection:
        clicks = sorted((tuple(row) for row in connection.execute(text(
            "SELECT link_code, bot, enrollment_id, journey_id, journey_version, step_id FROM clicks"))), key=str)
    assert clicks == [("L1", "head", "run-1", "promo", "v1", "offer"), ("L1", None, "run-1", "promo", "v1", "offer"),
                      ("L2", None, None, None, None, None)]
