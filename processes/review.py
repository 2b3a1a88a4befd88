"""`journeys review`: Markdown for a pull request comment. For each journey a change
touches: its Mermaid graph before and after, and the timeline of each of its scenarios
(HEAD's scenarios, run against both versions) side by side."""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from language.graph import mermaid
from language.validate import validate_directory
from processes.scenario_run import Outcome, Row, run_scenarios
from processes.scenarios import SCENARIOS_DIR, LoadedScenario, load_scenario, scenario_files

# A change to one of these can change what every journey does.
SHARED = ("settings.yaml", "segments.yaml", "loyalty.yaml", "templates")


class ReviewError(ValueError):
    pass


def git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True)
    except FileNotFoundError:
        raise ReviewError("git is not installed") from None
    except subprocess.CalledProcessError as err:
        raise ReviewError(f"git {' '.join(args)}: {err.stderr.decode(errors='replace').strip()}") from None
    return done.stdout


def default_base(repo: Path, against: str) -> str:
    """The merge base of HEAD with ``against`` (or with main when that does not exist)."""
    for branch in (against, "main"):
        try:
            return git(repo, "merge-base", "HEAD", branch).decode().strip()
        except ReviewError:
            continue
    raise ReviewError(f"no merge base of HEAD with {against} or main: give BASE")


def materialise(repo: Path, revision: str, journeys_dir: Path, target: Path) -> Path:
    """The journeys directory as it is at ``revision``, written under ``target``."""
    root = git(repo, "rev-parse", "--show-toplevel").decode().strip()
    inside = (repo.resolve() / journeys_dir).relative_to(Path(root).resolve()).as_posix()
    out = target / "journeys"
    out.mkdir(parents=True)
    listed = git(repo, "ls-tree", "-r", "--name-only", revision, "--", inside).decode().splitlines()
    if not listed:
        return out  # the directory did not exist then
    archive = git(Path(root), "archive", "--format=tar", revision, inside)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        prefix = inside.rstrip("/") + "/"
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(prefix):
                dest = out / member.name[len(prefix):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                extracted = tar.extractfile(member)
                assert extracted is not None
                dest.write_bytes(extracted.read())
    return out


def _files(directory: Path) -> dict[str, bytes]:
    if not directory.is_dir():
        return {}
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def changed_journeys(before: Path, after: Path) -> list[str]:
    """Journeys whose file or scenarios differ; every journey when a shared file differs."""
    old, new = _files(before), _files(after)
    names = {Path(name).stem for name in old | new if "/" not in name and name.endswith(".yaml")} - {
        Path(name).stem for name in SHARED}
    differs = {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}
    if any(name.split("/")[0] in SHARED for name in differs):
        return sorted(names)
    touched = {Path(name).stem for name in differs if "/" not in name} | {
        name.split("/")[1] for name in differs if name.startswith(f"{SCENARIOS_DIR}/") and name.count("/") >= 2}
    return sorted(touched & names)


async def review_markdown(repo: Path, journeys_dir: Path, base: str | None, head: str | None, *,
                          against: str = "origin/main") -> str:
    base = base or default_base(repo, against)
    with tempfile.TemporaryDirectory(prefix="journeys-review-") as tmp:
        before = materialise(repo, base, journeys_dir, Path(tmp) / "base")
        after = materialise(repo, head, journeys_dir, Path(tmp) / "head") if head else repo / journeys_dir
        return await compare(before, after, base_name=base[:12], head_name=head or "work tree")


async def compare(before: Path, after: Path, *, base_name: str, head_name: str) -> str:
    journeys = changed_journeys(before, after)
    lines = [f"## Journeys review: `{base_name}` → `{head_name}`", ""]
    if not journeys:
        return "\n".join([*lines, "No journey changed.", ""])
    old_report, new_report = validate_directory(before), validate_directory(after)
    lines += ["Changed: " + ", ".join(f"`{name}`" for name in journeys), ""]
    if new_report.errors:
        lines += ["**The changed journeys do not validate:**", "", "```",
                  *(str(p).replace(str(after), "journeys") for p in new_report.errors), "```", ""]
    scenarios: list[LoadedScenario] = []
    for journey, file in scenario_files(after):
        if journey in journeys:
            loaded, _ = load_scenario(journey, file)
            if loaded is not None:
                scenarios.append(loaded)
    old_outcomes = {o.scenario.label: o for o in await run_scenarios(before, scenarios)} if scenarios else {}
    new_outcomes = {o.scenario.label: o for o in await run_scenarios(after, scenarios)} if scenarios else {}
    for journey in journeys:
        lines += [f"### `{journey}`", ""]
        for title, report in (("Before", old_report), ("After", new_report)):
            pinned = report.catalog.journeys.get(journey)
            lines += [f"**{title}**", ""]
            lines += ["```mermaid", mermaid(pinned.journey).rstrip("\n"), "```", ""] if pinned else [
                "_(no journey, or it does not validate)_", ""]
        mine = [s for s in scenarios if s.journey == journey]
        if not mine:
            lines += [f"_No scenarios: add some in `journeys/{SCENARIOS_DIR}/{journey}/`._", ""]
        for scenario in mine:
            lines += timeline_table(scenario, old_outcomes[scenario.label], new_outcomes[scenario.label])
    return "\n".join(lines)


def timeline_table(scenario: LoadedScenario, before: Outcome, after: Outcome) -> list[str]:
    """One scenario's timelines side by side; rows that differ are marked."""
    lines = [f"#### Scenario `{scenario.name}`", ""]
    if scenario.scenario.description:
        lines += [f"_{_cell(scenario.scenario.description)}_", ""]
    lines += ["| | Before | After |", "|---|---|---|"]
    old, new = before.rows, after.rows
    for index in range(max(len(old), len(new))):
        left = old[index] if index < len(old) else None
        right = new[index] if index < len(new) else None
        mark = "" if left == right else "**≠**"
        lines.append(f"| {mark} | {_row_cell(left)} | {_row_cell(right)} |")
    mark = "" if _ending(before) == _ending(after) else "**≠**"
    lines += [f"| {mark} | outcome **{_cell(_ending(before))}** | outcome **{_cell(_ending(after))}** |", ""]
    return lines


def _ending(outcome: Outcome) -> str:
    if outcome.error:
        return f"cannot run: {outcome.error}"
    if outcome.not_entered_reason:
        return f"{outcome.outcome} ({outcome.not_entered_reason})"
    return outcome.outcome


def _row_cell(row: Row | None) -> str:
    if row is None:
        return ""
    return f"`{row.local}` `{_cell(row.step)}` {row.action}: {_cell(row.text)}"


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")
