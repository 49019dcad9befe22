"""Fixtures every stage's tests share. Each test gets its own data directory so nothing leaks
into the user's cache or between tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "traces" / "samples"


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    path = tmp_path_factory.mktemp("burstlab-data")
    monkeypatch.setenv("BURSTLAB_DATA_DIR", str(path))
    return path


@pytest.fixture
def data_dir(_isolated_data_dir) -> Path:
    """The data directory this test's burstlab calls use (also $BURSTLAB_DATA_DIR)."""
    return _isolated_data_dir


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real trace samples shipped in the package (traces/samples/)."""
    return SAMPLES
