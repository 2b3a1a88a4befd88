"""Validate loaded YAML against a pydantic model and explain every error in marketer terms.

Pydantic does the shape checks (types, required keys, unknown keys); this module turns
its errors into problems at the exact key or value, adds "did you mean" suggestions,
and keeps one explanation per mistake when a value could be one of several kinds.
"""

from __future__ import annotations

import difflib
import re
import types
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from language import config, models
from language.durations import TOO_LONG
from language.loader import Path_, YamlDocument
from language.models import STEP_TYPES, TRIGGER_KEYS
from language.problems import Problem

M = TypeVar("M", bound=BaseModel)
_MODELS: dict[str, type[BaseModel]] = {
    name: value
    for module in (models, config)
    for name, value in vars(module).items()
    if isinstance(value, type) and issubclass(value, BaseModel)
}
_STEP_SHARED_KEYS = {"id", "then", "else"}
INTERNAL_KEYS = {"texts", "subjects", "htmls"}  # Message.texts, EmailMessage's: filled from templates/ by the loader
_AT_POINT_OK = {"missing", "extra_forbidden"}
_TYPE_NAMES = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
}


def did_you_mean(word: Any, options: Iterable[Any], *, listing: bool = True) -> str:
    """`` (did you mean 'x'?)`` when a close option exists, else the (short) list of options."""
    options = sorted(str(o) for o in options)
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if listing and options and len(options) <= 16:
        return " (expected one of: " + ", ".join(options) + ")"
    return ""


def validate_model(model: type[M], doc: YamlDocument, data: Any | None = None) -> tuple[M | None, list[Problem]]:
    """The model built from ``doc`` (or ``data``), or None and the problems why not."""
    try:
        return model.model_validate(doc.data if data is None else data), []
    except ValidationError as err:
        return None, explain(model, doc, err)


# --- turning pydantic errors into problems ---------------------------------------


@dataclass
class _Error:
    path: Path_  # the data path the error is about
    on_key: bool  # point at the key (unknown keys) rather than the value
    type: str
    message: str
    input: Any
    tags: tuple[tuple[Path_, str], ...]  # (data path, union member) the error came through
    wants: str = ""  # what the member wanted, for a value that fits no member of a union


def explain(model: type[BaseModel], doc: YamlDocument, err: ValidationError) -> list[Problem]:
    errors = [_translate(model, doc, e) for e in err.errors(include_url=False)]
    errors = _one_reading_per_union(errors)
    problems, seen = [], set()
    for e in errors:
        if e.path in doc.reported:
            continue  # the loader has said what is wrong there
        span = doc.key_position(e.path) if e.on_key else doc.position(e.path)
        value = e.input if isinstance(e.input, str | int | float | bool) else None
        problem = doc.problem(span, e.message, value)
        if problem not in seen:
            seen.add(problem)
            problems.append(problem)
    return problems


def _translate(model: type[BaseModel], doc: YamlDocument, e: Any) -> _Error:
    loc = tuple(e["loc"])
    on_key = bool(loc) and loc[-1] == "[key]"
    if on_key:
        loc = loc[:-1]
    matched, path = doc.match(loc)
    # A missing field's name ends the loc: it is not a union member.
    tags = _tags(loc[:-1] if e["type"] == "missing" else loc, matched)
    kind, message, value = e["type"], e["msg"], e.get("input")
    if kind == "extra_forbidden":
        parent = path[:-1]
        allowed = allowed_keys(model, doc, parent)
        message = _unknown_key(path[-1], allowed, doc.get(parent), parent)
        return _Error(path, True, kind, message, path[-1], tags)
    if kind == "missing":
        name = loc[-1]
        return _Error(path, True, kind, f"missing '{name}'", None, tags)
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return _untagged(doc, path, e, tags)
    ctx = e.get("ctx") or {}
    if kind in ("value_error", "assertion_error") and (not loc or len(loc) - 1 in matched):
        path = _mentioned_key(doc, path, message)
    friendly = _friendly(kind, message, ctx, value)
    return _Error(path, False, kind, friendly, value, tags, _wants(kind, friendly, ctx, tags))


