"""A loaded, validated journeys directory: the configuration plus every journey, pinned.

``language.validate.load_catalog`` is the only way to get one that goes live.
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
