"""The processes' log lines (JOURNEYS_LOG_FORMAT): ``text`` for people, ``json`` for a log
collector: one object per line with time, level, logger, message, and the workflow or
activity the line was written in. Either way, what looks like a phone number in a line is
masked on its way out: call sites mask already (messaging.phone.mask); this is the net
under them (a library's message, an exception quoting its input)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal

from temporalio import activity, workflow

from messaging.phone import mask

# E.164 and the usual written forms of it: a "+", then 8 to 15 digits, with spaces, dots,
# dashes or brackets between them.
_PHONE = re.compile(r"\+\d(?:[\s.\-()]{0,2}\d){7,14}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def scrub(line: str) -> str:
    return _PHONE.sub(lambda found: mask(found.group()), line)


class MaskingText(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        entry.update(_temporal_context(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


def _temporal_context(record: logging.LogRecord) -> dict[str, Any]:
    """The SDK's own loggers put it on the record; the engine's module loggers do not, so it
    is read from the activity (or workflow) the line is written in."""
    for key in ("temporal_activity", "temporal_workflow"):
        given = getattr(record, key, None)
        if isinstance(given, dict):
            return {key.removeprefix("temporal_"): given}
    if activity.in_activity():
        info = activity.info()
        return {"activity": {"activity_type": info.activity_type, "activity_id": info.activity_id,
                             "attempt": info.attempt, "task_queue": info.task_queue,
                             "workflow_id": info.workflow_id, "workflow_type": info.workflow_type}}
    if workflow.in_workflow():
        winfo = workflow.info()
        return {"workflow": {"workflow_id": winfo.workflow_id, "workflow_type": winfo.workflow_type,
                             "run_id": winfo.run_id, "task_queue": winfo.task_queue}}
    return {}


def configure_logging(form: Literal["text", "json"], level: int = logging.INFO) -> None:
    """The root logger's one handler (stderr), in the chosen form."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if form == "json" else MaskingText(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
