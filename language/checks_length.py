"""Warn about message texts that may need more than two SMS segments once personalised.

Placeholders are replaced by typical values: a tracked link is as long as the real
short links, a first name about 12 characters, anything else about 10.
"""

from __future__ import annotations

import re

from messaging.encoding import analyze

MAX_SEGMENTS = 2
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_TAG = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)
LINK_CODE_LENGTH = 7


def representative(text: str, links_base_url: str) -> str:
    """``text`` with each placeholder replaced by a value of typical length."""
    link = links_base_url.rstrip("/") + "/l/" + "x" * LINK_CODE_LENGTH

    def typical(match: re.Match[str]) -> str:
        inner = match.group(0)
        if "link(" in inner:
            return link
        if "coupon(" in inner:
            return "x" * 10
        if "customer.first_name" in inner:
            return "x" * 12
        return "x" * 10

    return _PLACEHOLDER.sub(typical, _TAG.sub("", text))


def length_warning(text: str, links_base_url: str) -> str | None:
    """A warning when ``text`` may exceed two segments, else None."""
    info = analyze(representative(text, links_base_url))
    if info.segments <= MAX_SEGMENTS:
        return None
    return (
        f"this text may need {info.segments} SMS segments ({info.encoding}, about "
        f"{info.characters} characters with typical values); keep it to {MAX_SEGMENTS} "
        "or fewer"
    )
