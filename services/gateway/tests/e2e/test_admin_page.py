"""The admin page in a real browser (Playwright on Chromium) against the whole system started by
`fmcsa_cli.launcher.Launcher`: nats-server, the sandbox upstream, the three sources, the projector, the
scheduler and the gateway, each its own process.

Sign in with a token, register a company, trigger it, and watch its three badges turn to success
without a reload (server-sent events); submit an invalid schedule and see the reason, then a valid one;
import a CSV file: its preview shows the refused row, then it registers the new company.
A screenshot is saved in the `artifacts` folder (pytest's temporary tree, or FMCSA_TEST_ARTIFACTS).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fmcsa_embedded import free_port
from fmcsa_runtime.tokens import Role, mint

SECRET = "e2e-secret-of-the-admin-page-test-0123456789"
DOT = "2847193"
IMPORTED = "2847194"

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]


@pytest.fixture
def system(tmp_path: Path) -> Iterator[str]:
    from fmcsa_cli.launcher import Launcher

    launcher = Launcher(
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        extra_env={"FMCSA_JWT_SECRET": SECRET, "FMCSA_LOG_LEVEL": "INFO"},
    )
    try:
        launcher.start()
        yield launcher.gateway_url
    finally:
        launcher.stop(grace_s=10)


async def test_sign_in_register_trigger_and_watch_the_badges_turn_green(
    system: str, artifacts: Path, chromium: dict[str, Any], wait_until: Any
) -> None:
    from playwright.async_api import async_playwright, expect

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.get(f"{system}/ready")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(ready, what="the gateway ready", within_s=60)
    token = mint(SECRET, role=Role.ADMIN, subject="e2e-admin")
    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**chromium)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
            # the Content Security Policy (script-src 'self', no eval) must block nothing the page does
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console: {message.text}")
                    if "Content Security Policy" in message.text or "evalDisallowed" in message.text
                    else None
                ),
            )
            await page.goto(system)

            await page.fill("#token", "not-a-token")
            await page.click("#sign-in-form button")
            await expect(page.locator("#sign-in-error")).to_contain_text("Not signed in")
            await page.fill("#token", token)
            await page.click("#sign-in-form button")
            await expect(page.locator("#who")).to_have_text("e2e-admin (admin)")
            await expect(page.locator("#live")).to_have_text("live", timeout=15_000)
            await page.evaluate("window.__notReloaded = true")
            # the token is in no script-readable place: the stream's cookie is the server's, HttpOnly
            readable = await page.evaluate(
                "document.cookie + JSON.stringify(sessionStorage) + JSON.stringify(localStorage)"
            )
            assert token not in readable
            [cookie] = [c for c in await page.context.cookies() if c["name"] == "fmcsa_token"]
            assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"], cookie["path"]) == (
                True,
                True,
                "Strict",
                "/api/events",
            )

            await page.fill("#register input[name=dot_number]", DOT)
            await page.fill("#register input[name=name]", "Acme Freight")
            await page.click("#register button")
            await expect(page.locator("#toast")).to_contain_text(f"registered {DOT}")
            row = page.locator(f"#row-{DOT}")
            await expect(row).to_be_visible(timeout=15_000)

            await row.locator("button[data-trigger]").click()
            await expect(page.locator("#toast")).to_contain_text("started 4 request(s)")
            for source in ("csa", "violations", "inspections", "authority"):
                badge = page.locator(f'#row-{DOT} .badge[data-source="{source}"]')
                await expect(badge).to_have_attribute("data-state", "succeeded", timeout=90_000)
            assert await page.evaluate("window.__notReloaded === true"), "the page was reloaded"

            await row.locator("a.dot").click()
            detail = page.locator(f"#detail-{DOT}")
            await expect(detail).to_contain_text("all sources healthy", timeout=15_000)
            await expect(detail.locator("table.log tbody tr")).to_have_count(4)
            await expect(page.locator('a[data-export="companies-csv"]')).to_be_visible()
            export = detail.locator('a[data-export="sync-log-csv"]')
            await expect(export).to_have_attribute("href", f"/api/sync/log?dot={DOT}&format=csv")
            async with page.expect_download() as downloading:
                await export.click()  # the page fetches it with the bearer token, then saves it
            download = await downloading.value
            assert download.suggested_filename == "sync-log.csv"
            saved = (await asyncio.to_thread(Path(await download.path()).read_text)).splitlines()
            assert saved[0].startswith("request_id,dot_number,source,status,")
            assert len(saved) == 1 + 4  # the header and the company's four requests

            form = page.locator("#schedule-csa")
            await form.locator("input[value=interval]").check()
            await form.locator("input[name=interval_minutes]").fill("4")
            await form.locator("button[type=submit]").click()
            error = page.locator('[data-field-error="csa"]')
            await expect(error).to_contain_text("interval_minutes must be 5 to 1440, got 4")
            form = page.locator("#schedule-csa")
            await form.locator("input[name=interval_minutes]").fill("30")
            await form.locator("button[type=submit]").click()
            await expect(page.locator('[data-saved="csa"]')).to_contain_text("saved by e2e-admin")
            await expect(page.locator('[data-field-error="csa"]')).to_have_count(0)

            # a CSV import from the page: a preview (a dry run, each refused row with its line), then register
            await page.set_input_files(
                "#import-form input[type=file]",
                files=[
                    {
                        "name": "more.csv",
                        "mimeType": "text/csv",
                        "buffer": f"dot_number,name\n{IMPORTED},Beta Lines\nabc,Bad\n{DOT},Again\n".encode(),
                    }
                ],
            )
            await page.click("#import-form button[value=preview]")
            summary = page.locator("#import-summary")
            await expect(summary).to_have_attribute("data-registered", "no")
            await expect(summary).to_have_attribute("data-accepted", "1")
            await expect(summary).to_have_attribute("data-duplicate", "1")
            await expect(summary.locator('tr[data-line="3"]')).to_contain_text("abc")
            await expect(page.locator(f"#row-{IMPORTED}")).to_have_count(0)
            await page.click("#import-register")
            await expect(summary).to_have_attribute("data-registered", "yes")
            await expect(page.locator(f"#row-{IMPORTED}")).to_be_visible(timeout=15_000)

            await page.screenshot(path=str(artifacts / "gateway-admin-page.png"), full_page=True)
        finally:
            await browser.close()
    assert not problems, problems
