"""The real application over ASGI, wired to a simulation (time-skipping server, workers,
database on SQLite and PostgreSQL) and a sender that records what it sends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from api.app import create_app
from api.services import Services
from processes.simulate import CustomerSpec
from tests.e2e.conftest import dev_server  # noqa: F401  (a Temporal dev server, for test_limits_process)
from tests.runtime.support import CountingSender, Run, write_journeys

TOKEN = "test-token"
TWILIO_TOKEN = "twilio-secret"
PUBLIC_URL = "https://journeys.example"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# Quiet hours off and generous caps: these tests are about the HTTP edge, at real time.
API_SETTINGS = """
brand: Nordic Shoes
default_country: US
default_timezone: America/New_York
quiet_hours: {start: "00:00", end: "00:00"}
frequency_caps: [{max: 100, per: 1h}]
opt_in: {mode: double}
links: {base_url: "https://journeys.example"}
"""

ASK_AND_CLICK = """
id: survey
name: Survey
trigger: {event: purchase}
exit_on: [{event: refund}]
steps:
  - id: nps
    ask:
      text: "0-10?"
      expect: {type: integer, min: 0, max: 10}
      timeout: 1h
  - id: review
    send_sms: {text: "Review us: {{ link('https://shop.example/review') }}"}
  - wait_for: {event: link_clicked, timeout: 1h}
  - if: "clicked('review')"
    then: [{exit: clicked}]
    else: [{exit: not_clicked}]
"""
PROMO = """
id: promo
name: Promo
trigger: {event: promo}
steps:
  - id: offer
    send_sms: {text: "New in: {{ link('https://shop.example/new') }}"}
  - wait_for: {event: purchase, timeout: 30d}
  - if: "clicked('offer')"
    then: [{exit: clicked}]
    else: [{exit: not_clicked}]
"""
WELCOME = """
id: welcome
name: Welcome
trigger: {event: opted_in}
steps:
  - id: hello
    send_sms: {text: "Welcome aboard"}
"""


@dataclass
class Api:
    http: httpx.AsyncClient
    run: Run
    sender: CountingSender

    def signed(self, path: str, form: dict[str, str]) -> dict[str, str]:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_URL + path, form)
        return {"X-Twilio-Signature": signature}

    async def twilio(self, path: str, form: dict[str, str], *, forge: bool = False) -> httpx.Response:
        headers = {"X-Twilio-Signature": "forged"} if forge else self.signed(path, form)
        return await self.http.post(path, data=form, headers=headers)

    async def customer(self, customer_id: str, **fields: Any) -> None:
        await self.run.sim.add_customer(CustomerSpec(id=customer_id, **fields))


@asynccontextmanager
async def serve_api(env: Any, db: Any, catalog: Any, **secrets: str) -> AsyncIterator[Api]:
    """The HTTP service over ``catalog``, in process, on a simulation (the real workflows and
    activities on the test server), with a counting sender; ``secrets``: webhook secrets
    for Services.build (``mailgun_webhook_signing_key=...``)."""
    from processes.simulate import Simulation

    sender = CountingSender()
    async with Simulation(env, catalog, db, sender=sender) as sim:  # starts now: the API uses real time
        services = Services.build(catalog, db, sim.router, api_token=TOKEN, twilio_auth_token=TWILIO_TOKEN,
                                  public_url=PUBLIC_URL, **secrets)
        app = create_app(services)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
                yield Api(http, Run(sim), sender)


@pytest.fixture
async def api(tmp_path: Path, env, db) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    catalog = write_journeys(tmp_path / "journeys", {"survey": ASK_AND_CLICK, "welcome": WELCOME, "promo": PROMO},
                             settings=API_SETTINGS)
    async with serve_api(env, db, catalog) as api:
        yield api


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)
