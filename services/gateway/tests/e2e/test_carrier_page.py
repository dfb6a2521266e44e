"""The carrier page and the searchable company list in a real browser (Playwright on Chromium), at desktop
(1280x800) and phone (390x844) sizes, against every service started by `fmcsa_cli.launcher.Launcher`
with the sandbox as the upstream.

99700001 is registered and synced once through the API. Then, at each size: `/carriers/99700001` opened
by URL asks for the token and shows the facts (name, USDOT status, allowed to operate, the risk light
and its reasons, authority, OOS rates beside the national averages) and does again after a reload; its
violations filter by out-of-service; the page and the company list never scroll sideways; searching the
list by name prefix and by docket finds the carrier, with its risk light, and the risk filter keeps or
drops it; its link opens the carrier page in place; and axe-core, injected into each page, reports no
serious or critical violation. The page's export links (changes as CSV and JSON lines) download files
whose bytes are the API's answer. Screenshots go to the `artifacts` folder (pytest's temporary tree, or
FMCSA_TEST_ARTIFACTS); `./fmcsa screenshots` copies two of them into docs/screenshots/ for the README.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fmcsa_embedded import free_port
from fmcsa_runtime.tokens import Role, mint

SECRET = "e2e-secret-of-the-carrier-page-test-0123456789"
DOT = "99700001"
SERVICES = ["sandbox", "status", "csa", "violations", "inspections", "authority", "scheduler", "gateway"]
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SERIOUS = ("serious", "critical")

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]


def axe_source() -> str:
    """axe-core's `axe.min.js`, as the `axe-playwright-python` dev dependency ships it."""
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


async def axe_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each.

    `page.add_script_tag` injects an inline script, which the page's Content Security Policy
    (`script-src 'self'`) blocks; the script's text is evaluated through the DevTools protocol instead,
    which the policy does not govern (the page itself still runs under it).
    """
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(axe_source())
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]


async def no_sideways_scroll(page: Any) -> None:
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: scrollWidth {width[0]} > {width[1]}"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every service, once for both sizes; the scheduler publishes nothing (it only releases markers)."""
    from fmcsa_cli.launcher import Launcher

    saved = {
        key: os.environ.pop(key)
        for key in list(os.environ)
        if key.startswith("FMCSA_")
        and not key.startswith("FMCSA_TEST_")  # the database under test, the screenshots' folder
        and key != "FMCSA_REQUIRE_BROWSER"
    }
    launcher = Launcher(
        data_dir=tmp_path_factory.mktemp("carrier-page") / "data",
        gateway_port=free_port(),
        services=SERVICES,
        extra_env={
            "FMCSA_JWT_SECRET": SECRET,
            "FMCSA_SCHEDULER_ENABLED": "false",
            "FMCSA_CSA_RATE_PER_S": "50",
            "FMCSA_VIOLATIONS_RATE_PER_S": "50",
            "FMCSA_INSPECTIONS_RATE_PER_S": "50",
            "FMCSA_AUTHORITY_RATE_PER_S": "50",
        },
    )
    try:
        launcher.start()
        yield launcher.gateway_url
    finally:
        launcher.stop(grace_s=10)
        os.environ.update(saved)


