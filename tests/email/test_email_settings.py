"""The email sender is configured from the environment; a misconfigured one refuses to start."""

from __future__ import annotations

import pytest

from messaging.senders.email import ConsoleEmailSender, SmtpSender
from processes.senders import SenderConfigError, build_email_sender
from processes.settings import ServiceSettings


def test_the_console_is_the_default() -> None:
    sender = build_email_sender(ServiceSettings.from_mapping({}))
    assert isinstance(sender, ConsoleEmailSender)


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465), ("none", 25)])
def test_smtp_from_the_environment(security: str, port: int) -> None:
    settings = ServiceSettings.from_mapping({
        "JOURNEYS_EMAIL_SENDER": "smtp", "JOURNEYS_SMTP_HOST": "smtp.example.com", "JOURNEYS_SMTP_SECURITY": security,
        "JOURNEYS_SMTP_USERNAME": "apikey", "JOURNEYS_SMTP_PASSWORD": "s3cret-relay-password",
        "JOURNEYS_EMAIL_FROM": "Shop <shop@shop.example>"})
    sender = build_email_sender(settings)
    assert isinstance(sender, SmtpSender)
    assert (sender.config.host, sender.config.port, sender.config.security) == ("smtp.example.com", port, security)
    assert sender.from_address == "Shop <shop@shop.example>"
    assert "s3cret-relay-password" in settings.server_secrets()  # no message may hold it
    assert "s3cret" not in repr(sender.config)


def test_smtp_needs_a_host_and_an_address() -> None:
    with pytest.raises(SenderConfigError, match="JOURNEYS_SMTP_HOST"):
        build_email_sender(ServiceSettings.from_mapping({"JOURNEYS_EMAIL_SENDER": "smtp"}))
    with pytest.raises(SenderConfigError, match="JOURNEYS_EMAIL_FROM"):
        build_email_sender(ServiceSettings.from_mapping({"JOURNEYS_EMAIL_SENDER": "smtp", "JOURNEYS_SMTP_HOST": "h",
                                                         "JOURNEYS_EMAIL_FROM": "shop"}))
