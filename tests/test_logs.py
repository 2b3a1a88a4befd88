"""JOURNEYS_LOG_FORMAT: JSON lines that parse, with the activity a line was written in, and
phone numbers masked in either form (masked at the call site stays masked; a raw one
that slips through a library's message is masked on the way out)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from messaging.senders.base import OutgoingSms
from messaging.senders.console import ConsoleSender
from processes.logs import JsonLines, MaskingText, configure_logging, scrub
from processes.settings import ServiceSettings

NUMBER = "+12015550123"


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield out, handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_parse_and_numbers_stay_masked(captured: tuple[io.StringIO, logging.Handler]) -> None:
    out, handler = captured
    handler.setFormatter(JsonLines())
    log = logging.getLogger("journeys.test")
    printed = io.StringIO()  # the console sender's line, masked where it is written, then logged
    ConsoleSender(printed).send(OutgoingSms(to=NUMBER, body="Hi Ana", message_key="k"))
    log.info(printed.getvalue().strip())
    log.warning("a library quoting its input: The 'To' number %s is not valid", NUMBER)
    log.info("spaced: +1 (201) 555-0123, order 100045, at 2026-03-02T15:00:00+00:00, +35d later")
    try:
        raise ValueError(f"bad number {NUMBER}")
    except ValueError:
        log.exception("failed")
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(entries) == 4
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert entries[0]["message"].startswith("SMS to ***123 ")
    assert entries[1] == {**entries[1], "level": "WARNING", "logger": "journeys.test",
                          "message": "a library quoting its input: The 'To' number ***123 is not valid"}
    assert entries[2]["message"] == "spaced: ***123, order 100045, at 2026-03-02T15:00:00+00:00, +35d later"
    assert "ValueError: bad number ***123" in entries[3]["exception"]
    assert "5550123" not in out.getvalue()


def test_an_activity_line_names_its_activity(captured: tuple[io.StringIO, logging.Handler]) -> None:
    out, handler = captured
    handler.setFormatter(JsonLines())

    @activity.defn(name="journey.send_sms")
    def send() -> None:
        logging.getLogger("activities.sending").info("message m-1: settling")

    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, activity_type="journey.send_sms",
                                           workflow_id="journey/welcome/c-1", workflow_type="Journey")
    environment.run(send)
    [entry] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert entry["message"] == "message m-1: settling"
    assert entry["activity"]["activity_type"] == "journey.send_sms"
    assert entry["activity"]["workflow_id"] == "journey/welcome/c-1"
    assert {"workflow_type", "attempt", "task_queue", "activity_id"} <= set(entry["activity"])


def test_text_lines_are_masked_too(captured: tuple[io.StringIO, logging.Handler]) -> None:
    out, handler = captured
    handler.setFormatter(MaskingText("%(levelname)s %(message)s"))
    logging.getLogger("journeys.test").info("from %s", NUMBER)
    assert out.getvalue() == "INFO from ***123\n"


def test_the_setting_chooses_the_form() -> None:
    assert ServiceSettings.from_mapping({}).log_format == "text"
    assert ServiceSettings.from_mapping({"JOURNEYS_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ValueError, match="JOURNEYS_LOG_FORMAT"):
        ServiceSettings.from_mapping({"JOURNEYS_LOG_FORMAT": "yaml"})
    root = logging.getLogger()
    before = root.handlers[:], root.level
    try:
        configure_logging("json")
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, JsonLines)
        configure_logging("text")
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, MaskingText)
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
    assert scrub("no numbers here: 12 items, 3 days, id 20260302150000") == (
        "no numbers here: 12 items, 3 days, id 20260302150000")


def test_the_api_logs_json_too() -> None:
    from processes.http import api_log_config

    text_config = api_log_config(ServiceSettings.from_mapping({}))
    assert text_config["root"] == {"handlers": ["engine"], "level": "INFO"}  # uvicorn's lines: its own
    config = api_log_config(ServiceSettings.from_mapping({"JOURNEYS_LOG_FORMAT": "json"}))
    formatters = config["formatters"]
    assert isinstance(formatters, dict) and formatters["access"] == {"()": JsonLines}
    assert config["root"] == {"handlers": ["default"], "level": "INFO"}
    # uvicorn's access line, through the query-stripping filter and the JSON formatter.
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/l/abc?token=secret", "1.1", 302), None)
    from api.access_log import NoQuery

    assert NoQuery().filter(record)
    assert json.loads(JsonLines().format(record))["message"] == '127.0.0.1:5 - "GET /l/abc HTTP/1.1" 302'


def test_the_api_logs_the_engines_lines_as_text_with_numbers_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """Text form: the engine's INFO lines reach the API's log, through the masking formatter
    (before, only WARNING and up did, through Python's last-resort handler, unmasked)."""
    import logging.config

    from processes.http import api_log_config

    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    before = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    try:
        logging.config.dictConfig(api_log_config(ServiceSettings.from_mapping({})))
        logging.getLogger("core.events.router").info("routed for +1 201 555 0123")
        logging.getLogger("uvicorn.error").info("Application startup complete.")
    finally:  # the configuration is the process's: put it back for the tests after this one
        for logger, (handlers, level, propagate) in zip(loggers, before, strict=True):
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate
    err = capsys.readouterr().err
    assert "INFO core.events.router: routed for" in err and "555 0123" not in err, err
    assert err.count("Application startup complete.") == 1  # uvicorn's own handler, not twice
