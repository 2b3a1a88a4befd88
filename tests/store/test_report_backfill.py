"""Migration 0016 gives the texts and links already written their run's journey version,
so the journey report, which no longer joins enrollments, still counts them."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from store.migrate import alembic_config

AT = "2026-03-02 15:00:00+00:00"


def test_existing_texts_and_links_get_their_runs_version(db: Engine) -> None:
    command.downgrade(alembic_config(db), "0015")
    try:
        with db.begin() as connection:
            connection.execute(text(
                "INSERT INTO enrollments (id, journey_id, journey_version, customer_id, workflow_id, status, variants,"
                " entered_at) VALUES ('run-1', 'promo', 'v1', 'c1', 'journey:promo:run-1', 'ended', '{}', :at)"),
                {"at": AT})
            for key, run, journey in (("run-1:offer", "run-1", "promo"), ("reply:keyword:1", None, None)):
                connection.execute(text(
                    "INSERT INTO messages (id, key, customer_id, enrollment_id, journey_id, step_id, purpose,"
                    " counts_toward_caps, expects_reply, status, created_at)"
                    " VALUES (:key, :key, 'c1', :run, :journey, 'offer', 'marketing', true, false, 'sent', :at)"),
                    {"key": key, "run": run, "journey": journey, "at": AT})
            connection.execute(text(
                "INSERT INTO links (code, message_key, url, customer_id, enrollment_id, journey_id, step_id,"
                " created_at) VALUES ('abc', 'run-1:offer', 'https://shop.example/', 'c1', 'run-1', 'promo',"
                " 'offer', :at)"), {"at": AT})
    finally:
        command.upgrade(alembic_config(db), "head")
    with db.connect() as connection:
        messages = dict(connection.execute(text("SELECT key, journey_version FROM messages")).all())
        links = connection.execute(text("SELECT journey_version FROM links")).scalars().all()
    assert messages == {"run-1:offer": "v1", "reply:keyword:1": None}
    assert links == ["v1"]