async def synced_record(gateway: str, token: str, wait_until: Any) -> dict[str, Any]:
    """Register and sync the carrier once (a second call finds it done), then answer its record."""
    async with httpx.AsyncClient(
        base_url=gateway, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as api:

        async def ready() -> bool:
            try:
                return (await api.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(ready, what="the gateway ready", within_s=60)
        registered = await api.post("/api/companies", json={"dot_number": DOT, "name": "Acme Freight"})
        if registered.status_code == 201:
            assert (await api.post("/api/sync/trigger", json={"dot_numbers": [DOT]})).status_code == 202
        record: dict[str, Any] = {}

        async def complete() -> bool:
            answer = await api.get(f"/api/carriers/{DOT}")
            record.update(answer.json())
            groups = ("operation", "authority", "oos_rates", "basics", "violations")
            # the authority group holds csa's statuses before the authority source's dockets arrive
            dockets = (record.get("authority") or {}).get("dockets")
            return answer.status_code == 200 and all(record.get(g) for g in groups) and bool(dockets)

        await wait_until(complete, what="the carrier record from every source", within_s=90)
        return record


async def sign_in(page: Any, token: str) -> None:
    from playwright.async_api import expect

    await expect(page.locator("#sign-in")).to_be_visible()
    await page.fill("#token", token)
    await page.click("#sign-in-form button")
    await expect(page.locator("#who")).to_have_text("e2e-viewer (viewer)")


@pytest.mark.parametrize("size", list(SIZES))
async def test_the_carrier_page_by_url_search_and_no_sideways_scroll(
    size: str, system: str, artifacts: Path, chromium: dict[str, Any], wait_until: Any
) -> None:
    from playwright.async_api import async_playwright, expect

    record = await synced_record(system, mint(SECRET, role=Role.ADMIN, subject="e2e-admin"), wait_until)
    name, light = record["legal_name"], record["risk"]["light"]
    [docket, *_] = record["authority"]["dockets"]
    token = mint(SECRET, role=Role.VIEWER, subject="e2e-viewer")
    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**chromium)
        try:
            page = await browser.new_page(viewport=SIZES[size])
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console: {message.text}")
                    if "Content Security Policy" in message.text or "evalDisallowed" in message.text
                    else None
                ),
            )

            # the carrier page by its URL: the shell asks for the token, then shows the facts first
            await page.goto(f"{system}/carriers/{DOT}")
            for opened in ("by URL", "after a reload"):
                if opened == "after a reload":
                    await page.reload()
                await sign_in(page, token)
                carrier = page.locator(f"#carrier-{DOT}")
                await expect(carrier.locator("#carrier-name")).to_have_text(name, timeout=15_000)
                await expect(page.locator("#admin-view")).to_be_hidden()
                await expect(carrier.locator("#risk .light")).to_have_attribute("data-light", light)
                reasons = record["risk"]["reasons"]
                await expect(carrier.locator("#risk li[data-reason]")).to_have_count(len(reasons))
                await expect(carrier.locator('[data-fact="status"]')).to_have_text(
                    record["operation"]["status"] or "unknown"
                )
                allowed = record["operation"]["allowed_to_operate"]
                await expect(carrier.locator('[data-fact="allowed"]')).to_have_text(
                    "unknown" if allowed is None else "yes" if allowed else "no"
                )
                await expect(carrier.locator('[data-fact="dockets"]')).to_contain_text(docket)
                await expect(carrier.locator('[data-authority="common"]')).to_have_attribute(
                    "data-status", record["authority"]["common"] or "unknown"
                )
                driver = record["oos_rates"]["driver"]
                await expect(carrier.locator('[data-national="driver"]')).to_have_text(
                    f"{driver['national_average']} %"
                )
                await expect(carrier.locator("#basics tbody tr")).to_have_count(
                    len(record["basics"]["items"])
                )
                await expect(carrier.locator("#sync-state tbody tr")).to_have_count(4)
            assert page.url.endswith(f"/carriers/{DOT}")

            # the violations: filtered to out-of-service rows only
            rows = page.locator(f"#violations-table-{DOT} tbody tr[data-oos]")
            await expect(rows.first).to_be_visible(timeout=15_000)
            await page.select_option(f"#violations-{DOT} select[name=oos]", "true")
            await expect(page.locator(f"#violations-{DOT} select[name=oos]")).to_have_value("true")
            await expect(page.locator(f'#violations-table-{DOT} tbody tr[data-oos="no"]')).to_have_count(0)

            await no_sideways_scroll(page)
            assert not await axe_problems(page), await axe_problems(page)
            await page.screenshot(path=str(artifacts / f"gateway-carrier-page-{size}.png"), full_page=True)

            # back to the list in place (the token kept), searched by name prefix and by docket
            await page.locator("#carrier-view a[data-nav]").click()
            await expect(page.locator("#admin-view")).to_be_visible()
            assert page.url.rstrip("/") == system.rstrip("/")
            row = page.locator(f"#row-{DOT}")
            await expect(row).to_be_visible(timeout=15_000)
            for query in (name.split()[0].lower(), docket[:2] + "-" + docket[2:], "zz-no-such-carrier"):
                await page.fill("#search input[name=q]", query)
                await page.press("#search input[name=q]", "Enter")
                if query.startswith("zz"):
                    await expect(row).to_have_count(0)
                    await expect(page.locator("#companies")).to_contain_text("no company matches")
                else:
                    await expect(row).to_be_visible()
                    await expect(row.locator(".light")).to_have_attribute("data-light", light)
                    await expect(row.locator("a.carrier-link")).to_have_text(name)
            await page.fill("#search input[name=q]", "")
            other = next(value for value in ("red", "green") if value != light)
            for chosen, shown in ((light, 1), (other, 0)):
                await page.select_option("#search select[name=risk]", chosen)
                await expect(row).to_have_count(shown)
            await page.select_option("#search select[name=risk]", "")
            await expect(row).to_be_visible()

            await no_sideways_scroll(page)
            assert not await axe_problems(page), await axe_problems(page)
            await page.screenshot(path=str(artifacts / f"gateway-admin-page-{size}.png"), full_page=True)

            # the list's link opens the carrier page in place, at its own URL
            await row.locator("a.carrier-link").click()
            await expect(page.locator(f"#carrier-{DOT} #carrier-name")).to_have_text(name)
            assert page.url.endswith(f"/carriers/{DOT}")
        finally:
            await browser.close()
    assert not problems, problems


async def test_the_carrier_pages_export_links_download_what_the_api_answers(
    system: str, chromium: dict[str, Any], wait_until: Any
) -> None:
    """Each export link of the carrier page (the change feed as CSV and as JSON lines) downloads a file,
    named by the answer's Content-Disposition, whose bytes are the API's answer to the same URL."""
    from playwright.async_api import async_playwright, expect

    await synced_record(system, mint(SECRET, role=Role.ADMIN, subject="e2e-admin"), wait_until)
    token = mint(SECRET, role=Role.VIEWER, subject="e2e-viewer")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**chromium)
        try:
            page = await browser.new_page(viewport=SIZES["desktop"], accept_downloads=True)
            await page.goto(f"{system}/carriers/{DOT}")
            await sign_in(page, token)
            links = page.locator(f"#carrier-{DOT} a[data-export]")
            await expect(links).to_have_count(2, timeout=15_000)
            async with httpx.AsyncClient(
                base_url=system, headers={"Authorization": f"Bearer {token}"}, timeout=10
            ) as api:
                for kind, suffix in (("changes-csv", ".csv"), ("changes-jsonl", ".jsonl")):
                    link = page.locator(f'#carrier-{DOT} a[data-export="{kind}"]')
                    href = await link.get_attribute("href")
                    assert href is not None
                    async with page.expect_download() as downloading:
                        await link.click()
                    download = await downloading.value
                    assert download.suggested_filename.endswith(suffix), download.suggested_filename
                    saved = await download.path()
                    answer = await api.get(href)
                    assert answer.status_code == 200, answer.text
                    assert await asyncio.to_thread(Path(saved).read_bytes) == answer.content
                    if suffix == ".csv":  # a header row at least, even when the feed is empty
                        assert answer.content.splitlines()[0].count(b",") >= 3
        finally:
            await browser.close()


class Cuttable:
    """A TCP relay on loopback between the browser and the gateway that can cut every open connection
    (as a network drop does): the page's EventSource then reconnects through it."""

    def __init__(self, upstream: str) -> None:
        url = httpx.URL(upstream)
        self.host, self.port = url.host, url.port or 80
        self.links: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.links |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.links -= {writer, up_writer}

    def cut(self) -> None:
        for link in list(self.links):
            link.close()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


async def test_the_live_stream_resumes_after_a_reconnect_from_last_event_id(
    system: str, chromium: dict[str, Any], wait_until: Any
) -> None:
    """The list page's event stream is cut (a network drop, by a relay between browser and gateway) and a
    company is registered before it reconnects: the EventSource reconnects with `Last-Event-ID` (the
    hello's position: it got no change yet) and the page shows the company it missed, without a reload."""
    from playwright.async_api import async_playwright, expect

    admin = mint(SECRET, role=Role.ADMIN, subject="e2e-admin")
    await synced_record(system, admin, wait_until)
    missed = "99700003"
    relay = Cuttable(system)
    front = await relay.start()
    streams: list[dict[str, str]] = []
    received: list[tuple[str, str]] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**chromium)
        try:
            page = await browser.new_page(viewport=SIZES["desktop"])
            cdp = await page.context.new_cdp_session(page)
            await cdp.send("Network.enable")
            # what the EventSource got, message by message (DevTools protocol): names and ids
            cdp.on(
                "Network.eventSourceMessageReceived",
                lambda m: received.append((m["eventName"], m["eventId"])),
            )

            async def note(request: Any) -> None:
                if "/api/events" in request.url:
                    streams.append(await request.all_headers())

            page.on("request", note)
            await page.goto(front)
            await sign_in(page, mint(SECRET, role=Role.VIEWER, subject="e2e-viewer"))
            await expect(page.locator(f"#row-{DOT}")).to_be_visible(timeout=15_000)
            await expect(page.locator("#live")).to_have_text("live", timeout=15_000)
            relay.cut()
            await expect(page.locator("#live")).to_have_text("offline", timeout=15_000)
            async with httpx.AsyncClient(
                base_url=system, headers={"Authorization": f"Bearer {admin}"}, timeout=10
            ) as api:
                registered = await api.post("/api/companies", json={"dot_number": missed})
                assert registered.status_code == 201, registered.text
            await expect(page.locator(f"#row-{missed}")).to_be_visible(timeout=15_000)
            await expect(page.locator("#live")).to_have_text("live")
            assert len(streams) >= 2, streams
            assert all("last-event-id" in headers for headers in streams[1:]), streams
            # the resumed stream: its hello, then the registration it missed (replayed, or live)
            hellos = [i for i, (name, _) in enumerate(received) if name == "hello"]
            assert len(hellos) >= 2, received
            assert any(name == "change" for name, _ in received[hellos[1] :]), received
        finally:
            await browser.close()
            await relay.stop()
