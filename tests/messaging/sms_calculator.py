"""Twilio's segment calculator (npm `sms-segments-calculator`, from package.json) run under
Node, and texts generated to compare it with `messaging.encoding.analyze`.

    from sms_calculator import calculate     # with tests/messaging on sys.path
    calculate(["Hi", "😀"])                   # [SmsInfo("GSM-7", 2, 1), SmsInfo("UCS-2", 1, 1)]

Like Prism, the package is required: when Node or the package is missing the tests
fail rather than skip.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

from messaging.encoding import GSM7_BASIC, GSM7_EXTENSION, SmsInfo

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "node_modules" / "sms-segments-calculator"
SCRIPT = Path(__file__).with_name("sms_segments.cjs")


def calculate(texts: list[str]) -> list[SmsInfo]:
    """What the calculator says of each text: encoding, numberOfCharacters, segmentsCount."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node is not on PATH: the segment calculator runs under Node", pytrace=False)
    if not (PACKAGE / "package.json").exists():
        pytest.fail(f"sms-segments-calculator is not installed ({PACKAGE} is missing): run `npm ci` in {REPO}",
                    pytrace=False)
    done = subprocess.run([node, str(SCRIPT)], input=json.dumps(texts), capture_output=True, text=True,
                          encoding="utf-8", cwd=REPO, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"{SCRIPT.name} exited with code {done.returncode}:\n{done.stderr[-4000:]}", pytrace=False)
    results = json.loads(done.stdout)
    assert len(results) == len(texts)
    return [SmsInfo(r["encoding"], r["characters"], r["segments"]) for r in results]


def package_version() -> str:
    return json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))["version"]


# Pieces of generated texts. The emoji include ones newer than Unicode 10 (🫶, 🦰), whose
# properties the calculator's tables do not know, to check that ours mirror them.
BASIC = sorted(GSM7_BASIC)
EXTENSION = sorted(GSM7_EXTENSION)
ACCENTED = list("áíóúâêîôûãõçñłőűšžčřęąśźżğışÁÍÓÚ€\u2013\u2019\u201c\u201d\u2026")
COMBINING = ["\u0301", "\u0308", "\u0323", "\u20dd", "\u200c", "\ufe0f", "\u200d"]
EMOJI = ["😀", "👍", "❤", "☺", "✌", "🎉", "🫶", "🇸", "🇪", "🏽", "🏻", "👨", "👩", "👧", "🔥", "🌈",
         "🏳", "💻", "♀", "⚕", "🧑", "🦰"]
SEQUENCES = ["👨‍👩‍👧", "❤️‍🔥", "🏳️‍🌈", "👩‍💻", "👍🏽", "🇸🇪", "🇩🇰", "🏃‍♀️", "🧑🏽‍⚕️", "👩🏻‍🦰", "🫶🏼",
             "🏴󠁧󠁢󠁳󠁣󠁴󠁿"]
OTHER = ["\r\n", "\r", "\n", "\t", "\u00a0", "각", "ᄀ", "ᅡ", "ᆨ", "क", "ि", "ं", "ก", "ำ", "\u0600",
         "ﷺ", "\U0001d11e"]
POOLS = [
    [BASIC],
    [BASIC, BASIC, EXTENSION],
    [BASIC, ACCENTED, COMBINING],
    [BASIC, EMOJI, SEQUENCES],
    [BASIC, EXTENSION, ACCENTED, COMBINING, EMOJI, SEQUENCES, OTHER],
    [EMOJI, COMBINING, SEQUENCES, OTHER, EXTENSION],
    [BASIC, OTHER, "random"],
]


def generated_texts(seed: int, count: int) -> list[str]:
    """Texts of every kind, most of them near a segment boundary (70/67, 160/153 and multiples)."""
    rng = random.Random(seed)
    return [_text(rng) for _ in range(count)]


def _text(rng: random.Random) -> str:
    mode = rng.randrange(len(POOLS))
    target = rng.choice([rng.randrange(0, 20), rng.randrange(60, 80), rng.randrange(125, 170),
                         rng.randrange(290, 480)])
    pieces: list[str] = []
    length = 0
    while length < target:
        pool = rng.choice(POOLS[mode])
        piece = _random_character(rng) if pool == "random" else rng.choice(pool)
        pieces.append(piece)
        length += len(piece)
    if mode < 2 and rng.random() < 0.3:  # a GSM-7 text with one stray character
        pieces.insert(rng.randrange(len(pieces) + 1), rng.choice(ACCENTED + EMOJI))
    return "".join(pieces)


def _random_character(rng: random.Random) -> str:
    """Any code point whose general category is the same in Unicode 3.2 and in Python's
    Unicode. The calculator splits graphemes with grapheme-splitter 1.0.4, frozen at
    Unicode 10, while `analyze` takes Extend and SpacingMark from `unicodedata`: marks
    assigned or recategorised after Unicode 10 (U+1AC0.., U+08CA.., Znamenny, U+1CF2)
    join their letter in one and not in the other. Which one Twilio's platform follows
    is not documented, so that class is left out: Unicode 3.2 is the only older table
    Python has, and no character sampled this way has been classed differently."""
    while True:
        high = 0x30000 if rng.random() < 0.5 else 0x3000
        char = chr(rng.randrange(0x20, high))
        category = unicodedata.category(char)
        if category not in ("Cs", "Cn") and unicodedata.ucd_3_2_0.category(char) == category:
            return char
