"""Link and media targets are absolute http(s) URLs: `journeys validate` says where one
is not, and a target that comes from data at run time skips the text instead of
sending a javascript: or //host link."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from sqlmodel import select

from language.checks_values import url_problem
from language.validate import validate_directory
from store.db import session_scope
from store.tables import Link
from tests.runtime.support import consented_sender_activities, direct_call, sms, write_journeys

BAD_TARGETS = """
id: demo
name: Demo
trigger: {event: purchase}
steps:
  - id: a
    send_sms: {text: "Go {{ link('javascript:alert(1)') }}"}
  - id: b
    send_sms:
      text: "See {{ link('//evil.example/x') }} or {{ link(trigger.properties.url | default('data:text/html,hi')) }}"
      media_url: "javascript:alert(1)"
  - id: c
    send_sms: {text: "{{ link('https://shop.example/ok') }}", media_url: "//cdn.example/a.png"}
  - id: d
    send_sms: {text: "{{ link('HTTPS://shop.example/ok?a=1#b') }}", media_url: "http://cdn.example/a.png"}
"""


def test_validate_points_at_each_target_that_is_not_http(journeys_dir: Path) -> None:
    write_journeys(journeys_dir, {})
    (journeys_dir / "demo.yaml").write_text(textwrap.dedent(BAD_TARGETS).lstrip("\n"))
    report = validate_directory(journeys_dir)
    found = [(p.line, p.column, p.message) for p in report.errors]
    assert found == [
        (6, 35, "link() target must be an http:// or https:// URL, not 'javascript:', e.g. https://shop.example/sale"),
        (9, 27, "link() target must be an http:// or https:// URL, not a scheme-relative URL (//host), "
                "e.g. https://shop.example/sale"),
        (9, 94, "link() target must be an http:// or https:// URL, not 'data:', e.g. https://shop.example/sale"),
        (10, 18, "media_url must be an http:// or https:// URL, not 'javascript:', e.g. https://shop.example/sale"),
        (12, 74, "media_url must be an http:// or https:// URL, not a scheme-relative URL (//host), "
                 "e.g. https://shop.example/sale"),
    ]


@pytest.mark.parametrize(("url", "words"), [
    ("https://shop.example/a", None), ("http://10.0.0.1:8080/x", None), ("HTTP://Shop.Example", None),
    ("javascript:alert(1)", "'javascript:'"), ("JavaScript:alert(1)", "'javascript:'"),
    ("//host/x", "scheme-relative"), ("/relative", "a relative URL"), ("tel:+12015550123", "'tel:'"),
    ("https:///nohost", "must name a host"), ("https://shop.example/a b", "spaces"),
    ("https://shop.example/\u0000", "control"), ("http://[::1", "not a valid URL"), ("", "a relative URL"),
])
def test_url_problems(url: str, words: str | None) -> None:
    reason = url_problem(url)
    assert (reason is None) if words is None else (reason is not None and words in reason)
    if reason and url:
        assert url not in reason  # at run time the URL may be customer data: never in a log line


FROM_DATA = """
id: promo
name: Promo
trigger: {event: signup}
steps:
  - id: text
    send_sms: {text: "Your cart: {{ link(trigger.properties.url) }}"}
"""


@pytest.mark.parametrize(("url", "sent"), [("javascript:alert(document.cookie)", False), ("//evil.example", False),
                                          ("https://shop.example/cart/1", True)])
async def test_a_link_target_from_data_must_be_http_at_run_time(journeys_dir: Path, simulation, sender,
                                                                url: str, sent: bool) -> None:
    catalog = write_journeys(journeys_dir, {"promo": FROM_DATA})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("promo", trigger="signup " + json.dumps({"url": url}))
        [text] = sms(await run.timeline("promo"))
        with session_scope(run.sim.db) as session:
            links = [link.url for link in session.exec(select(Link)).all()]
    if sent:
        assert text["status"] == "sent" and links == [url] and len(sender.sent) == 1
    else:
        assert text["status"] == "skipped" and text["reason"] == "render_error"
        assert links == [] and sender.sent == []


async def test_a_media_url_pinned_before_the_check_is_not_sent(journeys_dir: Path, db, sender) -> None:
    from language.models import Message as MessageSpec

    catalog = write_journeys(journeys_dir, {"promo": FROM_DATA})
    activities = consented_sender_activities(db, catalog, sender)
    call = direct_call(MessageSpec(text="Look", media_url="javascript:alert(1)"))
    outcome = await activities.send_sms(call)
    assert outcome.status == "skipped" and outcome.reason == "invalid_media_url" and sender.sent == []
