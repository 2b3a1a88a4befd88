"""Fixtures for the messaging tests: Prism (Twilio's spec) and a failing fake Twilio."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_twilio import FakeTwilio
from prism import running_prism


@pytest.fixture(scope="session")
def prism_url() -> Iterator[str]:
    with running_prism() as url:
        yield url


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake
