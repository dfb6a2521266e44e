"""What the browser tests share: how Chromium is found and launched, and where screenshots go.

A browser is found or installed, never silently missing. In order: `CHROMIUM_PATH`; a system Chromium or
Chrome on PATH (Debian's `chromium`, which `.ci/run` installs); a browser Playwright has already installed;
then one attempt per test session at `playwright install chromium` (it needs the internet). When none
works, every browser test is skipped with one line in the summary saying how to get one, unless
`FMCSA_REQUIRE_BROWSER=1` (`.ci/run` sets it), which turns that skip into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
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
SYSTEM_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
INSTALL_TIMEOUT_S = 300
HOW_TO_GET_ONE = (
    "no Chromium for the browser tests: install one (Debian: apt-get install chromium; elsewhere: "
    ".venv/bin/playwright install chromium) or set CHROMIUM_PATH"
)


def _playwright_browser() -> str | None:
    """The Chromium that Playwright installed into its own cache, if it is there."""
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            path = playwright.chromium.executable_path
    except Exception:  # Playwright's driver could not start: no browser from it either
        return None
    return path if path and Path(path).is_file() else None


def find_browser(
    environ: dict[str, str] | os._Environ[str] = os.environ, *, install: bool = True
) -> str | None:
    """The path of a Chromium to launch, or None: the order of the module docstring."""
    if path := environ.get("CHROMIUM_PATH"):
        return path if Path(path).is_file() else None  # an explicit choice is never second-guessed
    for name in SYSTEM_BROWSERS:
        if found := shutil.which(name, path=environ.get("PATH")):
            return found
    if found := _playwright_browser():
        return found
    if not install:
        return None
    try:
        subprocess.run(
            [sys.executable, "-m", "playwright", "install", "chromium"],
            check=True,
            timeout=INSTALL_TIMEOUT_S,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return _playwright_browser()


@pytest.fixture(scope="session")
def browser_path() -> str:
    """Session scope: found (or installed) once, before any test starts a system for nothing."""
    if importlib.util.find_spec("playwright") is None:
        pytest.fail("playwright is not installed: it is in fmcsa-gateway's `test` extra (root dev group)")
    if path := find_browser():
        return path
    if os.environ.get("FMCSA_REQUIRE_BROWSER") == "1":
        pytest.fail(f"FMCSA_REQUIRE_BROWSER=1 and {HOW_TO_GET_ONE}")
    pytest.skip(HOW_TO_GET_ONE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Every browser test skipped for want of a browser is reported at this file's one place, so the
    summary folds them into one line ("SKIPPED [3] .../conftest.py: no Chromium ...")."""
    report: Any = yield
    if report.skipped and isinstance(report.longrepr, tuple) and HOW_TO_GET_ONE in str(report.longrepr[2]):
        report.longrepr = (__file__, 1, f"Skipped: {HOW_TO_GET_ONE}")
    return report  # type: ignore[no-any-return]


@pytest.fixture
def chromium(browser_path: str) -> dict[str, Any]:
    """Keyword arguments for `playwright.chromium.launch(**chromium)`."""
    return {"executable_path": browser_path, "args": CHROMIUM_FLAGS}


@pytest.fixture
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: FMCSA_TEST_ARTIFACTS, else a folder of pytest's temporary tree (a test never
    writes into the working tree; `./fmcsa screenshots` sets the variable and copies the README's)."""
    configured = os.environ.get("FMCSA_TEST_ARTIFACTS")
    folder = Path(configured) if configured else tmp_path_factory.getbasetemp() / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
