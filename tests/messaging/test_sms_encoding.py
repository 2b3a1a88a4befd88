"""Encoding and segments, checked against Twilio's own calculator: a committed table of its
results, and the npm package itself run under Node over those texts and thousands of generated ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sms_calculator import calculate, generated_texts, package_version
from typer.testing import CliRunner

from cli.main import app
from messaging.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SmsInfo,
    analyze,
    graphemes,
    is_gsm7,
    non_gsm_characters,
)

ORACLE = Path(__file__).resolve().parents[1] / "fixtures" / "sms_segments.json"
CASES = json.loads(ORACLE.read_text(encoding="utf-8"))["cases"]


def _id(case: dict) -> str:
    text = case["text"]
    return f"{len(text)}:{text[:12].encode('unicode_escape').decode()}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_matches_twilio_calculator(case: dict) -> None:
    info = analyze(case["text"])
    assert (info.encoding, info.segments) == (case["encoding"], case["segments"])


def test_oracle_is_not_empty() -> None:
    assert len(CASES) >= 40


# Results of sms-segments-calculator 1.3.0 for edge cases the oracle file lacks:
# (text, encoding, numberOfCharacters, segments).
CALCULATOR = [
    ("€" * 80, "GSM-7", 160, 1),
    ("€" * 81, "GSM-7", 162, 2),
    ("\f" * 80, "GSM-7", 160, 1),
    ("a" * 159 + "€", "GSM-7", 161, 2),
    ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2),
    ("é" * 70 + "ç", "UCS-2", 71, 2),
    ("ç" + "\r\n" * 40, "UCS-2", 81, 2),
    ("ç" + "😀" * 34 + "a", "UCS-2", 36, 1),
    ("😀" * 33 + "a" + "😀" * 2, "UCS-2", 36, 2),
    ("👨‍👩‍👧" * 10, "UCS-2", 10, 2),
    ("❤️‍🔥" * 20, "UCS-2", 40, 2),  # fire does not glue after ZWJ in Unicode 10
    ("🏳️‍🌈" * 20, "UCS-2", 20, 2),
    ("a" + "\u0301" * 100, "UCS-2", 1, 2),  # one cluster longer than a part
    ("x" * 69 + "a" + "\u0301" * 100 + "b", "UCS-2", 71, 3),
    ("🇸🇪\u0301\u0301", "UCS-2", 2, 1),
    ("👍\u0301\u0301🏽", "UCS-2", 2, 1),
]


@pytest.mark.parametrize(("text", "encoding", "characters", "segments"), CALCULATOR)
def test_edge_cases_match_calculator(text: str, encoding: str, characters: int, segments: int) -> None:
    assert analyze(text) == SmsInfo(encoding, characters, segments)  # type: ignore[arg-type]


def test_the_tables_are_what_the_package_says() -> None:
    assert package_version() == "1.3.0"  # the version the tables above were computed with
    oracle = [(c["text"], c["encoding"], c["segments"]) for c in CASES]
    assert [(t, r.encoding, r.segments) for (t, _, _), r in zip(oracle, calculate([t for t, _, _ in oracle]),
                                                                strict=True)] == oracle
    edges = [(t, SmsInfo(e, c, s)) for t, e, c, s in CALCULATOR]
    assert list(zip([t for t, _ in edges], calculate([t for t, _ in edges]), strict=True)) == edges


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_texts_match_the_package(seed: int) -> None:
    texts = generated_texts(seed, 2500)
    expected = calculate(texts)
    wrong = [(text, ours, theirs) for text, theirs in zip(texts, expected, strict=True)
             if (ours := analyze(text)) != theirs]
    assert wrong == [], "\n".join(f"{t!r}: ours {o}, calculator {c}" for t, o, c in wrong[:10])
    # The generator reaches what matters: in both encodings, one to several parts and a
    # text that exactly fills a single segment.
    for encoding, single in (("GSM-7", 160), ("UCS-2", 70)):
        found = [e for e in expected if e.encoding == encoding]
        assert {1, 2, 3, 4} <= {e.segments for e in found}
        assert any(e.characters == single for e in found)


def test_characters_count_septets_in_gsm7() -> None:
    assert analyze("Save 20€ {now}") == SmsInfo("GSM-7", 17, 1)
    assert analyze("").characters == 0


def test_characters_count_clusters_in_ucs2() -> None:
    assert analyze("Hej 👍🏽🇸🇪").characters == 6
    assert graphemes("👍🏽🇸🇪🇸") == ["👍🏽", "🇸🇪", "🇸"]


def test_gsm7_tables() -> None:
    assert len(GSM7_BASIC) == 127 and len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert is_gsm7("Ünïcode? no") is False
    assert is_gsm7("Tack för ditt köp! Ç") is True


# Look-alikes of GSM-7 characters that word processors slip in.
EN_DASH, QUOTE = "\u2013", "\u2019"


def test_non_gsm_characters_are_listed_once_in_order() -> None:
    text = f"Hej {EN_DASH} tak {QUOTE} {EN_DASH} 🎉 ok"
    assert non_gsm_characters(text) == [EN_DASH, QUOTE, "🎉"]
    assert non_gsm_characters("plain") == []


runner = CliRunner()


def test_cli_json_output_is_exact() -> None:
    result = runner.invoke(app, ["sms-info", "--json", "Hi Ana, we miss you! Reply STOP to opt out"])
    assert result.exit_code == 0, result.output
    assert result.output == '{"encoding": "GSM-7", "characters": 42, "segments": 1}\n'


def test_cli_json_ucs2() -> None:
    result = runner.invoke(app, ["sms-info", f"Hej Mette {EN_DASH} tak for dit køb 🎉", "--json"])
    assert json.loads(result.output) == {"encoding": "UCS-2", "characters": 29, "segments": 1}


def test_cli_names_the_characters_that_force_ucs2() -> None:
    result = runner.invoke(app, ["sms-info", f"It{QUOTE}s here {EN_DASH} [ok]"])
    assert result.exit_code == 0, result.output
    assert "UCS-2" in result.output
    assert "RIGHT SINGLE QUOTATION MARK" in result.output and "EN DASH" in result.output


def test_cli_plain_gsm7() -> None:
    result = runner.invoke(app, ["sms-info", "a" * 161])
    assert result.exit_code == 0
    assert "GSM-7" in result.output and "segments:   2" in result.output
    assert "because of" not in result.output
