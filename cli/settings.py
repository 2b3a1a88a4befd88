"""The settings of a command: read from the environment once per command, when it needs
them (authoring commands never do)."""

from __future__ import annotations

from processes.settings import ServiceSettings


def load_settings() -> ServiceSettings:
    """Raises pydantic.ValidationError naming the variable; cli.main turns it into a message."""
    return ServiceSettings()
