"""`journeys validate`, `journeys schema` and `journeys graph` through the real Typer app."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

SPEC_DIR = Path(__file__).parent / "fixtures" / "spec"
runner = CliRunner()
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<severity>error|warning): ")


@pytest.fixture
def valid_dir(journeys_dir: Path) -> Path:
    shutil.copy(SPEC_DIR / "winback.yaml", journeys_dir / "winback.yaml")
    return journeys_dir


def test_validate_a_valid_directory_exits_0(valid_dir: Path) -> None:
    result = runner.invoke(app, ["validate", str(valid_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "1 journeys valid, 0 errors, 0 warnings"


def test_validate_prints_each_problem_greppably_and_exits_1(valid_dir: Path) -> None:
    (valid_dir / "bad.yaml").write_text(
        "id: bad\nname: Bad\ntrigger: {event: purchase}\nsteps:\n  - sendsms: {text: hi}\n"
    )
    result = runner.invoke(app, ["validate", str(valid_dir)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == (
        f"{valid_dir / 'bad.yaml'}:5:5: error: unknown step 'sendsms' (did you mean 'send_sms'?) (got: sendsms)"
    )
    assert all(LINE.match(line) for line in lines[:-1])
    assert lines[-1] == "1 journeys valid, 1 errors, 0 warnings"


def test_validate_one_file_uses_its_directory_as_config(valid_dir: Path) -> None:
    result = runner.invoke(app, ["validate", str(valid_dir / "winback.yaml")])
    assert result.exit_code == 0, result.output
    # Elsewhere, the segments and coupon series it names do not exist.
    elsewhere = valid_dir / "drafts"
    elsewhere.mkdir()
    shutil.copy(valid_dir / "winback.yaml", elsewhere / "winback.yaml")
    result = runner.invoke(app, ["validate", str(elsewhere / "winback.yaml")])
    assert result.exit_code == 1
    assert "unknown segment 'lapsed_30d'" in result.output
    result = runner.invoke(app, ["validate", "--config", str(valid_dir), str(elsewhere / "winback.yaml")])
    assert result.exit_code == 0, result.output


def test_warnings_alone_exit_0(valid_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_MESSAGING_SERVICE_SID")
    result = runner.invoke(app, ["validate", str(valid_dir)])
    assert result.exit_code == 0
    assert ": warning: environment variable TWILIO_MESSAGING_SERVICE_SID is not set" in (result.output)
    assert result.output.strip().endswith("1 journeys valid, 0 errors, 1 warnings")


def test_validate_json(valid_dir: Path) -> None:
    (valid_dir / "bad.yaml").write_text("id: bad\nname: [unclosed\n")
    result = runner.invoke(app, ["validate", "--json", str(valid_dir)])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["journeys_valid"] == ["winback"]
    assert payload["errors"] == 1 and payload["warnings"] == 0
    [problem] = payload["problems"]
    assert problem["file"] == str(valid_dir / "bad.yaml")
    assert (problem["line"], problem["severity"]) == (3, "error")
    assert problem["message"].startswith("YAML syntax:")


def test_validate_defaults_to_journeys_dir(valid_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = valid_dir.parent / "project"
    shutil.copytree(valid_dir, project / "journeys")
    monkeypatch.chdir(project)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "1 journeys valid" in result.output


def test_schema_to_stdout_and_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "Loyalty SMS journey"
    target = tmp_path / "schemas" / "settings.json"
    result = runner.invoke(app, ["schema", "--kind", "settings", "--output", str(target)])
    assert result.exit_code == 0
    assert json.loads(target.read_text())["title"] == "Journeys settings.yaml"
    assert runner.invoke(app, ["schema", "--kind", "nope"]).exit_code == 2


def test_schema_help_explains_the_vs_code_setup() -> None:
    result = runner.invoke(app, ["schema", "--help"])
    assert "yaml-language-server: $schema=" in result.output


def test_graph_prints_mermaid(valid_dir: Path) -> None:
    result = runner.invoke(app, ["graph", str(valid_dir / "winback.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("flowchart TD\n")
    assert '-->|"pct20 (weight 45)"|' in result.output


def test_graph_of_an_invalid_journey_exits_1(valid_dir: Path) -> None:
    (valid_dir / "bad.yaml").write_text("id: bad\nname: Bad\ntrigger: {event: purchase}\nsteps:\n  - wait: 3x\n")
    result = runner.invoke(app, ["graph", str(valid_dir / "bad.yaml")])
    assert result.exit_code == 1
    assert "bad.yaml:5:11: error:" in result.output
