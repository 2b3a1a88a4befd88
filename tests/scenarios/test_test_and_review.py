"""`journeys test` and `journeys review` through the real Typer app, on the time-skipping
server the commands start themselves, against copies of the shipped journeys."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

SHIPPED = Path(__file__).parents[2] / "journeys"
runner = CliRunner()

GOLD = ("Nordic Shoes: congrats Ria, you're now Gold! Enjoy free shipping on every order, early access to our "
        "Friday flash sales and a bigger birthday bonus: <link https://nordicshoes.example/rewards/gold>")
SCENARIO = f"""\
customer: {{id: ria, first_name: Ria, timezone: America/New_York}}
start: "2026-01-12T15:00:00Z"
trigger: {{type: tier_changed, properties: {{from: silver, to: gold}}}}
expect:
  outcome: completed
  texts:
    - step: gold_perks
      at: "2026-01-12 10:00"
      text: "{GOLD}"
"""


def copy_journeys(target: Path) -> Path:
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns("scenarios"))
    (target / "scenarios" / "tier_upgrade").mkdir(parents=True)
    (target / "scenarios" / "tier_upgrade" / "gold.yaml").write_text(SCENARIO)
    return target


def test_a_passing_then_a_failing_scenario(tmp_path: Path) -> None:
    journeys = copy_journeys(tmp_path / "journeys")
    result = runner.invoke(app, ["test", str(journeys)])
    assert result.exit_code == 0, result.output
    assert "PASS tier_upgrade/gold" in result.output
    assert "1 scenarios, 0 failed, 0 invalid" in result.output

    # The intent changes (a later text, other words): the scenario says what differs.
    journey = journeys / "tier_upgrade.yaml"
    journey.write_text(journey.read_text().replace("congrats {{", "congratulations {{"))
    result = runner.invoke(app, ["test", str(journeys), "--journey", "tier_upgrade"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("FAIL tier_upgrade/gold")
    assert f"  - 2026-01-12 10:00 gold_perks sms: {GOLD}" in lines
    assert ("  + 2026-01-12 10:00 EST (2026-01-12T15:00Z) gold_perks sms: "
            + GOLD.replace("congrats", "congratulations")) in lines
    assert "1 scenarios, 1 failed, 0 invalid" in lines[-1]


def test_an_invalid_scenario_fails_the_run(tmp_path: Path) -> None:
    journeys = copy_journeys(tmp_path / "journeys")
    (journeys / "scenarios" / "tier_upgrade" / "bad.yaml").write_text("start: soon\nexpect: {}\n")
    result = runner.invoke(app, ["test", str(journeys)])
    assert result.exit_code == 1
    assert f"{journeys / 'scenarios' / 'tier_upgrade' / 'bad.yaml'}:1:8: error: start:" in result.output
    assert "1 scenarios, 0 failed, 1 invalid" in result.output


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=dev", "-c", "user.email=dev@example.com", *args],
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with two commits: the second makes tier_upgrade wait a day and changes its text."""
    root = tmp_path / "shop"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    journeys = copy_journeys(root / "journeys")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "journeys")
    journey = journeys / "tier_upgrade.yaml"
    text = journey.read_text().replace("congrats {{", "congratulations {{")
    journey.write_text(text.replace("steps:\n", "steps:\n  - wait: 1d\n", 1))
    git(root, "commit", "-qam", "a day later, other words")
    return root


def test_review_shows_graphs_and_the_changed_timeline(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["review", "HEAD~1", "HEAD"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Changed: `tier_upgrade`" in text
    assert text.count("```mermaid\nflowchart TD") == 2
    before, after = text.split("**After**")
    assert "wait 1d" not in before and '["wait 1d"]' in after
    assert ("| **≠** | `2026-01-12 10:00 EST` `gold_perks` sms: Nordic Shoes: congrats Ria, "
            in text)
    changed_row = next(line for line in text.splitlines() if "`gold_perks`" in line)
    assert "`2026-01-13 10:00 EST` `gold_perks` sms: Nordic Shoes: congratulations Ria," in changed_row
    assert "&lt;link https://nordicshoes.example/rewards/gold>" in changed_row
    assert "|  | outcome **completed** | outcome **completed** |" in text


def test_review_of_the_work_tree_and_of_nothing_changed(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["review", "HEAD"])  # HEAD against the work tree: the same
    assert result.exit_code == 0, result.output
    assert "No journey changed." in result.output
    (repo / "journeys" / "settings.yaml").write_text(
        (repo / "journeys" / "settings.yaml").read_text().replace('end: "08:00"', 'end: "09:00"'))
    result = runner.invoke(app, ["review", "HEAD", "--against", "main"])
    assert result.exit_code == 0, result.output
    assert "`tier_upgrade`" in result.output and "`welcome`" in result.output  # shared settings: every journey


def test_review_names_a_bad_revision(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["review", "nope", "HEAD"])
    assert result.exit_code == 1
    assert "error: git ls-tree" in result.output and "nope" in result.output
