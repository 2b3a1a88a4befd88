"""The suppression list: numbers we must not text, by number or, for an erased
customer's number, by its keyed hash (core/customers/pseudonyms.py). Every lookup goes
through here, so a number that comes back after its owner was erased is found."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from core.customers import pseudonyms
from store.tables import PhoneSuppression


def of_erased_number(row: PhoneSuppression) -> bool:
    """Whether this row is an erased customer's number (kept under its hash)."""
    return row.phone.startswith(pseudonyms.PREFIX)


def find(session: Session, phone: str) -> PhoneSuppression | None:
    """The suppression of ``phone``, by number or by hash; None if it may be texted."""
    return find_many(session, [phone]).get(phone)


def find_many(session: Session, phones: Iterable[str]) -> dict[str, PhoneSuppression]:
    """The suppressions of these numbers, by number (plain rows win over hashed ones)."""
    phones = sorted(set(phones))
    if not phones:
        return {}
    keys = {phone: [phone, *pseudonyms.candidates(session, phone)] for phone in phones}
    rows = {row.phone: row for row in session.exec(select(PhoneSuppression).where(
        col(PhoneSuppression.phone).in_([key for listed in keys.values() for key in listed])))}
    found: dict[str, PhoneSuppression] = {}
    for phone, listed in keys.items():
        row = next((rows[key] for key in listed if key in rows), None)
        if row is not None:
            found[phone] = row
    return found


def lift_opt_out(session: Session, phone: str, at: datetime) -> None:
    """The number's owner opted back in (START): its opt-outs made before ``at`` go."""
    for key in (phone, *pseudonyms.candidates(session, phone)):
        row = session.get(PhoneSuppression, key)
        if row is not None and row.reason == "opted_out" and row.created_at <= at:
            session.delete(row)


def keep_only_hashed(session: Session, phone: str, at: datetime, *, source: str) -> int:
    """Erasure: the number's suppressions are kept under its hash only, and it is
    suppressed as opted out if it was not already. Returns the rows written or removed."""
    key = pseudonyms.hashed(session, phone)
    plain = session.get(PhoneSuppression, phone)
    existing = session.get(PhoneSuppression, key)
    changed = 0
    if existing is None:
        # An opt-out wins over "unusable": an erased person is never texted again, whatever
        # becomes of the number; the plain row's history (when, why) is kept with it.
        kept = plain if plain is not None and plain.reason == "opted_out" else None
        session.add(PhoneSuppression(phone=key, reason="opted_out", source=kept.source if kept else source,
                                     created_at=kept.created_at if kept else at))
        changed += 1
    if plain is not None:
        session.delete(plain)
        changed += 1
    session.flush()
    return changed