def _mentioned_key(doc: YamlDocument, path: Path_, message: str) -> Path_:
    """A whole-mapping rule ("tiers must be ...") is about the one key it names."""
    value = doc.get(path)
    if not isinstance(value, dict):
        return path
    words = set(re.findall(r"[A-Za-z_]+", message))
    named = [k for k in value if isinstance(k, str) and k in words]
    return (*path, named[0]) if len(named) == 1 else path


def _unknown_key(key: Any, allowed: set[str] | None, container: Any, parent: Path_) -> str:
    if allowed is None:
        return f"unknown key '{key}'"
    if parent == ("trigger",) and key in TRIGGER_KEYS and isinstance(container, dict):
        kind = next(k for k in container if k in TRIGGER_KEYS)
        return f"a journey has exactly one trigger ('{kind}'): '{key}' cannot be added"
    if key in STEP_TYPES and isinstance(container, dict) and allowed & set(STEP_TYPES):
        action = next(k for k in container if k in STEP_TYPES)
        return f"a step has one action ('{action}'): put '{key}' in a step of its own"
    return f"unknown key '{key}'" + did_you_mean(key, allowed)


def _untagged(doc: YamlDocument, path: Path_, e: Any, tags: tuple) -> _Error:
    """A step, trigger or choose branch whose kind cannot be told from its keys."""
    value = doc.get(path)
    which = str((e.get("ctx") or {}).get("discriminator", ""))
    if "trigger" in which:
        what, kinds, shared = "trigger", list(TRIGGER_KEYS), set()
    elif "choice" in which:
        what, kinds, shared = "choose branch", ["when", "else"], {"steps"}
    else:
        what, kinds, shared = "step", list(STEP_TYPES), _STEP_SHARED_KEYS
    if not isinstance(value, dict):
        example = {"trigger": "{event: purchase}", "step": "wait: 30d"}.get(what, "when: ...")
        return _Error(path, False, e["type"], f"a {what} must be a mapping, e.g. {example}", value, tags)
    candidates = [k for k in value if k not in shared]
    if not candidates:
        return _Error(path, False, e["type"], f"a {what} needs one of: " + ", ".join(kinds), None, tags)
    key = candidates[0]
    message = f"unknown {what} '{key}'" + did_you_mean(key, kinds)
    return _Error((*path, key), True, e["type"], message, key, tags)


def _friendly(kind: str, message: str, ctx: dict, value: Any) -> str:
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind == "assertion_error":
        return message.removeprefix("Assertion failed, ")
    if kind == "string_pattern_mismatch" and "a-z0-9_" in str(ctx.get("pattern", "")):
        return "must be a name of lowercase letters, digits and _ (e.g. winback_survey)"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        return f"expected {expected}" + (
            did_you_mean(value, _literals(expected), listing=False) if isinstance(value, str) else ""
        )
    if kind in _TYPE_NAMES:
        return "expected " + _TYPE_NAMES[kind]
    if kind in ("model_type", "model_attributes_type"):
        model = _MODELS.get(str(ctx.get("class_name", "")))
        keys = ", ".join(sorted(_aliases(model))) if model else ""
        return f"expected a mapping with {keys}" if keys else "expected a mapping"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 1)} item(s)"
    return message[:1].lower() + message[1:]


def _literals(expected: str) -> list[str]:
    return [o.strip(" '") for o in expected.replace(" or ", ",").split(",")]


def _wants(kind: str, message: str, ctx: dict, tags: tuple) -> str:
    """What one member of a union wanted, to explain a value that fits none of them."""
    if kind == "literal_error":
        return str(ctx.get("expected"))
    if "is not a duration" in message:
        return "a duration such as 30d or 4h"
    if "is not a time of day" in message:
        return "a time of day such as 09:00"
    if kind in ("model_type", "dict_type", "model_attributes_type") and tags:
        model = _MODELS.get(tags[-1][1])
        keys = ", ".join(sorted(_aliases(model))) if model else ""
        return f"a mapping with {keys}" if keys else "a mapping"
    return message


def _tags(loc: Path_, matched: tuple[int, ...]) -> tuple[tuple[Path_, str], ...]:
    """The loc elements that are union members, not data keys, with where they apply."""
    tags: dict[Path_, str] = {}
    path: Path_ = ()
    for i, part in enumerate(loc):
        if i in matched:
            path = (*path, part)
        elif isinstance(part, str):
            tags.setdefault(path, part)  # one member per place: the outermost
    return tuple(tags.items())


