"""What the HTTP service needs, built once at start-up and shared by every request."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.events import EventRouter
from engine.inbound import Inbound
from engine.replies import ReplySender
from engine.temporal import connect
from language.catalog import Catalog, load_catalog
from messaging.senders import SmsSender, sender_from_env
from store.db import make_engine
from store.migrate import upgrade


@dataclass
class Services:
    catalog: Catalog
    engine: Any
    router: EventRouter
    replies: ReplySender
    inbound: Inbound
    api_token: str
    twilio_auth_token: str | None
    public_url: str  # what Twilio signs: the service's public base URL

    @classmethod
    async def from_env(cls, journeys_dir: Path | None = None, address: str | None = None) -> Services:
        catalog = load_catalog(journeys_dir or Path(os.environ.get("JOURNEYS_DIR", "journeys")))
        engine = make_engine()
        upgrade(engine)
        client = await connect(address)
        return cls.build(catalog, engine, EventRouter(catalog, engine, client), sender_from_env(catalog.settings))

    @classmethod
    def build(cls, catalog: Catalog, engine: Any, router: EventRouter, sender: SmsSender,
              api_token: str | None = None, twilio_auth_token: str | None = None,
              public_url: str | None = None) -> Services:
        token = api_token or os.environ.get("JOURNEYS_API_TOKEN")
        if not token:
            raise SystemExit("JOURNEYS_API_TOKEN is not set: the events API needs a bearer token")
        replies = ReplySender(engine, sender, catalog.settings)
        return cls(
            catalog=catalog, engine=engine, router=router, replies=replies, inbound=Inbound(router, replies),
            api_token=token,
            twilio_auth_token=twilio_auth_token or os.environ.get("TWILIO_AUTH_TOKEN"),
            public_url=(public_url or os.environ.get("JOURNEYS_PUBLIC_URL") or catalog.settings.links.base_url
                        ).rstrip("/"),
        )
