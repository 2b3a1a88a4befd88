"""Every example of the language reference (docs/language.md) validates, and a valid directory
becomes a catalog."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from language.loader import load_file
from language.models import STEP_TYPES, TRIGGER_KEYS
from language.validate import InvalidJourneys, load_catalog, validate_directory
from language.walk import iter_steps

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "language.md"
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


def _doc_blocks() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, f"no yaml examples in {DOC}"
    return blocks


def test_every_yaml_example_in_the_language_reference_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block whose first line is `# journeys/<file>` is that file; `# steps` and `# trigger`
    blocks are fragments, each checked in a journey of its own against those files."""
    monkeypatch.setenv("TWILIO_MESSAGING_SERVICE_SID", "MG123")
    files: dict[str, str] = {}
    fragments: list[str] = []
    for block in _doc_blocks():
        first = block.splitlines()[0]
        if named := re.fullmatch(r"# journeys/(\S+)", first):
            assert named[1] not in files, f"two examples of {named[1]}"
            files[named[1]] = block
        elif first.startswith(("# steps", "# trigger")):
            fragments.append(block)
        else:
            pytest.fail(f"a yaml example in {DOC.name} names neither a file nor a fragment: {first!r}")
    assert {"winback.yaml", "settings.yaml", "segments.yaml", "loyalty.yaml"} <= set(files)
    for name, block in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(block, encoding="utf-8")
    for i, block in enumerate(fragments):
        head = f"id: example_{i}\nname: Example {i}\n"
        if block.startswith("# trigger"):
            body = head + block + "steps:\n  - wait: 1d\n"
        else:
            body = head + "trigger: {manual: true}\nsteps:\n" + _indent(block, 2)
        (tmp_path / f"example_{i}.yaml").write_text(body, encoding="utf-8")

    report = validate_directory(tmp_path)
    assert report.problems == [], "\n".join(map(str, report.problems))
    journeys = {"winback", *(f"example_{i}" for i in range(len(fragments)))}
    assert set(report.catalog.journeys) == journeys
    # Between them the examples show every step type and every trigger type.
    data = [load_file(tmp_path / f"{name}.yaml").data for name in journeys]
    assert {at.kind for d in data for at in iter_steps(d)} == set(STEP_TYPES)
    assert {key for d in data for key in d["trigger"]} & set(TRIGGER_KEYS) == set(TRIGGER_KEYS)


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
