"""Checks on a journey's structure: ids, unreachable steps, splits, triggers, durations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from language.checks_values import cron_problem, duration_problem, url_problem, valid_timezone
from language.loader import Path_, YamlDocument
from language.models import MAX_RUN_KEY_CHARS, SENDING_STEP_TYPES, step_kind
from language.problems import Problem
from language.shape import INTERNAL_KEYS, did_you_mean
from language.walk import iter_steps, nested, step_lists, variants


def check_structure(doc: YamlDocument, stem: str) -> Iterator[Problem]:
    data = doc.data
    yield from _journey_id(doc, stem)
    yield from _step_ids(doc)
    yield from _unreachable(doc)
    yield from _choose_else_last(doc)
    yield from _splits(doc)
    yield from _trigger(doc, data.get("trigger"))
    yield from _run_key(doc, data)
    yield from _durations(doc)
    yield from _expects(doc)
    yield from _internal_keys(doc)
    yield from _media_urls(doc)
    yield from _step_keys(doc)


def _journey_id(doc: YamlDocument, stem: str) -> Iterator[Problem]:
    journey_id = doc.data.get("id")
    if isinstance(journey_id, str) and journey_id != stem:
        yield doc.problem(
            doc.position(("id",)),
            f"the journey id must equal the file name "
            f"'{stem}': rename the file to {journey_id}.yaml or write id: {stem}",
            journey_id,
        )


def _step_ids(doc: YamlDocument) -> Iterator[Problem]:
    first: dict[str, Path_] = {}
    for at in iter_steps(doc.data):
        step_id = at.step.get("id")
        if at.kind in SENDING_STEP_TYPES and step_id is None:
            yield doc.problem(
                doc.key_position((*at.path, at.kind)),
                f"a {at.kind} step needs an id: reports, links and clicked('<id>') use it",
            )
        if not isinstance(step_id, str):
            continue
        if step_id in first:
            line = doc.position((*first[step_id], "id")).line
            yield doc.problem(
                doc.position((*at.path, "id")),
                f"duplicate step id '{step_id}' (first used at line {line}): step ids are unique in a journey",
                step_id,
            )
        else:
            first[step_id] = at.path


def _unreachable(doc: YamlDocument) -> Iterator[Problem]:
    for path, steps in step_lists(doc.data):
        exit_at = next((i for i, s in enumerate(steps) if step_kind(s) == "exit"), None)
        if exit_at is None:
            continue
        line = doc.position((*path, exit_at)).line
        for i in range(exit_at + 1, len(steps)):
            yield doc.problem(doc.position((*path, i)), f"unreachable: follows exit at line {line}")


def _choose_else_last(doc: YamlDocument) -> Iterator[Problem]:
    for at in iter_steps(doc.data):
        branches = at.step.get("choose") if at.kind == "choose" else None
        if not isinstance(branches, list):
            continue
        else_at = next((i for i, b in enumerate(branches) if isinstance(b, dict) and "else" in b), None)
        if else_at is None or else_at == len(branches) - 1:
            continue
        base = (*at.path, "choose")
        line = doc.position((*base, else_at)).line
        yield doc.problem(doc.key_position((*base, else_at, "else")), "'else' must be the last branch of choose")
        for i in range(else_at + 1, len(branches)):
            yield doc.problem(doc.position((*base, i)), f"unreachable: follows else at line {line}")


def _splits(doc: YamlDocument) -> Iterator[Problem]:
    split_names: dict[str, int] = {}
    for at in iter_steps(doc.data):
        if at.kind != "split":
            continue
        split = at.step.get("split")
        name = split.get("name") if isinstance(split, dict) else None
        if isinstance(name, str):
            if name in split_names:
                yield doc.problem(
                    doc.position((*at.path, "split", "name")),
                    f"duplicate split name '{name}' (first at line {split_names[name]})",
                    name,
                )
            split_names.setdefault(name, doc.position((*at.path, "split", "name")).line)
        weights, names = [], set()
        for i, variant in enumerate(variants(at.step)):
            if not isinstance(variant, dict):
                continue
            base = (*at.path, "split", "variants", i)
            weight, vname = variant.get("weight"), variant.get("name")
            if isinstance(vname, str):
                if vname in names:
                    yield doc.problem(doc.position((*base, "name")), f"duplicate variant name '{vname}'", vname)
                names.add(vname)
            if isinstance(weight, int) and not isinstance(weight, bool):
                weights.append(weight)
                if weight == 0:
                    yield doc.problem(
                        doc.position((*base, "weight")),
                        f"variant '{vname}' has weight 0: no customer will get it",
                        0,
                        "warning",
                    )
        if weights and sum(weights) == 0:
            yield doc.problem(
                doc.key_position((*at.path, "split")),
                "the variant weights add up to 0: give at least one variant a positive weight",
                0,
            )


def _trigger(doc: YamlDocument, trigger: Any) -> Iterator[Problem]:
    if not isinstance(trigger, dict):
        return
    date = trigger.get("date")
    attribute = date.get("attribute") if isinstance(date, dict) else None
    if isinstance(attribute, str) and not (
        attribute == "birthday" or re.fullmatch(r"attributes\.[A-Za-z0-9_]+", attribute)
    ):
        yield doc.problem(
            doc.position(("trigger", "date", "attribute")),
            "a date trigger reads birthday or attributes.<name>" + did_you_mean(attribute, ["birthday"]),
            attribute,
        )
    schedule = trigger.get("schedule")
    if not isinstance(schedule, dict):
        return
    cron, zone = schedule.get("cron"), schedule.get("timezone")
    if isinstance(cron, str) and (reason := cron_problem(cron)):
        yield doc.problem(doc.position(("trigger", "schedule", "cron")), reason, cron)
    if isinstance(zone, str) and zone != "customer" and (reason := valid_timezone(zone)):
        yield doc.problem(
            doc.position(("trigger", "schedule", "timezone")),
            reason + "; or write customer for each customer's own",
            zone,
        )


def _run_key(doc: YamlDocument, data: dict) -> Iterator[Problem]:
    """run_key: an expression over the trigger event (its names are checked with the other
    expressions), so only an event trigger has one to read; short, as it is hashed per event."""
    run_key, trigger = data.get("run_key"), data.get("trigger")
    if run_key is None:
        return
    if isinstance(trigger, dict) and "event" not in trigger:
        kind = next(iter(trigger), "this trigger")
        yield doc.problem(doc.key_position(("run_key",)),
                          f"run_key is only for event triggers (trigger: {{event: ...}}): a {kind} trigger "
                          "has no trigger event to read a key from", None)
    if isinstance(run_key, str) and len(run_key) > MAX_RUN_KEY_CHARS:
        yield doc.problem(doc.position(("run_key",)),
                          f"run_key is at most {MAX_RUN_KEY_CHARS} characters (this one has {len(run_key)})",
                          run_key[:80] + "...")


# Durations that must be positive (offsets of a date trigger may be negative); a wait
# of zero is pointless but harmless.
def _duration_paths(data: Any) -> Iterator[tuple[Path_, bool]]:
    yield ("reentry",), False
    yield ("goal", "within"), False
    for at in iter_steps(data):
        if at.kind == "wait":
            yield (*at.path, "wait"), True
        elif at.kind in ("ask", "wait_for"):
            yield (*at.path, at.kind, "timeout"), False
        elif at.kind == "award_points":
            yield (*at.path, "award_points", "expires_in"), False


def _durations(doc: YamlDocument) -> Iterator[Problem]:
    for path, zero_ok in _duration_paths(doc.data):
        value = doc.get(path)
        reason = duration_problem(value, zero_ok=zero_ok)
        if reason:
            yield doc.problem(doc.position(path), reason, value)


def _expects(doc: YamlDocument) -> Iterator[Problem]:
    for at in iter_steps(doc.data):
        ask = at.step.get("ask") if at.kind == "ask" else None
        expect = ask.get("expect") if isinstance(ask, dict) else None
        if not isinstance(expect, dict):
            continue
        low, high = expect.get("min"), expect.get("max")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            yield doc.problem(
                doc.position((*at.path, "ask", "expect", "min")), f"min ({low}) is above max ({high})", low
            )


def _internal_keys(doc: YamlDocument) -> Iterator[Problem]:
    """Keys the loader fills in are never written by hand (they would bypass templates/)."""
    for at in iter_steps(doc.data):
        spec = at.step.get(at.kind) if at.kind in SENDING_STEP_TYPES else None
        for key in INTERNAL_KEYS & set(spec if isinstance(spec, dict) else ()):
            yield doc.problem(
                doc.key_position((*at.path, at.kind, key)),
                f"unknown key '{key}': write text, or template to use templates/",
                key,
            )


def _media_urls(doc: YamlDocument) -> Iterator[Problem]:
    for at in iter_steps(doc.data):
        spec = at.step.get(at.kind) if at.kind in SENDING_STEP_TYPES else None
        url = spec.get("media_url") if isinstance(spec, dict) else None
        if isinstance(url, str) and (reason := url_problem(url)):
            yield doc.problem(doc.position((*at.path, at.kind, "media_url")), f"media_url {reason}", url)


# A step is known by its id, else by its position from the nearest ancestor with one
# (steps.2.then.0): that key, with the run's id, makes the keys of its messages, events
# and decisions, all stored in columns of 128 to 240 characters.
MAX_STEP_KEY = 64


def _step_keys(doc: YamlDocument) -> Iterator[Problem]:
    steps = doc.data.get("steps")
    if isinstance(steps, list):
        yield from _keys_in(doc, ("steps",), "steps", steps)


def _keys_in(doc: YamlDocument, path: Path_, label: str, steps: list) -> Iterator[Problem]:
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        at = (*path, index)
        key = step["id"] if isinstance(step.get("id"), str) else f"{label}.{index}"
        if len(key) > MAX_STEP_KEY:
            yield doc.problem(
                doc.position(at),
                f"this step is known as '{key[:40]}...' ({len(key)} characters, at most {MAX_STEP_KEY}): "
                "give it, or a step it is nested in, an id",
            )
            continue  # the steps inside it say the same
        for sub_path, sub in nested(at, step):
            rest = sub_path[len(at):]
            if rest[0] in ("then", "else"):
                sub_label = f"{key}.{rest[0]}"
            elif rest[0] == "choose":
                sub_label = f"{key}.choose.{rest[1]}"
            else:  # split.variants.<i>.steps
                name = _at(step, rest[:-1]).get("name")
                sub_label = f"{key}.variant.{name}"
            yield from _keys_in(doc, sub_path, sub_label, sub)


def _at(node: Any, path: Path_) -> Any:
    for part in path:
        node = node[part]
    return node
