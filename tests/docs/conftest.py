"""Helpers for the docs tests: import a docs/hooks module the way mkdocs does (by path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_hook(name: str):
    path = REPO / "docs" / "hooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"burstlab_docs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_hook():
    """`load_hook("cli_reference")` → the hook module."""
    return _load_hook
