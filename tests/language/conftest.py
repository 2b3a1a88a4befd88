"""Fixtures for the language tests: a journeys directory built from the spec's examples."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from language.validate import ValidationReport, validate_directory

FIXTURES = Path(__file__).parent / "fixtures"
SPEC_DIR = FIXTURES / "spec"


@pytest.fixture
def journeys_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """settings, segments, loyalty and templates from the spec, and no journey yet."""
    monkeypatch.setenv("TWILIO_MESSAGING_SERVICE_SID", "MG123")
    for name in ("settings.yaml", "segments.yaml", "loyalty.yaml"):
        shutil.copy(SPEC_DIR / name, tmp_path / name)
    shutil.copytree(SPEC_DIR / "templates", tmp_path / "templates")
    return tmp_path


Check = Callable[..., ValidationReport]


@pytest.fixture
def check(journeys_dir: Path) -> Check:
    """Write one journey (dedented) as ``<name>.yaml`` and validate the directory."""

    def run(text: str, name: str = "demo") -> ValidationReport:
        (journeys_dir / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
        return validate_directory(journeys_dir)

    return run
