"""The admin page's alert rules and deliveries in a real browser (Playwright on Chromium) against real
processes: nats-server, the sandbox (as the webhook receiver), the projector, the notifier, the gateway.

Create a rule with the page's form, see it listed, backtest it, watch a change's webhook appear as
delivered in the deliveries table, resend it, and see the destination healthy.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import nats
import pytest

from fmcsa_embedded import free_port
from fmcsa_events.bus import Bus
from fmcsa_events.models import CarrierDataChanged, ChangeKind
from fmcsa_runtime.tokens import Role, mint

SECRET = "e2e-secret-of-the-alerts-page-test-0123456789"

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]


@pytest.fixture
def system(tmp_path: Path) -> Iterator[Any]:
    from fmcsa_cli.launcher import Launcher

    launcher = Launcher(
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        services=["sandbox", "status", "notifier", "gateway"],
        extra_env={"FMCSA_JWT_SECRET": SECRET, "FMCSA_LOG_LEVEL": "INFO"},
    )
    try:
        launcher.start()
        yield launcher
    finally:
        launcher.stop(grace_s=10)


async def test_create_backtest_deliver_and_resend_from_the_page(
    system: Any, chromium: dict[str, Any], wait_until: Any
) -> None:
    from playwright.async_api import async_playwright, expect

    gateway = system.gateway_url

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.get(f"{gateway}/ready")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(ready, what="the gateway ready", within_s=60)
    token = mint(SECRET, role=Role.ADMIN, subject="e2e-admin")
    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**chromium)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("pageerror", lambda error: problems.append(str(error)))
            await page.goto(gateway)
            await page.fill("#token", token)
            await page.click("#sign-in-form button")
            await expect(page.locator("#who")).to_have_text("e2e-admin (admin)")

            new = page.locator("#alerts details.needs-admin")
            await new.locator("summary").click()
            form = page.locator("#rule-new")
            await form.locator("input[name=name]").fill("page-rule")
            await form.locator('input[name=kinds][value="safety_rating_changed"]').check()
            await form.locator("textarea[name=urls]").fill(f"{system.sandbox_url}/_sandbox/webhooks/page")
            await form.locator("input[name=secret]").fill("sandbox-webhook-secret")
            await form.locator("button[type=submit]").click()
            await expect(page.locator("#toast")).to_contain_text("saved rule page-rule")
            rule = page.locator('details.rule[data-rule="page-rule"]')
            await expect(rule).to_be_visible(timeout=10_000)

            assert system.nats is not None
            nc = await nats.connect(system.nats.url, **system.bus_admin())
            try:
                await Bus(nc.jetstream(), producer="e2e").publish(
                    CarrierDataChanged(
                        request_id=uuid4(), dot="99700003", source="inspections",
                        kind=ChangeKind.SAFETY_RATING_CHANGED, subject="safety_rating",
                        before={"rating": "S"}, after={"rating": "C"}, observed_at=datetime.now(UTC),
                    )
                )  # fmt: skip
            finally:
                await nc.close()

            await rule.locator("summary").click()
            await rule.locator("form.backtest button").click()
            result = page.locator(".backtest-result")
            await expect(result).to_have_attribute("data-fired", "1", timeout=10_000)

            row = page.locator('#deliveries-list tr[data-status="delivered"]')
            await expect(row).to_have_count(1, timeout=30_000)  # the table refreshes every 10 s
            await expect(result).to_be_visible()
            await row.locator("button").click()
            await expect(page.locator("#toast")).to_contain_text("resend of")
            await expect(page.locator("#deliveries-list li.ok")).to_have_count(1)
        finally:
            await browser.close()
    async with httpx.AsyncClient(timeout=5) as client:
        seen = (await client.get(f"{system.sandbox_url}/_sandbox/webhooks")).json()
    assert all(r["signature_ok"] for r in seen["received"])
    assert not problems, problems
