"""The customer the recorder puts through the journeys: obviously fake, and distinctive,
so the replay test can check that none of it ever reaches a recorded history."""

from __future__ import annotations

import base64
import json

CUSTOMER_ID = "replay-customer"
FIRST_NAME = "Zyxreplayname"
LAST_NAME = "Qwreplaysurname"
EMAIL = "replay-nobody@example.invalid"
PHONE = "+12015550187"  # 201-555-01xx: reserved for fiction
PII = (FIRST_NAME, LAST_NAME, EMAIL, PHONE, PHONE.removeprefix("+1"))


def readable(history: dict) -> str:
    """A history's JSON with every payload decoded: payload data is base64, so a plain
    search of the file would never find a name in it."""
    decoded: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and isinstance(node.get("metadata"), dict):
                decoded.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(history)
    return "\n".join([json.dumps(history), *decoded])
