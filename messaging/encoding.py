"""How an SMS body is encoded and into how many segments it is split.

The counts follow Twilio's own segment calculator (npm `sms-segments-calculator`
1.3.0, a devDependency that the tests run against this module), because segments
are what Twilio bills and what carriers throttle. Pure Python and free of I/O: the
journey validator imports it too.

- GSM-7 when every character is in the GSM 03.38 basic or extension table; the
  extension characters (`^ { } \\ [ ~ ] | €` and form feed) cost two septets.
  Anything else makes the whole message UCS-2 (UTF-16 code units).
- One segment holds 160 septets / 70 code units. A longer message is split into
  parts of 153 / 67, because each part carries a 6-octet concatenation header.
  Parts are filled character by character and a character never straddles two
  parts: an escape pair, a surrogate pair or a whole grapheme cluster (an emoji
  with its skin tone, a flag, a letter with its combining accent) moves to the
  next part instead, so the count can exceed `ceil(length / 153)`.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet, one septet each (0x1B is the escape, not a character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: escape + one septet, so two septets each.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# Capacity of one segment: (alone, as one part of a multipart message).
SEGMENT_CAPACITY: dict[Encoding, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True)
class SmsInfo:
    encoding: Encoding
    characters: int
    segments: int


def analyze(text: str) -> SmsInfo:
    """Encoding, character count and segment count of an SMS body.

    `characters` means what the calculator's `numberOfCharacters` means: for
    GSM-7 the number of septets (an extension character counts 2); for UCS-2 the
    number of user-perceived characters (grapheme clusters, so "👍🏽" and "🇸🇪"
    count 1 each, while CR LF counts 2).
    """
    if is_gsm7(text):
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return SmsInfo("GSM-7", sum(sizes), _count_segments(sizes, *SEGMENT_CAPACITY["GSM-7"]))
    clusters = graphemes(text)
    sizes = [_utf16_units(cluster) for cluster in clusters]
    return SmsInfo("UCS-2", len(clusters), _count_segments(sizes, *SEGMENT_CAPACITY["UCS-2"]))


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def non_gsm_characters(text: str) -> list[str]:
    """The characters that force UCS-2, each once, in order of appearance."""
    seen: dict[str, None] = {}
    for cluster in graphemes(text):
        if not is_gsm7(cluster):
            seen.setdefault(cluster, None)
    return list(seen)


def _utf16_units(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _count_segments(sizes: list[int], single: int, part: int) -> int:
    """Fill segments the way the calculator does, and count them.

    When the message turns multipart, the first segment gets its header late and
    pushes its tail into the second one; a character never splits.
    """
    used = [0]
    first: list[int] = []  # sizes in the first segment, which may still lose its tail
    capacity = single
    for size in sizes:
        if capacity - used[-1] < size:
            carried = 0
            if len(used) == 1:
                capacity = part
                while used[0] > part:
                    moved = first.pop()
                    used[0] -= moved
                    carried += moved
            used.append(carried)
        used[-1] += size
        if len(used) == 1:
            first.append(size)
    return len(used)


# Grapheme clusters -------------------------------------------------------------
# UAX #29 extended grapheme clusters as Unicode 10 defines them, because that is
# what the calculator uses (grapheme-splitter 1.0.4): a skin tone joins only an
# emoji that takes one, and only the listed emoji glue after a zero-width joiner.
# Extend and SpacingMark come from `unicodedata` (newer Unicode), so marks that
# minor scripts gained after Unicode 10 join their letter here but not there; the
# other properties are the calculator's own tables, below.


class _Gcb(IntEnum):
    OTHER = 0
    CR = 1
    LF = 2
    CONTROL = 3
    EXTEND = 4
    ZWJ = 5
    REGIONAL_INDICATOR = 6
    PREPEND = 7
    SPACING_MARK = 8
    L = 9
    V = 10
    T = 11
    LV = 12
    LVT = 13
    E_BASE = 14
    E_MODIFIER = 15
    GLUE_AFTER_ZWJ = 16
    E_BASE_GAZ = 17


_RANGES: dict[_Gcb, tuple[tuple[int, int], ...]] = {
    _Gcb.CONTROL: (
        (0x0, 0x9), (0xB, 0xC), (0xE, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x61C, 0x61C),
        (0x180E, 0x180E), (0x200B, 0x200B), (0x200E, 0x200F), (0x2028, 0x202E),
        (0x2060, 0x206F), (0xD800, 0xDFFF), (0xFEFF, 0xFEFF), (0xFFF0, 0xFFFB),
        (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE001F), (0xE0080, 0xE00FF),
        (0xE01F0, 0xE0FFF),
    ),
    _Gcb.CR: ((0xD, 0xD),),
    _Gcb.LF: ((0xA, 0xA),),
    _Gcb.ZWJ: ((0x200D, 0x200D),),
    _Gcb.REGIONAL_INDICATOR: ((0x1F1E6, 0x1F1FF),),
    _Gcb.PREPEND: (
        (0x600, 0x605), (0x6DD, 0x6DD), (0x70F, 0x70F), (0x8E2, 0x8E2), (0xD4E, 0xD4E),
        (0x110BD, 0x110BD), (0x111C2, 0x111C3), (0x11A3A, 0x11A3A), (0x11A86, 0x11A89),
        (0x11D46, 0x11D46),
    ),
    _Gcb.L: ((0x1100, 0x115F), (0xA960, 0xA97C)),
    _Gcb.V: ((0x1160, 0x11A7), (0xD7B0, 0xD7C6)),
    _Gcb.T: ((0x11A8, 0x11FF), (0xD7CB, 0xD7FB)),
    _Gcb.E_BASE: (
        (0x261D, 0x261D), (0x26F9, 0x26F9), (0x270A, 0x270D), (0x1F385, 0x1F385),
        (0x1F3C2, 0x1F3C4), (0x1F3C7, 0x1F3C7), (0x1F3CA, 0x1F3CC), (0x1F442, 0x1F443),
        (0x1F446, 0x1F450), (0x1F46E, 0x1F46E), (0x1F470, 0x1F478), (0x1F47C, 0x1F47C),
        (0x1F481, 0x1F483), (0x1F485, 0x1F487), (0x1F4AA, 0x1F4AA), (0x1F574, 0x1F575),
        (0x1F57A, 0x1F57A), (0x1F590, 0x1F590), (0x1F595, 0x1F596), (0x1F645, 0x1F647),
        (0x1F64B, 0x1F64F), (0x1F6A3, 0x1F6A3), (0x1F6B4, 0x1F6B6), (0x1F6C0, 0x1F6C0),
        (0x1F6CC, 0x1F6CC), (0x1F918, 0x1F91C), (0x1F91E, 0x1F91F), (0x1F926, 0x1F926),
        (0x1F930, 0x1F939), (0x1F93D, 0x1F93E), (0x1F9D1, 0x1F9DD),
    ),
    _Gcb.E_MODIFIER: ((0x1F3FB, 0x1F3FF),),
    _Gcb.GLUE_AFTER_ZWJ: (
        (0x2640, 0x2640), (0x2642, 0x2642), (0x2695, 0x2696), (0x2708, 0x2708),
        (0x2764, 0x2764), (0x1F308, 0x1F308), (0x1F33E, 0x1F33E), (0x1F373, 0x1F373),
        (0x1F393, 0x1F393), (0x1F3A4, 0x1F3A4), (0x1F3A8, 0x1F3A8), (0x1F3EB, 0x1F3EB),
        (0x1F3ED, 0x1F3ED), (0x1F48B, 0x1F48B), (0x1F4BB, 0x1F4BC), (0x1F527, 0x1F527),
        (0x1F52C, 0x1F52C), (0x1F5E8, 0x1F5E8), (0x1F680, 0x1F680), (0x1F692, 0x1F692),
    ),
    _Gcb.E_BASE_GAZ: ((0x1F466, 0x1F469),),
}
_TABLE = sorted((lo, hi, prop) for prop, ranges in _RANGES.items() for lo, hi in ranges)
_STARTS = [lo for lo, _, _ in _TABLE]

# Grapheme_Extend characters that are not Mn/Me (Other_Grapheme_Extend, Unicode 10).
_OTHER_EXTEND = frozenset(
    [
        0x9BE, 0x9D7, 0xB3E, 0xB57, 0xBBE, 0xBD7, 0xCC2, 0xCD5, 0xCD6, 0xD3E, 0xD57, 0xDCF,
        0xDDF, 0x200C, 0x302E, 0x302F, 0xFF9E, 0xFF9F, 0x1133E, 0x11357, 0x114B0, 0x114BD,
        0x115AF, 0x1D165, *range(0x1D16E, 0x1D173), *range(0xE0020, 0xE0080),
    ]
)
# Spacing marks that UAX #29 leaves out of SpacingMark (Myanmar, Tai Tham, ...).
_NOT_SPACING_MARK = frozenset(
    [
        0x102B, 0x102C, 0x1038, 0x1062, 0x1063, 0x1064, *range(0x1067, 0x106E), 0x1083,
        *range(0x1087, 0x108D), 0x108F, 0x109A, 0x109B, 0x109C, 0x1A61, 0x1A63, 0x1A64,
        0xAA7B, 0xAA7D,
    ]
)


def _property(cp: int) -> _Gcb:
    i = bisect_right(_STARTS, cp) - 1
    if i >= 0 and cp <= _TABLE[i][1]:
        return _TABLE[i][2]
    if 0xAC00 <= cp <= 0xD7A3:  # Hangul syllables: LV every 28th, LVT otherwise
        return _Gcb.LV if (cp - 0xAC00) % 28 == 0 else _Gcb.LVT
    category = unicodedata.category(chr(cp))
    if category in ("Mn", "Me") or cp in _OTHER_EXTEND:
        return _Gcb.EXTEND
    if (category == "Mc" and cp not in _NOT_SPACING_MARK) or cp in (0xE33, 0xEB3):
        return _Gcb.SPACING_MARK
    return _Gcb.OTHER


def graphemes(text: str) -> list[str]:
    """Split text into user-perceived characters, as the calculator does."""
    props = [_property(ord(ch)) for ch in text]
    clusters: list[str] = []
    start = 0
    for i in range(1, len(text)):
        if _breaks(props, start, i):
            clusters.append(text[start:i])
            start = i
    if text:
        clusters.append(text[start:])
    return clusters


def _breaks(props: list[_Gcb], start: int, i: int) -> bool:
    """Whether a cluster that began at `start` ends before position `i`."""
    prev, nxt = props[i - 1], props[i]
    bases = (_Gcb.E_BASE, _Gcb.E_BASE_GAZ)
    # grapheme-splitter closes a flag after one trailing mark; mirrored to match.
    ri = _Gcb.REGIONAL_INDICATOR
    if i - start >= 2 and props[start + 1] == ri and prev != ri:
        return True
    controls = (_Gcb.CR, _Gcb.LF, _Gcb.CONTROL)
    if prev in controls or nxt in controls:  # GB4, GB5; the calculator splits CR LF too
        return True
    if prev == _Gcb.L and nxt in (_Gcb.L, _Gcb.V, _Gcb.LV, _Gcb.LVT):  # GB6
        return False
    if prev in (_Gcb.LV, _Gcb.V) and nxt in (_Gcb.V, _Gcb.T):  # GB7
        return False
    if prev in (_Gcb.LVT, _Gcb.T) and nxt == _Gcb.T:  # GB8
        return False
    if nxt in (_Gcb.EXTEND, _Gcb.ZWJ, _Gcb.SPACING_MARK) or prev == _Gcb.PREPEND:  # GB9-9b
        return False
    if nxt == _Gcb.E_MODIFIER:  # GB10, as grapheme-splitter applies it
        cluster = props[start:i]
        if _Gcb.EXTEND in cluster:
            return not (prev == _Gcb.EXTEND and i - 2 >= start and props[i - 2] in bases)
        return prev not in bases
    if prev == _Gcb.ZWJ and nxt in (_Gcb.GLUE_AFTER_ZWJ, _Gcb.E_BASE_GAZ):  # GB11
        return False
    # GB12/13: flags pair up two regional indicators at a time
    return not (prev == nxt == _Gcb.REGIONAL_INDICATOR and i - 1 == start)
