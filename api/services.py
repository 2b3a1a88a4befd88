"""What the HTTP service needs, built once at start-up (processes/http.py) and shared by
every request."""

from __future__ import annotations

from dataclasses import dataclass

from core.events.router import EventRouter
from core.intake.text_to_join import TextToJoin
from core.sms.inbound import Inbound
from core.sms.redeem import SmsRedeemer
from core.sms.replies import ReplySender
from language.catalog import Catalog
from messaging.senders.email import ConsoleEmailSender, EmailSender
from store.db import Database


@dataclass
class Services:
    catalog: Catalog
    db: Database
    router: EventRouter
    replies: ReplySender
    inbound: Inbound
    api_token: str
    twilio_auth_token: str | None
    public_url: str  # what Twilio signs: the service's public base URL
    shopify_webhook_secret: str | None = None  # signs Shopify's webhooks (unset: all refused)
    woocommerce_webhook_secret: str | None = None  # signs WooCommerce's webhooks (unset: all refused)
    mailgun_webhook_signing_key: str | None = None  # signs Mailgun's event webhooks (unset: all refused)
    postmark_webhook_password: str | None = None  # Postmark's webhooks' basic-auth password (unset: all refused)
    email_sender: EmailSender | None = None  # sends double opt-in confirmation emails (None: the console)

    @classmethod
    def build(cls, catalog: Catalog, db: Database, router: EventRouter, *,
              api_token: str | None, twilio_auth_token: str | None = None,
              public_url: str | None = None, shopify_webhook_secret: str | None = None,
              woocommerce_webhook_secret: str | None = None, mailgun_webhook_signing_key: str | None = None,
              postmark_webhook_password: str | None = None, email_sender: EmailSender | None = None) -> Services:
        """Raises ValueError without an API token: the events API is never open."""
        if not api_token:
            raise ValueError("JOURNEYS_API_TOKEN is not set: the events API needs a bearer token")
        replies = ReplySender(db, router.client, catalog.settings)
        return cls(
            catalog=catalog, db=db, router=router, replies=replies,
            inbound=Inbound(router, replies, TextToJoin(router, replies), SmsRedeemer(router, replies)),
            api_token=api_token, twilio_auth_token=twilio_auth_token,
            public_url=(public_url or catalog.settings.links.base_url).rstrip("/"),
            shopify_webhook_secret=shopify_webhook_secret, woocommerce_webhook_secret=woocommerce_webhook_secret,
            mailgun_webhook_signing_key=mailgun_webhook_signing_key,
            postmark_webhook_password=postmark_webhook_password,
            email_sender=email_sender or ConsoleEmailSender(),
        )
