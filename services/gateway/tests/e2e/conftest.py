"""What the browser tests share: how Chromium is found and launched, and where screenshots go.

Playwright cannot download its browsers here, so the tests launch Debian's `chromium` by its path
(`CHROMIUM_PATH` overrides; `.ci/run` installs the package). A missing browser fails the test with
what to do, it does not skip it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[4]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def chromium() -> dict[str, Any]:
    """Keyword arguments for `playwright.chromium.launch(**chromium)`."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(f"no Chromium at {path}: install Debian's chromium (.ci/run does) or set CHROMIUM_PATH")
    if importlib.util.find_spec("playwright") is None:
        pytest.fail("playwright is not installed: it is in fmcsa-gateway's `test` extra (root dev group)")
    return {"executable_path": path, "args": CHROMIUM_FLAGS}


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go: `test-artifacts/` at the root (git-ignored), or FMCSA_TEST_ARTIFACTS."""
    folder = Path(os.environ.get("FMCSA_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
