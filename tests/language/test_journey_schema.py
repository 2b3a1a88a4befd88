from __future__ import annotations

import json
from pathlib import Path

import pytest

from language.loader import load_file
from language.schema import schema_for

jsonschema = pytest.importorskip("jsonschema")
SPEC_DIR = Path(__file__).parent / "fixtures" / "spec"


def validator(kind: str = "journey"):
    schema = schema_for(kind)  # type: ignore[arg-type]
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_schema_accepts_the_spec_example_journey() -> None:
    data = load_file(SPEC_DIR / "winback.yaml").data
    assert list(validator().iter_errors(data)) == []


@pytest.mark.parametrize("kind", ["settings", "segments", "loyalty"])
def test_the_schema_accepts_the_spec_config_files(kind: str) -> None:
    data = load_file(SPEC_DIR / f"{kind}.yaml").data
    assert list(validator(kind).iter_errors(data)) == []


def test_the_schema_rejects_unknown_keys() -> None:
    data = load_file(SPEC_DIR / "winback.yaml").data
    data["audiance"] = data.pop("audience")
    errors = list(validator().iter_errors(data))
    assert any("'audiance' was unexpected" in e.message for e in errors)

    data = load_file(SPEC_DIR / "winback.yaml").data
    data["steps"][0]["send_sms"]["txt"] = "typo"
    assert list(validator().iter_errors(data)) != []


def test_the_schema_does_not_offer_internal_fields_and_describes_keys() -> None:
    schema = schema_for("journey")
    text = json.dumps(schema)
    assert '"texts"' not in text
    assert schema["title"] == "Loyalty SMS journey"
    assert schema["$schema"].endswith("2020-12/schema")
    properties = schema["properties"]
    assert properties["trigger"]["description"].startswith("Exactly one trigger")
    steps = schema["$defs"]
    assert steps["SendSmsStep"]["properties"]["send_sms"]["description"]
    assert steps["AskSpec"]["properties"]["text"]["description"].startswith("The message text")
    assert steps["IfStep"]["properties"]["then"]["description"]
    # Messages written with a texts key are rejected: it is for the loader only.
    data = load_file(SPEC_DIR / "winback.yaml").data
    data["steps"][0]["send_sms"]["texts"] = {"en": "x"}
    assert list(validator().iter_errors(data)) != []
