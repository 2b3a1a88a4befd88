"""uvicorn's access line without the query string: a token, a signature or anything else
a client puts in a URL (`?token=...`) must never reach the logs. The path stays."""

from __future__ import annotations

import logging


class NoQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs '%s - "%s %s HTTP/%s" %d' with (client, method, path?query, version, status).
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, target, version, status = record.args
            record.args = (client, method, str(target).partition("?")[0], version, status)
        return True


def log_config() -> dict[str, object]:
    """uvicorn's own logging configuration, with NoQuery on its access logger."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["no_query"] = {"()": NoQuery}
    config["loggers"]["uvicorn.access"]["filters"] = ["no_query"]
    return config
