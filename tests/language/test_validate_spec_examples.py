"""Every example of the language spec validates, and a valid directory becomes a catalog."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from language.loader import load_file
from language.models import STEP_TYPES
from language.validate import InvalidJourneys, load_catalog, validate_directory
from language.walk import iter_steps

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "spec" / "journey-language.md"
SPEC_DIR = Path(__file__).parent / "fixtures" / "spec"


def test_the_spec_fixture_is_valid_and_uses_every_step_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWILIO_MESSAGING_SERVICE_SID", "MG123")
    report = validate_directory(SPEC_DIR)
    assert report.problems == []
    assert list(report.catalog.journeys) == ["winback"]
    kinds = {at.kind for at in iter_steps(load_file(SPEC_DIR / "winback.yaml").data)}
    assert kinds == set(STEP_TYPES)
    assert report.catalog.settings.brand == "Nordic Shoes"
    assert report.catalog.settings.sender.messaging_service_sid == "MG123"
    assert report.catalog.segments.segments["active"].manual is True
    assert set(report.catalog.loyalty.coupons) == {"WELCOME10", "WINBACK20"}


def test_a_template_is_inlined_so_the_pinned_version_covers_its_text(
    journeys_dir: Path,
) -> None:
    shutil.copy(SPEC_DIR / "winback.yaml", journeys_dir / "winback.yaml")
    first = validate_directory(journeys_dir).catalog.journeys["winback"]
    message = first.journey.steps[1].send_sms
    assert message.template == "winback_survey"
    assert message.texts is not None and set(message.texts) == {"en", "es"}
    assert message.texts["en"].startswith("Hi {{ customer.first_name")

    template = journeys_dir / "templates" / "winback_survey.yaml"
    template.write_text(template.read_text().replace("2 quick questions?", "3 questions?"))
    second = validate_directory(journeys_dir).catalog.journeys["winback"]
    assert second.version != first.version
    assert "3 questions?" in second.journey.steps[1].send_sms.texts["en"]


def test_an_unset_environment_variable_is_a_warning_not_an_error(
    journeys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWILIO_MESSAGING_SERVICE_SID")
    report = validate_directory(journeys_dir)
    assert report.errors == []
    [warning] = report.warnings
    assert (warning.file, warning.line, warning.column) == (
        str(journeys_dir / "settings.yaml"), 2, 34,
    )  # fmt: skip
    assert warning.message == "environment variable TWILIO_MESSAGING_SERVICE_SID is not set"
    assert report.catalog.settings.sender.messaging_service_sid is None


def test_missing_configuration_files_mean_defaults(tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(
        "id: hello\nname: Hello\ntrigger: {manual: true}\n"
        "steps:\n  - id: hi\n    send_sms: {text: 'Hi from {{ brand }}'}\n"
    )
    report = validate_directory(tmp_path)
    assert report.problems == []
    assert report.catalog.settings.default_timezone == "UTC"
    assert list(report.catalog.journeys) == ["hello"]


def _spec_blocks() -> list[str]:
    if not SPEC.is_file():
        pytest.skip(f"the language spec is not at {SPEC}")
    return re.findall(r"```yaml\n(.*?)```", SPEC.read_text(), re.DOTALL)


def test_every_yaml_example_in_the_spec_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_MESSAGING_SERVICE_SID", "MG123")
    blocks = _spec_blocks()
    journey = next(b for b in blocks if b.startswith("id: "))
    steps = next(b for b in blocks if b.startswith("- id: survey"))
    settings = next(b for b in blocks if b.startswith("brand: "))
    segments = next(b for b in blocks if "segments:" in b and "refresh:" in b)
    loyalty = next(b for b in blocks if "tiers:" in b and "coupons:" in b)
    # The spec writes nested lists as "[ ... ]": fill them with a step, and put the
    # step examples in the journey's own steps.
    steps = steps.replace("[ ... ]", "[{wait: 1d}]")
    body = journey.replace("steps: [ ... ]", "steps:\n" + _indent(steps, 2))
    (tmp_path / "winback.yaml").write_text(body)
    (tmp_path / "settings.yaml").write_text(settings)
    # The step examples remove customers from `lapsed`; the spec's segments.yaml example
    # does not define it, and update_segments may only name manual segments.
    (tmp_path / "segments.yaml").write_text(segments + "  lapsed: {manual: true}\n")
    (tmp_path / "loyalty.yaml").write_text(loyalty)

    report = validate_directory(tmp_path)
    assert report.problems == [], "\n".join(map(str, report.problems))
    assert list(report.catalog.journeys) == ["winback"]


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line.strip() else line for line in text.splitlines(keepends=True))


def test_the_shipped_journeys_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = ROOT / "journeys"
    if not shipped.is_dir():
        pytest.skip("no journeys/ directory")
    monkeypatch.setenv("TWILIO_MESSAGING_SERVICE_SID", "MG123")
    report = validate_directory(shipped)
    assert report.errors == [], "\n".join(map(str, report.errors))


def test_load_catalog_refuses_a_directory_with_errors(journeys_dir: Path) -> None:
    shutil.copy(SPEC_DIR / "winback.yaml", journeys_dir / "winback.yaml")
    (journeys_dir / "broken.yaml").write_text("id: broken\nname: B\ntrigger: {manual: true}\nsteps:\n  - wait: 30x\n")
    report = validate_directory(journeys_dir)
    assert list(report.catalog.journeys) == ["winback"]  # the broken one is left out
    with pytest.raises(InvalidJourneys) as raised:
        load_catalog(journeys_dir)
    assert [str(p) for p in raised.value.problems] == [str(p) for p in report.errors]
    assert "broken.yaml:5:11: error:" in str(raised.value)

    (journeys_dir / "broken.yaml").unlink()
    assert list(load_catalog(journeys_dir).journeys) == ["winback"]
