"""Email senders: SMTP (aiosmtplib) and the console; one contract, like the SMS senders.

The class of the error raised tells the send activity whether sending again is safe:
``RetryableProviderError`` only when the relay provably did not accept the message (no
connection, or it refused before or at DATA with a 4xx), ``PermanentProviderError`` for
a 5xx refusal, ``AmbiguousProviderError`` for anything after the message was handed over
without the relay's final answer (a timeout, a dropped connection): it may have been
accepted, and SMTP gives no way to ask, so such a message is never sent again.
"""

from __future__ import annotations

import ssl
import sys
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr
from typing import Protocol, TextIO

from messaging.senders.base import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderReceipt,
    RetryableProviderError,
)


@dataclass(frozen=True, kw_only=True)
class OutgoingEmail:
    to: str = field(repr=False)  # never in reprs, which end up in logs
    sender: str  # the From header
    subject: str = field(repr=False)
    text: str = field(repr=False)
    html: str | None = field(default=None, repr=False)
    message_id: str  # the Message-ID header, derived from the message key: the same on a retry
    unsubscribe_url: str | None = None  # RFC 8058 one-click (List-Unsubscribe-Post)
    message_key: str  # for logs


def build_mime(email: OutgoingEmail) -> EmailMessage:
    """The message as it goes on the wire: text, and HTML as the alternative if given."""
    # Long lines allowed (998, RFC 5322's limit): a folded or encoded List-Unsubscribe URL
    # is one mail clients may not follow.
    mime = EmailMessage(policy=SMTP.clone(max_line_length=998))
    mime["From"] = email.sender
    mime["To"] = email.to
    mime["Subject"] = email.subject
    mime["Message-ID"] = email.message_id
    mime["Date"] = formatdate(usegmt=True)
    if email.unsubscribe_url:
        mime["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mime.set_content(email.text)
    if email.html is not None:
        mime.add_alternative(email.html, subtype="html")
    return mime


class EmailSender(Protocol):
    name: str
    from_address: str  # the From header (JOURNEYS_EMAIL_FROM)

    async def send(self, email: OutgoingEmail) -> ProviderReceipt: ...


class ConsoleEmailSender:
    """Prints a line per email (never the address): for `journeys dev` and simulations."""

    name = "console"

    def __init__(self, stream: TextIO | None = None, *, from_address: str = "shop@journeys.invalid"):
        self.from_address = from_address
        self._stream = stream
        self._lock = threading.Lock()
        self.sent: list[OutgoingEmail] = []

    async def send(self, email: OutgoingEmail) -> ProviderReceipt:
        subject = email.subject.replace("\r", "\\r").replace("\n", "\\n")
        line = f"EMAIL {email.message_key} {email.message_id}: {subject}\n"
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line)
            stream.flush()
            self.sent.append(email)
        return ProviderReceipt(provider_message_id=email.message_id, status="sent")


@dataclass(frozen=True, kw_only=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: str = "starttls"  # starttls | tls | none
    timeout: float = 30.0
    ca_file: str | None = None  # the CAs the relay's certificate must chain to; None: the system's


class SmtpSender:
    """Any SMTP relay (the common providers' relays take STARTTLS on 587 or TLS on 465)."""

    name = "smtp"

    def __init__(self, config: SmtpConfig, *, from_address: str):
        self.config = config
        self.from_address = from_address

    async def send(self, email: OutgoingEmail) -> ProviderReceipt:
        import aiosmtplib  # loads only when an SMTP sender is used

        config = self.config
        # The certificate and its host name are always checked (aiosmtplib's default context).
        context = ssl.create_default_context(cafile=config.ca_file) if config.ca_file else None
        client = aiosmtplib.SMTP(hostname=config.host, port=config.port, timeout=config.timeout,
                                 use_tls=config.security == "tls", start_tls=config.security == "starttls",
                                 tls_context=context)
        try:
            try:
                await client.connect()
                if config.username:
                    await client.login(config.username, config.password or "")
            except aiosmtplib.SMTPAuthenticationError as err:
                raise PermanentProviderError(f"SMTP authentication failed ({err.code})", "smtp_auth") from None
            except (aiosmtplib.SMTPException, OSError) as err:
                raise RetryableProviderError(f"SMTP connection failed: {type(err).__name__}") from None
            mime = build_mime(email)
            try:
                await client.mail(_address(email.sender))
                await client.rcpt(email.to)
            except aiosmtplib.SMTPResponseException as err:  # refused before the content: not taken
                if err.code >= 500:
                    raise PermanentProviderError(f"SMTP refused ({err.code})", str(err.code)) from None
                raise RetryableProviderError(f"SMTP refused for now ({err.code})") from None
            except (aiosmtplib.SMTPException, OSError) as err:
                raise RetryableProviderError(f"SMTP failed before the message: {type(err).__name__}") from None
            try:
                response = await client.data(mime.as_bytes())
            except aiosmtplib.SMTPResponseException as err:  # the relay answered: it did not take it
                if err.code >= 500:
                    raise PermanentProviderError(f"SMTP refused the message ({err.code})", str(err.code)) from None
                raise RetryableProviderError(f"SMTP deferred the message ({err.code})") from None
            except (aiosmtplib.SMTPException, OSError) as err:
                # No answer after the content went out (timeout, dropped connection): the
                # relay may have accepted it. SMTP cannot be asked, so this is never resent.
                raise AmbiguousProviderError(f"SMTP outcome unknown: {type(err).__name__}") from None
        finally:
            try:
                if client.is_connected:
                    await client.quit()
            except Exception:  # the answer is already known; a failed QUIT changes nothing
                client.close()
        return ProviderReceipt(provider_message_id=email.message_id, status=str(response.code))


def _address(header: str) -> str:
    return parseaddr(header)[1] or header


