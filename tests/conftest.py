"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

_HERE = Path(__file__).resolve().parent
# reference data are committed under tests/reference/data (copied from shared/reference with
# provenance); fall back to the shared folder while the copy is being made
_CANDIDATES = [_HERE / "reference", _HERE.parent.parent / "shared" / "reference"]


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Folder holding ``reference.json`` and ``data/*.csv`` (R reference values)."""
    for c in _CANDIDATES:
        if (c / "reference.json").exists():
            return c
    pytest.fail("reference data not found; expected tests/reference/reference.json")


@pytest.fixture(scope="session")
def reference(reference_dir: Path) -> dict:
    """The parsed ``reference.json``."""
    import json

    return json.loads((reference_dir / "reference.json").read_text())


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--skip-slow", action="store_true", default=False,
        help="skip tests marked slow (CI runs them; use this for quick local loops)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--skip-slow"):
        return
    skip = pytest.mark.skip(reason="--skip-slow given")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
