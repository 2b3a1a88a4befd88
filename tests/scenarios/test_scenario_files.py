"""Scenario files: problems with positions, and a scenario for every shipped journey."""

from __future__ import annotations

from pathlib import Path

from processes.scenarios import load_scenario, scenario_files

SHIPPED = Path(__file__).parents[2] / "journeys"


def test_every_shipped_journey_has_a_scenario() -> None:
    journeys = {path.stem for path in SHIPPED.glob("*.yaml")} - {"settings", "segments", "loyalty"}
    covered = {journey for journey, _ in scenario_files(SHIPPED)}
    assert journeys and journeys <= covered, f"no scenario for {sorted(journeys - covered)}"


def test_shipped_scenarios_load() -> None:
    for journey, file in scenario_files(SHIPPED):
        loaded, problems = load_scenario(journey, file)
        assert loaded is not None and not problems, problems


def test_problems_name_the_line_and_column(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        "customer: {id: c1}\n"
        "start: 2026-01-12T15:00:00\n"          # no zone
        "events:\n"
        "  - {at: tomorrow, type: purchase}\n"  # not +OFFSET, not ISO
        "  - {at: +1d, click: survey, stop: true}\n"  # two kinds
        "expect: {outcome: completed, txts: []}\n"    # a typo
    )
    _, problems = load_scenario("welcome", file)
    shown = sorted(str(p) for p in problems)
    assert shown == sorted([
        f"{file}:2:8: error: start: '2026-01-12T15:00:00' has no zone: write Z or an offset, e.g. 2026-03-02T15:00:00Z",
        f"{file}:4:10: error: events.0.at: write +OFFSET after the start (+2d, +1d3h) or an ISO instant: "
        "'tomorrow' is not an ISO 8601 instant, e.g. 2026-03-02T15:00:00Z",
        f"{file}:5:5: error: events.1: give exactly one of type, click, reply or stop: true",
        f"{file}:6:30: error: expect.txts: Extra inputs are not permitted",
    ]), shown
