"""A sender that prints messages instead of sending them: for `journeys dev` and simulations.

It keeps what it printed (the newest 10,000), so it answers the lookups that settle an
unknown outcome like a real provider does."""

from __future__ import annotations

import sys
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import TextIO

from messaging.encoding import analyze
from messaging.phone import mask
from messaging.senders.base import OutgoingSms, ProviderMessage, ProviderReceipt


class ConsoleSender:
    name = "console"

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream  # None: whatever sys.stdout is at send time
        self._lock = threading.Lock()  # one whole line per message, even from many threads
        self._printed: deque[tuple[str, ProviderMessage]] = deque(maxlen=10_000)

    def send(self, sms: OutgoingSms) -> ProviderReceipt:
        receipt = ProviderReceipt(provider_message_id=f"CONSOLE-{uuid.uuid4().hex}", status="sent")
        info = analyze(sms.body)
        media = f" media={sms.media_url}" if sms.media_url else ""
        body = sms.body.replace("\r", "\\r").replace("\n", "\\n")
        line = (
            f"SMS to {mask(sms.to)} [{info.encoding}, {info.segments} segment"
            f"{'' if info.segments == 1 else 's'}] {sms.message_key}{media}: {body}\n"
        )
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line)
            stream.flush()
            self._printed.append((sms.to, ProviderMessage(provider_message_id=receipt.provider_message_id,
                                                          body=sms.body, status="sent", created_at=datetime.now(UTC))))
        return receipt

    def lookup(self, to: str, since: datetime) -> list[ProviderMessage]:
        with self._lock:
            return [message for number, message in reversed(self._printed)
                    if number == to and message.created_at is not None and message.created_at >= since]
