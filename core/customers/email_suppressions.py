"""Email suppressions: addresses we must not email (a hard bounce, a complaint, too many
soft bounces), kept by the address's keyed hash, never the address: the key is derived
from the pseudonym key (core/customers/pseudonyms.py), so a copy of the database alone
cannot test addresses against it. Every lookup goes through here."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlmodel import Session

from core.customers import pseudonyms
from store.tables import EmailSuppression

PREFIX = "hmac:"
_PURPOSE = b"email-address/v1"
REASONS = ("hard_bounce", "complaint", "soft_bounces")


def normalised(address: str) -> str:
    """What two spellings of one address share: no spaces, lower case (providers report
    addresses in the case they were given, mailboxes rarely differ by case)."""
    return address.strip().lower()


def address_key(session: Session, address: str) -> str:
    key = hmac.new(pseudonyms.signing_key(session), _PURPOSE, hashlib.sha256).digest()
    return PREFIX + hmac.new(key, normalised(address).encode(), hashlib.sha256).hexdigest()


def find(session: Session, address: str) -> EmailSuppression | None:
    """The suppression of ``address``; None if it may be emailed (soft bounces under the limit)."""
    row = session.get(EmailSuppression, address_key(session, address))
    return row if row is not None and row.suppressed_at is not None else None


def suppress(session: Session, address: str, reason: str, *, source: str, at: datetime) -> bool:
    """Suppress ``address`` for ``reason``; False if it already was (the first reason stays)."""
    if reason not in REASONS:
        raise ValueError(f"an email suppression's reason is one of {', '.join(REASONS)}, not {reason!r}")
    key = address_key(session, address)
    row = session.get(EmailSuppression, key, with_for_update=True)
    if row is not None and row.suppressed_at is not None:
        return False
    row = row or EmailSuppression(address=key, source=source, updated_at=at)
    row.reason, row.source, row.suppressed_at, row.updated_at = reason, source, at, at
    session.add(row)
    return True


def count_soft_bounce(session: Session, address: str, *, source: str, at: datetime, limit: int) -> bool:
    """One more soft bounce of ``address``; True when this one reaches ``limit`` and suppresses it."""
    key = address_key(session, address)
    row = session.get(EmailSuppression, key, with_for_update=True)
    if row is None:
        row = EmailSuppression(address=key, source=source, updated_at=at)
    if row.suppressed_at is not None:
        return False
    row.soft_bounces += 1
    row.updated_at = at
    if row.soft_bounces >= limit:
        row.reason, row.source, row.suppressed_at = "soft_bounces", source, at
    session.add(row)
    return row.suppressed_at is not None
