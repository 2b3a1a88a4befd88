"""A loaded, validated journeys directory: the configuration plus every journey, pinned.

``load_catalog`` is the only way journeys go live: the worker, the CLI and the API
all call it, and it refuses a directory with any error in it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from language.config import Loyalty, Segments, Settings, TemplateFile
from language.models import Journey


class PinnedJourney(BaseModel):
    """A journey definition as a customer enters it: templates inlined, content-hashed."""

    journey: Journey
    version: str

    @classmethod
    def pin(cls, journey: Journey) -> PinnedJourney:
        canonical = json.dumps(journey.model_dump(mode="json", by_alias=True), sort_keys=True)
        return cls(journey=journey, version=hashlib.sha256(canonical.encode()).hexdigest()[:12])


@dataclass
class Catalog:
    config_dir: Path
    settings: Settings = field(default_factory=Settings)
    segments: Segments = field(default_factory=Segments)
    loyalty: Loyalty = field(default_factory=Loyalty)
    templates: dict[str, TemplateFile] = field(default_factory=dict)
    journeys: dict[str, PinnedJourney] = field(default_factory=dict)

    def journey(self, journey_id: str) -> PinnedJourney:
        try:
            return self.journeys[journey_id]
        except KeyError:
            known = ", ".join(sorted(self.journeys)) or "none"
            raise KeyError(f"no journey {journey_id!r} (known: {known})") from None


class InvalidJourneys(Exception):
    """Raised when a journeys directory has errors; ``problems`` lists each one."""

    def __init__(self, problems: list) -> None:
        self.problems = problems
        lines = "\n".join(str(p) for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the journeys:\n{lines}{more}")


def load_catalog(config_dir: str | Path, journey_paths: list[Path] | None = None) -> Catalog:
    """Load and validate a journeys directory; raise InvalidJourneys on any error."""
    from language.validate import validate_directory

    report = validate_directory(Path(config_dir), journey_paths)
    if report.errors:
        raise InvalidJourneys(report.errors)
    return report.catalog
