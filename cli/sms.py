"""`journeys sms-info`: how a text will be encoded and billed, before it goes into a journey."""

from __future__ import annotations

import json
import unicodedata
from typing import Annotated

import typer

from cli import output
from messaging.encoding import SEGMENT_CAPACITY, analyze, non_gsm_characters


def register(app: typer.Typer) -> None:
    app.command("sms-info")(sms_info)


def sms_info(
    text: Annotated[str, typer.Argument(help="The SMS text, as the customer will receive it")],
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"encoding", "characters", "segments"} only')
    ] = False,
) -> None:
    """Show the encoding (GSM-7 or UCS-2), character count and segment count of a text."""
    info = analyze(text)
    if as_json:
        print(json.dumps({"encoding": info.encoding, "characters": info.characters,
                          "segments": info.segments}))
        return
    console = output.console()
    single, part = SEGMENT_CAPACITY[info.encoding]
    console.print(f"encoding:   {info.encoding}", markup=False)
    console.print(f"characters: {info.characters}", markup=False)
    console.print(f"segments:   {info.segments} (up to {single} in one, {part} per part)", markup=False)
    if info.encoding == "UCS-2":
        # Marketers can usually swap these for plain equivalents and get 160 per segment back.
        forced = ", ".join(_describe(ch) for ch in non_gsm_characters(text))
        console.print(f"UCS-2 because of: {forced}", markup=False)
    if info.segments > 2:
        console.print(f"note: each of the {info.segments} segments is billed and throttled"
                      " as one SMS", markup=False)


def _describe(cluster: str) -> str:
    """The character and its Unicode name: look-alikes and invisible ones become plain."""
    names = [unicodedata.name(ch, f"U+{ord(ch):04X}") for ch in cluster]
    shown = cluster if cluster.isprintable() else ""
    return f"{shown} ({' + '.join(names)})".strip()
