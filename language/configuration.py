"""Load and check the shared files of a journeys directory: settings, segments, loyalty,
templates. A missing file means defaults; a file with errors falls back to defaults too
(so the journeys can still be checked), and its names are still read for references.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from language.checks_email import email_template
from language.checks_expressions import analyze
from language.checks_length import length_warning
from language.checks_references import Known, check_reference
from language.checks_values import duration_problem, valid_timezone
from language.config import Loyalty, Segments, Settings, TemplateFile
from language.loader import Path_, YamlDocument, load_file
from language.problems import Problem
from language.segment_sql import compile_problems
from language.shape import validate_model

SETTINGS, SEGMENTS, LOYALTY, TEMPLATES = "settings.yaml", "segments.yaml", "loyalty.yaml", "templates"
CONFIG_FILES = (SETTINGS, SEGMENTS, LOYALTY)
M = TypeVar("M", bound=BaseModel)
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|DATABASE_URL|CREDENTIAL", re.IGNORECASE)
_UNSET = object()


@dataclass
class Configuration:
    settings: Settings = field(default_factory=Settings)
    segments: Segments = field(default_factory=Segments)
    loyalty: Loyalty = field(default_factory=Loyalty)
    templates: dict[str, TemplateFile] = field(default_factory=dict)
    known: Known = field(default_factory=Known)
    problems: list[Problem] = field(default_factory=list)


def load_configuration(config_dir: Path) -> Configuration:
    config = Configuration()
    problems = config.problems
    settings = _load(config_dir / SETTINGS, Settings, problems, _check_settings)
    config.settings = settings or Settings()
    segments_doc = _read(config_dir / SEGMENTS)
    segments = _load(config_dir / SEGMENTS, Segments, problems, _check_segments, segments_doc)
    config.segments = segments or Segments()
    config.known.segments = _segment_names(segments_doc)
    if segments_doc is not None:
        problems += _check_rules(segments_doc)
    loyalty_doc = _read(config_dir / LOYALTY)
    loyalty = _load(config_dir / LOYALTY, Loyalty, problems, _check_loyalty, loyalty_doc)
    config.loyalty = loyalty or Loyalty()
    config.known.coupons = _coupon_names(loyalty_doc)
    config.known.rewards = _names_under(loyalty_doc, "rewards")
    if loyalty is not None and loyalty_doc is not None and loyalty.rewards and \
            loyalty.rewards_keyword in config.settings.text_to_join.keywords:
        # A whole-message join keyword comes first: "REDEEM" alone would sign up, not redeem.
        problems.append(loyalty_doc.problem(
            loyalty_doc.position(("rewards_keyword",)) if "rewards_keyword" in (loyalty_doc.data or {})
            else loyalty_doc.position(("rewards",)),
            f"rewards_keyword {loyalty.rewards_keyword} is also a text_to_join keyword in settings.yaml: "
            "choose another for one of them", loyalty.rewards_keyword))
    _load_templates(config_dir / TEMPLATES, config)
    return config


def _read(path: Path) -> YamlDocument | None:
    return load_file(path) if path.is_file() else None


def _load(
    path: Path,
    model: type[M],
    problems: list[Problem],
    extra_checks: Any,
    doc: YamlDocument | None = None,
) -> M | None:
    """The file's model; None when it is missing, empty or has errors (use the defaults)."""
    doc = doc or _read(path)
    if doc is None:
        return None
    problems += doc.problems
    if doc.data is None:
        return None
    if model is Settings:
        doc.data = expand_env_vars(doc, doc.data, (), problems)
    if not isinstance(doc.data, dict):
        if not doc.problems:
            problems.append(doc.problem(doc.position(()), f"{path.name} must be a mapping of keys"))
        return None
    loaded, found = validate_model(model, doc)
    problems += found
    if extra_checks is not None:
        problems += extra_checks(doc)
    return loaded


def expand_env_vars(doc: YamlDocument, data: Any, path: Path_, problems: list[Problem]) -> Any:
    """``${VAR}`` -> the environment variable, in the ``sender`` block only (the account's
    service SID or number differ per deployment). Anywhere else, and for a variable that
    names a secret, it is an error: a brand, reply or text read from the environment could
    text a server secret to anyone who asks for HELP. Unset, a variable reads as empty; a
    value that is only an unset variable is left out, so the setting keeps its default."""
    if isinstance(data, dict):
        expanded = {k: expand_env_vars(doc, v, (*path, k), problems) for k, v in data.items()}
        return {k: v for k, v in expanded.items() if v is not _UNSET}
    if isinstance(data, list):
        items = [expand_env_vars(doc, v, (*path, i), problems) for i, v in enumerate(data)]
        return [None if v is _UNSET else v for v in items]
    if not isinstance(data, str) or "${" not in data:
        return data
    names = _ENV_VAR.findall(data)
    refused = [(name, _refusal(name, path)) for name in names]
    for name, reason in refused:
        if reason:
            problems.append(doc.problem(doc.find(path, "${" + name), reason, "${" + name + "}"))
        elif name not in os.environ:
            problems.append(
                doc.problem(
                    doc.find(path, "${" + name), f"environment variable {name} is not set", "${" + name + "}", "warning"
                )
            )
    if any(reason for _, reason in refused):
        return data
    whole = _ENV_VAR.fullmatch(data)
    if whole and whole.group(1) not in os.environ:
        return _UNSET
    return _ENV_VAR.sub(lambda m: os.environ.get(m.group(1), ""), data)


def _refusal(name: str, path: Path_) -> str | None:
    if not path or path[0] != "sender":
        return (f"${{{name}}} is not read here: environment variables are only read in the sender block "
                "(messaging_service_sid, from), so no text, brand or reply can hold a server's value")
    if _SECRET_NAME.search(name):
        return f"${{{name}}} names a secret: secrets are never read into settings.yaml"
    return None


