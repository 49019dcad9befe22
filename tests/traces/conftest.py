"""Helpers for the traces tests: the hand-written fixtures folder (tests/fixtures/README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def fixture_copy(tmp_path):
    """Copy a hand-written fixture to `tmp_path/<name>` (so it carries an official file name)."""

    def copy(fixture: str, name: str | None = None, subdir: str | None = None) -> Path:
        folder = tmp_path / subdir if subdir else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / (name or fixture)
        shutil.copyfile(FIXTURES / fixture, dest)
        return dest

    return copy
