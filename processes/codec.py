"""Payload encryption: every payload a client or worker hands Temporal is sealed with
AES-256-GCM, so the server (and anyone reading its database or histories) holds no
readable workflow input, result, signal or activity argument.

Keys come from JOURNEYS_PAYLOAD_KEYS as ``id:base64key,id:base64key``: the first key
seals new payloads, every listed key opens old ones (rotation: put the new key first,
keep the old ones listed for as long as histories sealed with them are kept).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from processes.settings import SettingsError

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"  # the metadata entry naming the key a payload was sealed with
_NONCE_BYTES = 12
VARIABLE = "JOURNEYS_PAYLOAD_KEYS"


class PayloadDecryptionError(ValueError):
    """A sealed payload cannot be opened (unknown key id, wrong key, damaged bytes)."""


@dataclass(frozen=True)
class PayloadKeys:
    """The keys by id, in order: ``current`` seals, all open."""

    current: str
    by_id: dict[str, bytes]

    @classmethod
    def parse(cls, text: str) -> PayloadKeys:
        """Raises SettingsError naming the entry (by position and id, never the key itself)."""
        by_id: dict[str, bytes] = {}
        entries = [entry.strip() for entry in text.split(",") if entry.strip()]
        if not entries:
            raise SettingsError(f"{VARIABLE} holds no key: give id:base64key[,id:base64key...]")
        for position, entry in enumerate(entries, 1):
            key_id, colon, encoded = (part.strip() for part in entry.partition(":"))
            where = f"{VARIABLE} entry {position}" + (f" ({key_id!r})" if colon and key_id else "")
            if not colon or not key_id:
                raise SettingsError(f"{where}: not id:base64key (an id, a colon, the key in base64)")
            if key_id in by_id:
                raise SettingsError(f"{where}: the key id is listed twice")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise SettingsError(f"{where}: the key is not valid base64") from None
            if len(key) != 32:
                raise SettingsError(f"{where}: the key is {len(key)} bytes, AES-256 needs 32 "
                                    "(make one with: openssl rand -base64 32)")
            by_id[key_id] = key
        return cls(current=entries[0].partition(":")[0].strip(), by_id=by_id)


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM per payload: a fresh nonce each time, the key id as associated data
    (a payload relabelled with another id does not open)."""

    def __init__(self, keys: PayloadKeys) -> None:
        self._keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.by_id.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self._keys.current
        cipher = self._ciphers[key_id]
        sealed = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            sealed.append(Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=data))
        return sealed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(payload) for payload in payloads]

    def open(self, payload: Payload) -> Payload:
        """The payload as it was before sealing; one not sealed by this codec passes unchanged
        (histories written before encryption was turned on still read)."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(f"payload sealed with key id {key_id!r}, which {VARIABLE} does not list "
                                         f"(it lists {', '.join(repr(k) for k in self._ciphers)})")
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))
        except InvalidTag:
            raise PayloadDecryptionError(f"payload sealed with key id {key_id!r} does not open with that key "
                                         "(a different key under the same id, or damaged data)") from None


def codec_from(keys: str | None) -> EncryptionCodec | None:
    """The codec for JOURNEYS_PAYLOAD_KEYS' value; None when it is unset (no encryption)."""
    return EncryptionCodec(PayloadKeys.parse(keys)) if keys else None
