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


def test_a_ca_file_for_the_relay_must_be_readable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = {"JOURNEYS_EMAIL_SENDER": "smtp", "JOURNEYS_SMTP_HOST": "h", "JOURNEYS_EMAIL_FROM": "shop@shop.example"}
    with pytest.raises(SenderConfigError, match="JOURNEYS_SMTP_TLS_CA"):
        build_email_sender(ServiceSettings.from_mapping({**base, "JOURNEYS_SMTP_TLS_CA": str(tmp_path / "none.pem")}))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(SenderConfigError, match="not a readable PEM CA file"):
        build_email_sender(ServiceSettings.from_mapping({**base, "JOURNEYS_SMTP_TLS_CA": str(tmp_path / "junk.pem")}))


def test_mailgun_and_postmark_webhook_secrets_are_server_secrets() -> None:
    settings = ServiceSettings.from_mapping({"JOURNEYS_MAILGUN_WEBHOOK_SIGNING_KEY": "key-mailgun-1234",
                                             "JOURNEYS_POSTMARK_WEBHOOK_PASSWORD": "postmark-pass-1234"})
    assert {"key-mailgun-1234", "postmark-pass-1234"} <= set(settings.server_secrets())
    assert "key-mailgun-1234" not in repr(settings) and "postmark-pass-1234" not in repr(settings)