def _check_settings(doc: YamlDocument) -> list[Problem]:
    """On the raw data, so each is reported even when other settings have errors."""
    problems = []
    zone = doc.get(("default_timezone",))
    if isinstance(zone, str) and (reason := valid_timezone(zone)):
        problems.append(doc.problem(doc.position(("default_timezone",)), reason, zone))
    quiet = doc.get(("quiet_hours",))
    if isinstance(quiet, dict) and quiet.get("start") is not None and quiet.get("start") == quiet.get("end"):
        problems.append(
            doc.problem(
                doc.position(("quiet_hours",)),
                "quiet hours start and end at the same time: there are no quiet hours",
                None,
                "warning",
            )
        )
    caps = doc.get(("frequency_caps",))
    for i, _ in enumerate(caps if isinstance(caps, list) else []):
        problems += _duration(doc, ("frequency_caps", i, "per"))
    base_url = doc.get(("links", "base_url"))
    if isinstance(base_url, str) and not base_url.startswith(("http://", "https://")):
        problems.append(
            doc.problem(
                doc.position(("links", "base_url")), "links.base_url must start with http:// or https://", base_url
            )
        )
    return problems


def _check_segments(doc: YamlDocument) -> list[Problem]:
    return _duration(doc, ("refresh",))


def _check_loyalty(doc: YamlDocument) -> list[Problem]:
    problems = []
    seen: set[Any] = set()
    tiers = doc.get(("tiers",))
    for i, tier in enumerate(tiers if isinstance(tiers, list) else []):
        name = tier.get("name") if isinstance(tier, dict) else None
        if name is not None and name in seen:
            problems.append(doc.problem(doc.position(("tiers", i, "name")), f"duplicate tier '{name}'", name))
        seen.add(name)
    problems += _duration(doc, ("points", "expire_after"))
    problems += _duration(doc, ("points", "expiry_reminder"))
    coupons = doc.get(("coupons",))
    for name in coupons if isinstance(coupons, dict) else []:
        problems += _duration(doc, ("coupons", name, "expires_in"))
    return problems


def _duration(doc: YamlDocument, path: Path_) -> list[Problem]:
    value = doc.get(path)
    reason = duration_problem(value)
    return [doc.problem(doc.position(path), reason, value)] if reason else []


def _segment_names(doc: YamlDocument | None) -> dict[str, bool]:
    segments = doc.get(("segments",)) if doc is not None else None
    if not isinstance(segments, dict):
        return {}
    return {str(name): isinstance(spec, dict) and spec.get("manual") is True for name, spec in segments.items()}


def _names_under(doc: YamlDocument | None, key: str) -> set[str]:
    found = doc.get((key,)) if doc is not None else None
    return {str(name) for name in found} if isinstance(found, dict) else set()


def _coupon_names(doc: YamlDocument | None) -> set[str]:
    coupons = doc.get(("coupons",)) if doc is not None else None
    return {str(name) for name in coupons} if isinstance(coupons, dict) else set()


def _check_rules(doc: YamlDocument) -> list[Problem]:
    """Segment rules compile to SQL later: they may only read customer fields and averages."""
    problems = []
    segments = doc.get(("segments",))
    for name, spec in segments.items() if isinstance(segments, dict) else []:
        rule = spec.get("rule") if isinstance(spec, dict) else None
        if not isinstance(rule, str):
            continue
        path = ("segments", name, "rule")
        for finding in analyze(rule, "expression", "rule").findings:
            problems.append(
                doc.problem(doc.find(path, finding.snippet), finding.message, finding.value or rule, finding.severity)
            )
        if not analyze(rule, "expression", "rule").findings:  # the names are right: can the database run it?
            problems += [doc.problem(doc.position(path), message, rule) for message in compile_problems(rule)]
    return problems


def _load_templates(directory: Path, config: Configuration) -> None:
    if not directory.is_dir():
        return
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        name, doc = path.stem, load_file(path)
        before = len(config.problems)
        template = _load(path, TemplateFile, config.problems, None, doc)
        if doc.data is None and not doc.problems:
            config.problems.append(doc.problem(doc.position(()), 'the template is empty: write text: {en: "..."} '
                                               '(and subject: {en: "..."} for an email)'))
        config.problems += check_texts(doc, config)
        failed = any(p.severity == "error" for p in config.problems[before:])
        if template is None or failed:
            config.known.broken_templates.add(name)
        else:
            config.templates[name] = template
            config.known.templates[name] = template


def check_texts(doc: YamlDocument, config: Configuration) -> list[Problem]:
    """Each locale's text (and an email's subject and html) compiles and uses message names;
    an SMS text fits in two segments; an email template is complete."""
    problems = list(email_template(doc))
    is_email = isinstance(doc.data, dict) and "subject" in doc.data
    for part, locale, text in _parts(doc):
        path = (part, locale)
        analysis = analyze(text, "template", "message")
        for finding in analysis.findings:
            problems.append(
                doc.problem(doc.find(path, finding.snippet), finding.message, finding.value, finding.severity)
            )
        for ref in analysis.references:
            reason = check_reference(ref, config.known, None)
            if reason:
                problems.append(doc.problem(doc.find(path, ref.snippet), reason, ref.name))
        warning = None if is_email else length_warning(text, config.settings.links.base_url)
        if warning:
            problems.append(doc.problem(doc.position(path), warning, None, "warning"))
    return problems


def _parts(doc: YamlDocument) -> Iterator[tuple[str, str, str]]:
    for part in ("subject", "text", "html"):
        texts = doc.get((part,))
        for locale, text in texts.items() if isinstance(texts, dict) else []:
            if isinstance(text, str):
                yield part, locale, text
