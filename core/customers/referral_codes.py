"""Referral codes: every customer has one to share, made when the customer is."""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session, select

from store.tables import Customer

# 8 characters a customer can read out and type without confusing 0/O, 1/I/L
# (31 symbols: about 8.5e11 codes).
REFERRAL_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
REFERRAL_CODE_LENGTH = 8



def normalize_code(value: Any) -> str | None:
    """A code as a customer may type it: any case, with spaces or dashes."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper().replace(" ", "").replace("-", "")
    return code or None


def new_referral_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))
        if session.exec(select(Customer.id).where(Customer.referral_code == code)).first() is None:
            return code


def assign_referral_code(session: Session, customer: Customer) -> str:
    """The customer's referral code, made on first need and kept for good."""
    if not customer.referral_code:
        customer.referral_code = new_referral_code(session)
        session.add(customer)
        session.flush()
    return customer.referral_code


def referrer_by_code(session: Session, code: Any, *, for_update: bool = False) -> Customer | None:
    """The customer whose referral code this is (any case, spaces or dashes), if any."""
    normalized = normalize_code(code)
    if normalized is None:
        return None
    query = select(Customer).where(Customer.referral_code == normalized)
    return session.exec(query.with_for_update() if for_update else query).first()
