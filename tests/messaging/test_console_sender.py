"""The console sender, the sender factory and the error classification table."""

from __future__ import annotations

import io
import re
import threading

import pytest

from language.config import Settings
from messaging.senders import (
    CARRIER_OPT_OUT_CODES,
    UNUSABLE_NUMBER_CODES,
    AmbiguousProviderError,
    OutgoingSms,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
    classify,
)
from messaging.senders.console import ConsoleSender
from messaging.senders.twilio import TwilioSender
from processes.senders import build_sender
from processes.settings import ServiceSettings

SMS = OutgoingSms(to="+14155552671", body="Hi Ana\nyour code: {X}", message_key="run-1:step-1")


def test_console_prints_one_masked_line_and_returns_an_id() -> None:
    out = io.StringIO()
    receipt = ConsoleSender(stream=out).send(SMS)
    assert re.fullmatch(r"CONSOLE-[0-9a-f]{32}", receipt.provider_message_id)
    line = out.getvalue()
    assert line.count("\n") == 1
    assert "***671" in line and "4155552671" not in line
    assert "GSM-7, 1 segment]" in line and "run-1:step-1" in line
    assert "Hi Ana\\nyour code: {X}" in line


def test_console_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleSender().send(SMS)
    assert "***671" in capsys.readouterr().out


def test_console_lines_stay_whole_across_threads() -> None:
    out = io.StringIO()
    sender = ConsoleSender(stream=out)
    ids: list[str] = []
    threads = [
        threading.Thread(target=lambda: ids.append(sender.send(SMS).provider_message_id))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 20 and all(line.startswith("SMS to ***671") for line in lines)
    assert len(set(ids)) == 20


def test_outgoing_sms_repr_hides_number_and_body() -> None:
    assert "4155552671" not in repr(SMS) and "Ana" not in repr(SMS)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, "20429", RetryableProviderError),
        (429, None, RetryableProviderError),
        (400, "21610", PermanentProviderError),
        (400, "21211", PermanentProviderError),
        (400, "21614", PermanentProviderError),
        (400, "21612", PermanentProviderError),
        (400, "21408", PermanentProviderError),
        (400, "21606", PermanentProviderError),
        (401, "20003", PermanentProviderError),
        (400, "21999", PermanentProviderError),  # unknown 4xx codes are permanent
        (422, None, PermanentProviderError),
        (500, None, AmbiguousProviderError),  # the notes promise nothing for 5xx
        (503, "20503", AmbiguousProviderError),
    ],
)
def test_classification_table(status: int, code: str | None, expected: type) -> None:
    assert classify(status, code) is expected


def test_suppression_code_sets() -> None:
    assert {"21211", "21614", "30006"} == UNUSABLE_NUMBER_CODES
    assert {"21610"} == CARRIER_OPT_OUT_CODES


def test_error_reason() -> None:
    assert PermanentProviderError("unsubscribed", "21610").reason == "provider_error:21610"
    assert PermanentProviderError("bad", None, http_status=422).reason == "provider_error:http_422"
    assert issubclass(AmbiguousProviderError, ProviderError)


def sender_from_env(settings: Settings, environ: dict[str, str]) -> object:
    """The sender a process with this environment builds (processes/senders.py)."""
    return build_sender(ServiceSettings.from_mapping(environ), settings)


def _settings(**sender: str) -> Settings:
    return Settings.model_validate({"sender": sender})


def test_factory_defaults_to_console() -> None:
    assert isinstance(sender_from_env(_settings(), environ={}), ConsoleSender)
    assert sender_from_env(_settings(), environ={"JOURNEYS_SMS_SENDER": "console"}).name == "console"


def test_factory_builds_twilio_from_env() -> None:
    env = {
        "JOURNEYS_SMS_SENDER": "twilio",
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "secret",
        "TWILIO_API_BASE_URL": "http://127.0.0.1:4010/",
        "TWILIO_HTTP_TIMEOUT": "2.5",
    }
    sender = sender_from_env(_settings(messaging_service_sid="MG" + "1" * 32), environ=env)
    assert isinstance(sender, TwilioSender)
    assert sender.timeout == 2.5 and sender.base_url == "http://127.0.0.1:4010"
    default = sender_from_env(_settings(**{"from": "+15005550006"}),
                              environ={**env, "TWILIO_HTTP_TIMEOUT": ""})
    assert isinstance(default, TwilioSender) and default.timeout == 10.0


@pytest.mark.parametrize(
    ("env", "sender", "words"),
    [
        ({"JOURNEYS_SMS_SENDER": "pigeon"}, {}, "console' or 'twilio"),
        ({"JOURNEYS_SMS_SENDER": "twilio"}, {"from": "+15005550006"}, "TWILIO_ACCOUNT_SID"),
        ({"JOURNEYS_SMS_SENDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"},
         {}, "messaging_service_sid or from"),
        ({"JOURNEYS_SMS_SENDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t",
          "TWILIO_HTTP_TIMEOUT": "soon"}, {"from": "+15005550006"}, "TWILIO_HTTP_TIMEOUT"),
    ],
)
def test_factory_explains_bad_configuration(env: dict, sender: dict, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        sender_from_env(_settings(**sender), environ=env)
