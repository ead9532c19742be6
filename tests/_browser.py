"""Render a page in headless Chromium (Debian's ``chromium``) and return the DOM."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def chromium_path() -> str | None:
    """Path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def dump_dom(page: Path, *, timeout: float = 90.0) -> str:
    exe = chromium_path()
    assert exe is not None
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
            f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
            page.resolve().as_uri(),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    return out.stdout


def screenshot(page: Path, png: Path, *, timeout: float = 90.0) -> None:
    exe = chromium_path()
    assert exe is not None
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
            f"--user-data-dir={profile}", "--window-size=1200,2400", f"--screenshot={png}",
            page.resolve().as_uri(),
        ]
        subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)


# In CI (.ci/run installs Debian's chromium) a missing browser is a failure, not a skip.
SKIP_WITHOUT_BROWSER = pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"),
    reason="chromium not installed (install Debian's chromium; CI requires it)",
)
