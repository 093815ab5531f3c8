"""Shared fixtures: a fresh archive in a temporary folder, and media generated at test time."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from archive import open_archive


@pytest.fixture
def rng():
    return random.Random(42)


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "tcd-data"
    path.mkdir()
    return path


@pytest.fixture
def archive(home):
    arch = open_archive(home, env={})
    yield arch
    arch.catalog.close()