def _one_reading_per_union(errors: list[_Error]) -> list[_Error]:
    """Where a value could be one of several kinds, explain it as the kind it most resembles.

    Outermost places first: deciding one can only remove errors from the places inside it.
    One pass over the places (a file with thousands of unions took minutes when every
    decision went over every error again).
    """
    alive = dict.fromkeys(range(len(errors)), True)
    at_point: dict[Path_, list[int]] = defaultdict(list)
    for i, e in enumerate(errors):
        for point, _ in e.tags:
            at_point[point].append(i)
    merged_errors: list[_Error] = []
    for point in sorted(at_point, key=len):
        groups: dict[str, list[_Error]] = defaultdict(list)
        members = [i for i in at_point[point] if alive[i]]
        for i in members:
            groups[next(t for p, t in errors[i].tags if p == point)].append(errors[i])
        if len(groups) < 2:
            continue

        def rejected(group: list[_Error], point: Path_ = point) -> bool:
            return any(e.path == point and e.type not in _AT_POINT_OK for e in group)

        fitting = [t for t, g in groups.items() if not rejected(g)]
        if fitting:
            keep = min(fitting, key=lambda t: len(groups[t]))
            for i in members:
                if next(t for p, t in errors[i].tags if p == point) != keep:
                    alive[i] = False
            continue
        # Nothing fits: one problem listing what each kind would have needed.
        wants = list(dict.fromkeys(errors[i].wants or errors[i].message for i in members))
        if TOO_LONG in wants:  # a duration, only too long: that is all there is to say
            wants = [TOO_LONG]
        first = errors[members[0]]
        merged_errors.append(_Error(
            point,
            False,
            "union",
            wants[0] if wants == [TOO_LONG] else "expected " + ", or ".join(wants),
            first.input,
            tuple(t for t in first.tags if len(t[0]) < len(point)),
        ))
        for i in members:
            alive[i] = False
    return [e for i, e in enumerate(errors) if alive[i]] + merged_errors


# --- which keys a mapping may have -------------------------------------------------


def allowed_keys(root: type[BaseModel], doc: YamlDocument, path: Path_) -> set[str] | None:
    """The keys the mapping at ``path`` may have, or None if it cannot be told."""
    model = model_at(root, doc, path)
    return None if model is None else _aliases(model)


def model_at(root: type[BaseModel], doc: YamlDocument, path: Path_) -> type[BaseModel] | None:
    """The model the mapping at ``path`` is read as, following the data through unions."""
    tp: Any = root
    for i, part in enumerate(path):
        value = doc.get(path[:i])
        model = _pick_model(tp, value)
        if model is not None and isinstance(value, dict):
            field = _field(model, part)
            if field is None:
                return None
            tp = field.annotation
        else:
            tp = _item(tp, part)
            if tp is None:
                return None
    return _pick_model(tp, doc.get(path))


def _members(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [m for arg in get_args(tp) for m in _members(arg)]
    return [tp]


def _pick_model(tp: Any, value: Any) -> type[BaseModel] | None:
    candidates = [m for m in _members(tp) if isinstance(m, type) and issubclass(m, BaseModel)]
    if not candidates:
        return None
    # The member whose keys the data uses most (the first on a tie).
    keys = set(value) if isinstance(value, dict) else set()
    return max(candidates, key=lambda m: len(keys & _aliases(m)))


def _item(tp: Any, part: Any) -> Any:
    for member in _members(tp):
        origin, args = get_origin(member), get_args(member)
        if origin is list and isinstance(part, int) and args:
            return args[0]
        if origin is dict and args:
            return args[1]
    return None


def _aliases(model: type[BaseModel]) -> set[str]:
    """The keys an author may write (internal fields, filled by the loader, excluded)."""
    return {f.alias or name for name, f in model.model_fields.items()} - INTERNAL_KEYS


def _field(model: type[BaseModel], key: Any) -> Any:
    for name, f in model.model_fields.items():
        if key in (f.alias, name):
            return f
    return None
