"""The fake provider itself, through the real Twilio SDK: a scenario's verdict is only as
good as the fake's log and list."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.faults.fake_provider import FakeProvider, Faults

ACCOUNT = "AC" + "0" * 32
SERVICE = "MG" + "1" * 32


def client(url: str, timeout: float = 5) -> Client:
    sdk = Client(ACCOUNT, "secret", http_client=TwilioHttpClient(timeout=timeout))
    sdk.api.base_url = url
    return sdk


def test_creates_are_listed_newest_first_and_filtered_by_recipient_and_date() -> None:
    with FakeProvider() as fake:
        sdk = client(fake.url)
        first = sdk.messages.create(to="+15550000001", body="one", messaging_service_sid=SERVICE,
                                    status_callback="http://x/twilio/status?m=abc")
        sdk.messages.create(to="+15550000002", body="two", messaging_service_sid=SERVICE)
        third = sdk.messages.create(to="+15550000001", body="three", messaging_service_sid=SERVICE)
        assert first.sid.startswith("SM") and first.status == "queued"
        since = datetime.now(UTC) - timedelta(minutes=1)
        listed = sdk.messages.list(to="+15550000001", date_sent_after=since, limit=20)
        assert [m.sid for m in listed] == [third.sid, first.sid]
        assert listed[1].body == "one" and listed[1].messaging_service_sid == SERVICE
        assert listed[1].date_sent is not None and listed[1].date_sent.tzinfo is not None
        assert sdk.messages.list(to="+15550000001", date_sent_after=datetime.now(UTC) + timedelta(minutes=1)) == []
        assert len(sdk.messages.list(date_sent=datetime.now(UTC).date().isoformat(), page_size=2, limit=3)) == 3
        assert fake.log[0].message_id == "abc"
        assert sdk.messages(first.sid).fetch().body == "one"


def test_faults_are_reproducible_and_tell_created_from_not_created() -> None:
    with FakeProvider(faults=Faults(fail_before=0.2, fail_after=0.2, rate_limit=0.2, seed=7)) as fake:
        sdk = client(fake.url)
        outcomes = []
        for n in range(50):
            try:
                sdk.messages.create(to=f"+1555{n:07d}", body=f"n{n}", messaging_service_sid=SERVICE)
                outcomes.append("ok")
            except TwilioRestException as err:
                outcomes.append(f"{err.status}:{err.code}")
        status = fake.status()
        created_by_fault = sum(1 for m in fake.log if m.fault == "fail_after")
        assert status["injected"]["fail_after"] == created_by_fault > 0
        assert outcomes.count("429:20429") == status["injected"]["rate_limit"] > 0
        assert outcomes.count("500:20500") == status["injected"]["fail_before"] + created_by_fault
        assert len(fake.log) == outcomes.count("ok") + created_by_fault
        fake.set_faults(seed=7)  # the same seed, the same draws
        again = [fake._draw() for _ in range(50)]
        assert [o == "429:20429" for o in outcomes] == [d == "rate_limit" for d in again]


def test_a_hung_create_times_the_client_out_but_the_message_exists() -> None:
    with FakeProvider(faults=Faults(hang=1.0, hang_seconds=3)) as fake:
        with pytest.raises(Exception) as caught:
            client(fake.url, timeout=0.5).messages.create(to="+15550000009", body="hi", messaging_service_sid=SERVICE)
        assert "timed out" in str(caught.value).lower() or "timeout" in type(caught.value).__name__.lower()
        assert [m.body for m in fake.log] == ["hi"]


def test_as_its_own_process_it_is_steered_and_read_over_http() -> None:
    process = subprocess.Popen([sys.executable, "-m", "tests.faults.fake_provider", "--rate-limit", "1"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        sdk = client(url)
        with pytest.raises(TwilioRestException) as refused:
            sdk.messages.create(to="+15550000003", body="no", messaging_service_sid=SERVICE)
        assert refused.value.code == 20429
        request = urllib.request.Request(f"{url}/_control", data=json.dumps({"rate_limit": 0}).encode(),
                                         method="POST")
        with urllib.request.urlopen(request) as answer:
            assert json.load(answer)["faults"]["rate_limit"] == 0
        sdk.messages.create(to="+15550000003", body="yes", messaging_service_sid=SERVICE,
                            status_callback="http://x/twilio/status?m=m1")
        with urllib.request.urlopen(f"{url}/_log") as answer:
            assert [(m["body"], m["message_id"]) for m in json.load(answer)] == [("yes", "m1")]
    finally:
        process.kill()
        process.wait()
