"""Tracked short links. Every request is counted in `clicks`; the first one that is a
click becomes the link's one `link_clicked` event (id ``click:<code>``), which reaches
`clicked('<step>')` and `wait_for`. Later clicks are counted, not signalled: a link
flooded with requests costs its run one signal, not one per request (history is bounded).

Not clicks (counted with the reason in ``clicks.bot``, never signalled): HEAD requests,
requests without a User-Agent, and the link-preview bots and crawlers of BOT_AGENTS
(iMessage, WhatsApp, Slack, Telegram, Facebook, X, Google, ...). There is no "first
seconds after delivery" rule: we learn of delivery from a receipt that may come after
the click, and a customer may tap a link at once; a scanner posing as a browser is
indistinguishable from the customer.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from core.event import EventIn, EventPath
from store.db import session_scope
from store.tables import Click, Link

# Lower-case substrings of the User-Agent of link previewers and crawlers. iMessage's
# preview sends "... facebookexternalhit/1.1 Facebot Twitterbot/1.0".
BOT_AGENTS = (
    "facebookexternalhit", "facebot", "twitterbot", "slackbot", "slack-imgproxy", "telegrambot", "whatsapp/",
    "discordbot", "linkedinbot", "skypeuripreview", "googlebot", "google-pagerenderer", "adsbot-google",
    "google-inspectiontool", "bingbot", "bingpreview", "applebot", "linkpresentation", "pinterestbot",
    "redditbot", "embedly", "iframely", "vkshare", "yandexbot", "duckduckbot", "baiduspider", "mastodon/",
    "crawler", "spider",
)  # fmt: skip
MAX_AGENT = 512  # characters of a User-Agent looked at


class LinkExpired(Exception):
    """The link is past retention (core/retention.py): its target is gone."""


def bot_of(user_agent: str | None, method: str = "GET") -> str | None:
    """Why a request for a link is not a click (``head``, ``no_user_agent``, the bot's
    name), or None for a click. ``user_agent`` None: not an HTTP request (a simulation)."""
    if method.upper() == "HEAD":
        return "head"
    if user_agent is None:
        return None
    agent = user_agent[:MAX_AGENT].lower()
    if not agent.strip():
        return "no_user_agent"
    return next((name.rstrip("/") for name in BOT_AGENTS if name in agent), None)


async def record_click(router: EventPath, code: str, *, at: datetime, user_agent: str | None = None,
                       method: str = "GET") -> str | None:
    """Count a request for ``code``; returns the target URL, or None for an unknown code.
    Raises LinkExpired for a link retention anonymised (not counted: its run is long over)."""
    bot = bot_of(user_agent, method)
    event_id = f"click:{code}"  # one event per link: a repeat is a duplicate for the event path

    def store() -> Link | None:
        with session_scope(router.db) as session:
            link = session.get(Link, code)
            if link is not None and link.anonymised_at is None:
                session.add(Click(link_code=code, event_id=None if bot else event_id, bot=bot, clicked_at=at,
                                  enrollment_id=link.enrollment_id, journey_id=link.journey_id,
                                  journey_version=link.journey_version, step_id=link.step_id))
            return link

    link = await asyncio.to_thread(store)
    if link is not None and link.anonymised_at is not None:
        raise LinkExpired(code)
    if link is None or bot is not None:
        return None if link is None else link.url
    await router.route(EventIn(id=event_id, type="link_clicked", customer_id=link.customer_id,
                               occurred_at=at, properties={"code": code, "url": link.url,
                                                           "enrollment_id": link.enrollment_id,
                                                           "journey": link.journey_id, "step": link.step_id}),
                       source="link")
    return link.url
