"""The company page's change timeline and CSA trend chart in a real browser (Playwright on Chromium),
against every service started by `fmcsa_cli.launcher.Launcher` with the sandbox as the upstream.

99700001 is synced once (its baseline: no change, one point per BASIC), the page is opened on it, the
sandbox's data version is bumped and the company synced again from the page: without a reload the
timeline shows Unsafe Driving's percentile 45 -> 58 and its alert starting, and the chart's point of
that BASIC is redrawn at 58 (csa's as-of is the month the snapshot was seen in, so a bump within one
month replaces the month's point). A screenshot is saved in the `artifacts` folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fmcsa_embedded import free_port
from fmcsa_runtime.tokens import Role, mint

SECRET = "e2e-secret-of-the-change-feed-page-0123456789"
DOT = "99700001"

SERVICES = ["sandbox", "status", "csa", "violations", "inspections", "authority", "scheduler", "gateway"]
"""What the feed needs; the scheduler only releases in-flight markers (it publishes nothing here)."""

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """Every service; the scheduler publishes nothing (it only releases answered requests' markers)."""
    from fmcsa_cli.launcher import Launcher

    for key in list(os.environ):
        if key.startswith("FMCSA_") and key != "FMCSA_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    launcher = Launcher(
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        services=SERVICES,
        extra_env={
            "FMCSA_JWT_SECRET": SECRET,
            "FMCSA_SCHEDULER_ENABLED": "false",
            "FMCSA_CSA_RATE_PER_S": "50",
            "FMCSA_VIOLATIONS_RATE_PER_S": "50",
            "FMCSA_INSPECTIONS_RATE_PER_S": "50",
        },
    )
    try:
        launcher.start()
        assert launcher.sandbox_url is not None
        yield launcher.gateway_url, launcher.sandbox_url
    finally:
        launcher.stop(grace_s=10)


async def test_the_timeline_and_the_trend_chart_follow_a_bump_live(
    system: tuple[str, str], artifacts: Path, chromium: dict[str, Any], wait_until: Any
) -> None:
    from playwright.async_api import async_playwright, expect

    gateway, sandbox = system
    token = mint(SECRET, role=Role.ADMIN, subject="e2e-admin")
    async with httpx.AsyncClient(
        base_url=gateway, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as api:

        async def ready() -> bool:
            try:
                return (await api.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(ready, what="the gateway ready", within_s=60)
        assert (await api.post("/api/companies", json={"dot_number": DOT})).status_code == 201
        started = (await api.post("/api/sync/trigger", json={"dot_numbers": [DOT]})).json()["started"]

        async def baseline() -> bool:
            log = (await api.get("/api/sync/log", params={"dot": DOT})).json()["items"]
            done = {e["request_id"] for e in log if e["status"] == "succeeded"}
            return {s["request_id"] for s in started} <= done

        await wait_until(baseline, what="the baseline sync", within_s=60)

    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**chromium)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
            await page.goto(gateway)
            await page.fill("#token", token)
            await page.click("#sign-in-form button")
            await expect(page.locator("#live")).to_have_text("live", timeout=15_000)
            await page.evaluate("window.__notReloaded = true")

            await page.locator(f"#row-{DOT} a.dot").click()
            detail = page.locator(f"#detail-{DOT}")
            timeline = detail.locator(f"#timeline-{DOT}")
            await expect(timeline).to_contain_text("No changes seen yet", timeout=15_000)
            export = detail.locator('a[data-export="changes-csv"]')  # the company's changes as CSV
            await expect(export).to_have_attribute("href", f"/api/changes?dot={DOT}&format=csv")
            driving = detail.locator(f'#trend-chart-{DOT} g.series[data-subject="unsafe_driving"]')
            await expect(driving.locator("circle")).to_have_count(1)
            await expect(driving.locator("circle title")).to_contain_text(": 45")
            await expect(detail.locator('[data-next-due="csa"]')).to_contain_text("within 6 h")

            async with httpx.AsyncClient(timeout=5) as client:
                bumped = await client.post(f"{sandbox}/_sandbox/bump")
            assert bumped.json()["data_version"] == 2
            await detail.locator("form button[type=submit]").first.click()
            await expect(page.locator("#toast")).to_contain_text("started 4 request(s)")

            alert = timeline.locator('tr[data-kind="basic_alert_started"][data-subject="unsafe_driving"]')
            await expect(alert).to_have_count(1, timeout=60_000)
            moved = timeline.locator('tr[data-kind="basic_percentile_changed"]')
            await expect(moved.locator(".before")).to_contain_text("percentile: 45")
            await expect(moved.locator(".after")).to_contain_text("percentile: 58")
            await expect(timeline.locator("tbody tr")).to_have_count(2)
            # csa's as-of is the month the snapshot was seen in: the new run redraws this month's point
            await expect(driving.locator("circle title")).to_contain_text(": 58")
            await expect(driving.locator("circle")).to_have_count(1)
            assert await page.evaluate("window.__notReloaded === true"), "the page was reloaded"

            await page.screenshot(path=str(artifacts / "gateway-change-feed.png"), full_page=True)
        finally:
            await browser.close()
    assert not problems, problems
