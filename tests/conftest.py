"""Shared test setup: quiet logging, the hypothesis profile, and the JSON fixture loader."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from loguru import logger

# Pipecat logs at DEBUG by default; keep test output readable.
logger.remove()
logger.add(sys.stderr, level="WARNING")

# Property tests stay cheap in CI and reproducible: a fixed number of examples, derandomized
# generation, no example database on disk. The long reliability run lives in tests marked
# `slow`, which set their own example counts.
settings.register_profile(
    "tavus-ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tavus-ci"))

FIXTURES_DIR = Path(__file__).parent / "fixtures"


def fixture_names(kind: str) -> list[str]:
    """Return the sorted file names of ``tests/fixtures/<kind>/*.json``."""
    return sorted(p.name for p in (FIXTURES_DIR / kind).glob("*.json"))


def fixture_text(name: str) -> str:
    """Return the raw text of a fixture, given as ``"<kind>/<file>.json"``."""
    return (FIXTURES_DIR / name).read_text(encoding="utf-8")


def load_fixture(name: str) -> Any:
    """Return the decoded JSON of a fixture, given as ``"<kind>/<file>.json"``."""
    return json.loads(fixture_text(name))


@pytest.fixture(name="load_fixture")
def load_fixture_fixture():
    """The fixture loader, for tests that prefer a pytest fixture to an import."""
    return load_fixture
