"""Which senders a process uses: for SMS the console (the default) or Twilio; for email
the console (the default) or an SMTP relay."""

from __future__ import annotations

import ssl

from language.config import Settings as JourneySettings
from messaging.senders.base import SmsSender
from messaging.senders.console import ConsoleSender
from messaging.senders.email import ConsoleEmailSender, EmailSender, SmtpConfig, SmtpSender
from processes.settings import ServiceSettings, SettingsError


class SenderConfigError(SettingsError):
    """The environment and settings.yaml do not describe a sender that can work."""


def build_sender(settings: ServiceSettings, journey_settings: JourneySettings) -> SmsSender:
    """The sender chosen by JOURNEYS_SMS_SENDER, configured from the environment and the
    journeys directory's ``sender:`` block."""
    if settings.sms_sender == "console":
        return ConsoleSender()
    missing = [name for name, value in (("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
                                        ("TWILIO_AUTH_TOKEN", settings.secret("twilio_auth_token"))) if not value]
    if missing:
        raise SenderConfigError(f"JOURNEYS_SMS_SENDER=twilio needs {' and '.join(missing)}")
    if not (journey_settings.sender.messaging_service_sid or journey_settings.sender.from_):
        raise SenderConfigError("settings.yaml: sender needs messaging_service_sid or from")
    from messaging.senders.twilio import TwilioSender  # the Twilio SDK loads only when used

    return TwilioSender(
        settings.twilio_account_sid or "",
        settings.secret("twilio_auth_token") or "",
        messaging_service_sid=journey_settings.sender.messaging_service_sid,
        from_number=journey_settings.sender.from_,
        base_url=settings.twilio_api_base_url,
        timeout=settings.twilio_http_timeout,
    )


def build_email_sender(settings: ServiceSettings) -> EmailSender:
    """The sender chosen by JOURNEYS_EMAIL_SENDER; SMTP from JOURNEYS_SMTP_* (port: 465 under
    TLS, 587 under STARTTLS, 25 without either, unless given)."""
    if settings.email_sender == "console":
        return ConsoleEmailSender(from_address=settings.email_from)
    if not settings.smtp_host:
        raise SenderConfigError("JOURNEYS_EMAIL_SENDER=smtp needs JOURNEYS_SMTP_HOST")
    if "@" not in settings.email_from:
        raise SenderConfigError(f"JOURNEYS_EMAIL_FROM {settings.email_from!r} is not an email address")
    port = settings.smtp_port or {"tls": 465, "starttls": 587, "none": 25}[settings.smtp_security]
    ca_file = str(settings.smtp_tls_ca) if settings.smtp_tls_ca else None
    if ca_file:
        try:  # checked at start: a bad file is a configuration error, not a failed email
            ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as err:
            raise SenderConfigError(f"JOURNEYS_SMTP_TLS_CA {ca_file!r} is not a readable PEM CA file: "
                                    f"{type(err).__name__}") from None
    return SmtpSender(SmtpConfig(host=settings.smtp_host, port=port, username=settings.smtp_username,
                                 password=settings.secret("smtp_password"), security=settings.smtp_security,
                                 timeout=settings.smtp_timeout, ca_file=ca_file), from_address=settings.email_from)
