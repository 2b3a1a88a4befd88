"""A process's parts, built from the one settings object: the journeys catalog, the
migrated database, the Temporal client, the event path and the SMS sender. The worker,
the API, `journeys dev` and the one-shot commands all start here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import Runtime

from core.customers import pseudonyms
from core.events.router import EventRouter
from core.sms.replies import ReplySender
from language.catalog import Catalog
from language.validate import load_catalog
from messaging.senders.base import SmsSender
from processes.senders import build_sender
from processes.settings import ServiceSettings
from processes.temporal import connect
from store.db import Database, open_database
from store.migrate import upgrade


@dataclass
class Wiring:
    settings: ServiceSettings
    catalog: Catalog
    db: Database
    client: Client
    router: EventRouter
    sender: SmsSender
    replies: ReplySender

    def close(self) -> None:
        self.db.dispose()


def open_catalog(settings: ServiceSettings, journeys_dir: Path | None = None) -> Catalog:
    """The validated journeys directory; raises InvalidJourneys (a directory that is not
    there is one problem, said as such)."""
    return load_catalog(journeys_dir or settings.journeys_dir)


def open_migrated_database(settings: ServiceSettings) -> Database:
    db = open_database(settings.database_url)
    upgrade(db)
    pseudonyms.use_key(db, settings.secret("pseudonym_key"))
    return db


async def wire(settings: ServiceSettings, *, journeys_dir: Path | None = None, catalog: Catalog | None = None,
               client: Client | None = None, runtime: Runtime | None = None) -> Wiring:
    catalog = catalog or open_catalog(settings, journeys_dir)
    sender = build_sender(settings, catalog.settings)  # a misconfigured sender fails before anything starts
    db = open_migrated_database(settings)
    client = client or await connect(settings, runtime)
    return Wiring(settings=settings, catalog=catalog, db=db, client=client, router=EventRouter(catalog, db, client),
                  sender=sender, replies=ReplySender(db, client, catalog.settings))
