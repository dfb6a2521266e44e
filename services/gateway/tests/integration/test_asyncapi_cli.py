"""The official AsyncAPI CLI validates the document the gateway serves (`/asyncapi.json`).

It runs when `FMCSA_REQUIRE_ASYNCAPI_CLI=1` (CI sets it, and `.ci/run` fetches the pinned CLI first);
otherwise it is skipped, because `npx` would download the CLI from the npm registry. The CLI's usage
analytics are switched off through its own configuration file, kept in the test's directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ASYNCAPI_CLI = "@asyncapi/cli@4.1.1"
"""The pinned CLI (`.ci/run` reads this line): 4.1.1 is the newest that runs on Node 20 (5.x needs 24)."""


@pytest.mark.timeout(600)
async def test_the_served_document_is_valid_under_the_official_asyncapi_cli(
    lone_gateway: Any, tmp_path: Path
) -> None:
    if os.environ.get("FMCSA_REQUIRE_ASYNCAPI_CLI") != "1":
        pytest.skip("AsyncAPI CLI not run: set FMCSA_REQUIRE_ASYNCAPI_CLI=1 (npx fetches it from npm)")
    npx = shutil.which("npx")
    assert npx, "FMCSA_REQUIRE_ASYNCAPI_CLI=1 but npx (Node.js) is not on PATH"
    document = tmp_path / "asyncapi.json"
    document.write_text(json.dumps((await lone_gateway.client.get("/asyncapi.json")).json()))
    analytics = tmp_path / "asyncapi-analytics.json"
    analytics.write_text(
        json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "ci"})
    )
    env = {**os.environ, "ASYNCAPI_METRICS_CONFIG_PATH": str(analytics), "CI": "true"}
    run = await asyncio.to_thread(
        subprocess.run,
        [npx, "--yes", ASYNCAPI_CLI, "validate", str(document), "--fail-severity", "warn"],
        capture_output=True,
        text=True,
        timeout=540,
        env=env,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "is valid" in output, output[-4000:]
