"""The SMTP sender over TLS against a real aiosmtpd server with a certificate from a CA
made by the test: STARTTLS with AUTH (the submission port, 587) and implicit TLS with
AUTH (465) deliver; a certificate from another CA, or the system's CAs alone, are
refused before anything is sent (the email stays reserved for a retry), and so is a
wrong password."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from language.models import EmailMessage
from messaging.senders.base import RetryableProviderError
from messaging.senders.email import SmtpConfig, SmtpSender
from store.db import session_scope
from store.tables import Email
from tests.e2e.tls_proxy import Authority
from tests.email.support import FROM, Relay, add_customer, call, free_port
from tests.email.support import activities as email_activities
from tests.runtime.support import write_journeys

USER, PASSWORD = "relay-user", "relay-password-123"
HOST = "localhost"  # the name in the server's certificate: the client checks it
# Implicit TLS: aiosmtpd warns that AUTH does not wait for STARTTLS, which TLS from the first byte makes moot.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
MESSAGE = EmailMessage(subject="Hi {{ customer.first_name }}", text="Your cart is waiting")


class Login:
    """aiosmtpd's authenticator: one user and password; every attempt is remembered."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, bool]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(), PASSWORD.encode())
        self.attempts.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Authority, Authority, ssl.SSLContext]:
    """The relay's CA, another CA, and the relay's server context (a certificate for localhost)."""
    directory = tmp_path_factory.mktemp("smtp-pki")
    ours, other = Authority.create(directory, "smtp-test-ca"), Authority.create(directory, "another-ca")
    issued = ours.issue(directory, HOST, server=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert, issued.key)
    return ours, other, context


@contextmanager
def tls_relay(context: ssl.SSLContext, mode: str) -> Iterator[tuple[Relay, Login, int]]:
    relay, login, port = Relay(), Login(), free_port()
    if mode == "starttls":  # plain connect, STARTTLS required before MAIL and AUTH
        controller = Controller(relay, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                                authenticator=login, auth_required=True)
    else:  # TLS from the first byte; AUTH needs no STARTTLS on top
        controller = Controller(relay, hostname="127.0.0.1", port=port, ssl_context=context, authenticator=login,
                                auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        yield relay, login, port
    finally:
        controller.stop()


def _sender(port: int, mode: str, ca: Path | None, password: str = PASSWORD) -> SmtpSender:
    return SmtpSender(SmtpConfig(host=HOST, port=port, username=USER, password=password, security=mode, timeout=5.0,
                                 ca_file=str(ca) if ca else None), from_address=FROM)


def _statuses(db: Any) -> list[str]:
    with session_scope(db, readonly=True) as session:
        return [row.status for row in session.exec(select(Email)).all()]


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_the_email_goes_over_tls_with_auth(mode: str, pki, journeys_dir: Path, db) -> None:
    ours, _, context = pki
    catalog = write_journeys(journeys_dir, {})
    add_customer(db)
    with tls_relay(context, mode) as (relay, login, port):
        outcome = await email_activities(db, catalog, _sender(port, mode, ours.cert)).send_email(call(MESSAGE))
    assert outcome.status == "sent"
    assert len(relay.received) == 1 and relay.received[0]["Subject"] == "Hi Ada"
    assert relay.envelopes == [("shop@nordic.example", ["ada@example.com"])]
    assert [ok for _, ok in login.attempts] == [True]
    assert _statuses(db) == ["sent"]


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_a_certificate_from_another_ca_is_refused_before_sending(mode: str, pki, journeys_dir: Path,
                                                                       db) -> None:
    _, other, context = pki
    catalog = write_journeys(journeys_dir, {})
    add_customer(db)
    with tls_relay(context, mode) as (relay, login, port):
        with pytest.raises(RetryableProviderError, match="connection failed"):
            await email_activities(db, catalog, _sender(port, mode, other.cert)).send_email(call(MESSAGE))
        with pytest.raises(RetryableProviderError):  # the system's CAs do not know the test CA either
            await email_activities(db, catalog, _sender(port, mode, None)).send_email(call(MESSAGE))
    assert relay.received == [] and login.attempts == []  # the password never went out
    assert _statuses(db) == ["reserved"]  # provably not taken: Temporal's retry may send it


async def test_a_wrong_password_is_a_configuration_error_and_nothing_is_sent(pki, journeys_dir: Path, db) -> None:
    ours, _, context = pki
    catalog = write_journeys(journeys_dir, {})
    add_customer(db)
    with tls_relay(context, "starttls") as (relay, login, port):
        with pytest.raises(ApplicationError, match="credentials"):
            await email_activities(db, catalog, _sender(port, "starttls", ours.cert, "wrong")).send_email(call(MESSAGE))
        outcome = await email_activities(db, catalog, _sender(port, "starttls", ours.cert)).send_email(call(MESSAGE))
    *refused, (_, accepted) = login.attempts  # the client tries each mechanism the relay offers
    assert refused and not any(ok for _, ok in refused) and accepted and outcome.status == "sent"
    assert len(relay.received) == 1
