"""Keyed hashes of phone numbers (HMAC-SHA256): what remains of an erased customer's
number, so an opt-out outlives the erasure without the number being kept.

The key is JOURNEYS_PSEUDONYM_KEY, handed in by the composition code (``use_key``), or,
when that is unset, one generated once and stored in the database (``pseudonym_keys``).
A stored key lets whoever holds a copy of the database test every number against the
hashes (there are only some 10^10 numbers): the setting, kept apart from the data, does
not. Hashes made with either key are recognised, so setting the key later keeps the
earlier ones working; new hashes use the setting.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.clock import utcnow
from store.tables import PseudonymKey

PREFIX = "hmac:"
_STORED = "default"
# The configured key per database (by URL, without its password): set by the composition code.
_configured: dict[str, bytes] = {}


def _name(bind: Any) -> str:
    return bind.url.render_as_string(hide_password=True)


def use_key(db: Any, key: str | None) -> None:
    """Hash with ``key`` (JOURNEYS_PSEUDONYM_KEY) in this database; None: the stored key."""
    if key:
        _configured[_name(db)] = key.encode()
    else:
        _configured.pop(_name(db), None)


def _stored_key(session: Session, *, create: bool) -> bytes | None:
    row = session.get(PseudonymKey, _STORED)
    if row is None and create:
        try:  # two first erasures at once: one key wins, both use it
            with session.begin_nested():
                session.add(PseudonymKey(id=_STORED, key=secrets.token_hex(32), created_at=utcnow()))
        except IntegrityError:
            pass
        row = session.get(PseudonymKey, _STORED)
    return bytes.fromhex(row.key) if row is not None else None


def _digest(key: bytes, phone: str) -> str:
    return PREFIX + hmac.new(key, phone.encode(), hashlib.sha256).hexdigest()


def hashed(session: Session, phone: str) -> str:
    """The keyed hash new suppressions are written with (makes the stored key if needed)."""
    key = _configured.get(_name(session.get_bind())) or _stored_key(session, create=True)
    assert key is not None
    return _digest(key, phone)


def candidates(session: Session, phone: str) -> list[str]:
    """Every hash ``phone`` may have been stored under (the setting's and the stored key's)."""
    keys = [_configured.get(_name(session.get_bind())), _stored_key(session, create=False)]
    return [_digest(key, phone) for key in keys if key]



def signing_key(session: Session) -> bytes:
    """The key other signatures are derived from (unsubscribe links): the setting, else the stored key."""
    key = _configured.get(_name(session.get_bind())) or _stored_key(session, create=True)
    assert key is not None
    return key
