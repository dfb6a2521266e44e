"""The Socrata client over real HTTP against the sandbox: paging, magic DOTs, every error kind, tokens,
the mid-read refresh, secret scrubbing, and the rate limit matched to the sandbox's."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import structlog

from fmcsa_embedded import sandbox_process
from fmcsa_events.models import ErrorKind
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import client_bucket
from fmcsa_source_violations.domain.model import ViolationsFetch
from fmcsa_source_violations.settings import Settings
from fmcsa_source_violations.store import Store
from fmcsa_source_violations.upstream import SocrataClient

HEALTHY = "2847193"
UNKNOWN = "99000001"
TWICE_429 = "99200001"
ROWS_2500 = "99500001"
SANDBOX_TOKEN = "sandbox-app-token"
SENTINEL = "sentinel-token-7c1e0b9a"


async def admin(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.request(method, f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json()


async def violations_stats(base: str) -> dict[str, Any]:
    stats: dict[str, Any] = (await admin(base, "GET", "stats"))["sources"]["violations"]
    return stats


def settings_for(base: str, **overrides: Any) -> Settings:
    return Settings.model_validate({"base_url": base, "app_token": SANDBOX_TOKEN, **overrides})


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[SocrataClient]:
    made = SocrataClient.from_settings(settings_for(sandbox_url))
    try:
        yield made
    finally:
        await made.aclose()


def fetched(result: ViolationsFetch | Failure) -> ViolationsFetch:
    assert isinstance(result, ViolationsFetch), result
    return result


def failed(result: ViolationsFetch | Failure) -> Failure:
    assert isinstance(result, Failure), result
    return result


# --- reads ---------------------------------------------------------------------------------------------


async def test_a_healthy_carrier_is_read_with_unique_keys_and_an_aware_as_of(client: SocrataClient) -> None:
    result = fetched(await client.fetch(HEALTHY))
    assert result.dot == HEALTHY
    assert result.records, "the sandbox gives every healthy carrier some violations"
    assert {v.dot_number for v in result.records} == {int(HEALTHY)}
    assert len({v.key for v in result.records}) == len(result.records)
    assert result.upstream_as_of is not None
    assert result.upstream_as_of.tzinfo is not None
    assert result.retrieved_at.tzinfo is not None


async def test_the_same_carrier_reads_the_same_twice(client: SocrataClient) -> None:
    first = fetched(await client.fetch(HEALTHY))
    second = fetched(await client.fetch(HEALTHY))
    assert first.records == second.records


async def test_an_unknown_carrier_is_a_success_with_zero_records(
    sandbox_url: str, client: SocrataClient
) -> None:
    result = fetched(await client.fetch(UNKNOWN))
    assert (result.records, result.pages) == ((), 1)
    assert (await violations_stats(sandbox_url))["requests"] == 1


async def test_a_padded_dot_is_sent_in_canonical_form(sandbox_url: str, client: SocrataClient) -> None:
    padded = fetched(await client.fetch("0" + HEALTHY))
    assert padded.dot == HEALTHY
    assert padded.records
    seen = (await admin(sandbox_url, "GET", "stats"))["requests_seen"]
    assert any(f"dot_number={HEALTHY}&" in line for line in seen)
    assert not any("dot_number=0" in line or "where" in line.lower() for line in seen)


async def test_2500_rows_are_read_in_three_pages_and_stop_on_the_short_one(
    sandbox_url: str, client: SocrataClient
) -> None:
    result = fetched(await client.fetch(ROWS_2500))
    assert (len(result.records), result.pages) == (2500, 3)
    assert len({v.key for v in result.records}) == 2500
    assert (await violations_stats(sandbox_url))["requests"] == 3


async def test_a_smaller_page_size_reads_every_row_too(sandbox_url: str) -> None:
    small = SocrataClient.from_settings(settings_for(sandbox_url, page_size=500))
    try:
        result = fetched(await small.fetch(ROWS_2500))
    finally:
        await small.aclose()
    # 2500 rows in pages of 500: five full pages and an empty sixth that proves the end
    assert (len(result.records), result.pages) == (2500, 6)


async def test_the_page_guard_fails_as_invalid_response(sandbox_url: str) -> None:
    guarded = SocrataClient.from_settings(settings_for(sandbox_url, max_pages=2))
    try:
        result = failed(await guarded.fetch(ROWS_2500))
    finally:
        await guarded.aclose()
    assert (result.kind, result.retryable) == (ErrorKind.INVALID_RESPONSE, False)
    assert (await violations_stats(sandbox_url))["requests"] == 2


async def test_two_429s_with_retry_after_1_are_absorbed_in_process(
    sandbox_url: str, client: SocrataClient
) -> None:
    started = time.monotonic()
    result = fetched(await client.fetch(TWICE_429))
    elapsed = time.monotonic() - started
    assert result.records
    assert (await violations_stats(sandbox_url))["requests"] == 3
    assert elapsed >= 1.9, "each Retry-After: 1 was waited"
    # the next sync meets its two 429s again and absorbs them again
    assert isinstance(await client.fetch(TWICE_429), ViolationsFetch)


async def test_without_inline_retries_the_429_goes_back_with_its_retry_after(sandbox_url: str) -> None:
    eager = SocrataClient.from_settings(settings_for(sandbox_url, inline_retries=0))
    try:
        result = failed(await eager.fetch(TWICE_429))
    finally:
        await eager.aclose()
    assert (result.kind, result.retryable, result.retry_after_s) == (ErrorKind.RATE_LIMITED, True, 1.0)


async def test_an_invalid_dot_is_internal_and_sends_nothing(sandbox_url: str, client: SocrataClient) -> None:
    for bad in ["", "123456789", "12a", "1' OR '1'='1", "12&$where=1=1", "\uff11\uff12\uff13", "123\n", "0"]:
        result = failed(await client.fetch(bad))
        assert (result.kind, result.retryable) == (ErrorKind.INTERNAL, False)
    assert (await violations_stats(sandbox_url))["requests"] == 0


# --- tokens ----------------------------------------------------------------------------------------------


async def test_no_token_is_served_anonymously(sandbox_url: str) -> None:
    anonymous = SocrataClient.from_settings(Settings.model_validate({"base_url": sandbox_url}))
    try:
        assert anonymous.configured is True
        assert anonymous.anonymous is True
        assert fetched(await anonymous.fetch(HEALTHY)).records
    finally:
        await anonymous.aclose()


async def test_a_wrong_token_is_not_configured(sandbox_url: str) -> None:
    wrong = SocrataClient.from_settings(settings_for(sandbox_url, app_token="not-the-sandbox-token"))
    try:
        assert wrong.anonymous is False
        result = failed(await wrong.fetch(HEALTHY))
    finally:
        await wrong.aclose()
    assert (result.kind, result.retryable) == (ErrorKind.NOT_CONFIGURED, False)
    assert "permission_denied" in result.detail


async def test_the_token_travels_as_a_header_never_in_the_url(
    sandbox_url: str, client: SocrataClient
) -> None:
    fetched(await client.fetch(HEALTHY))
    seen = (await admin(sandbox_url, "GET", "stats"))["requests_seen"]
    assert seen
    assert not any("app_token" in line for line in seen)


# --- faults ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("violations_p_5xx", ErrorKind.UPSTREAM_ERROR),
        ("violations_p_429", ErrorKind.RATE_LIMITED),
        ("violations_p_malformed", ErrorKind.INVALID_RESPONSE),
        ("violations_p_202", ErrorKind.UPSTREAM_ERROR),
    ],
)
async def test_a_fault_on_every_call_ends_retryable_with_a_delay(
    sandbox_url: str, fault: str, kind: ErrorKind
) -> None:
    await admin(sandbox_url, "PUT", "faults", {fault: 1.0})
    eager = SocrataClient.from_settings(settings_for(sandbox_url, inline_retries=0))
    try:
        result = failed(await eager.fetch(HEALTHY))
    finally:
        await eager.aclose()
    assert (result.kind, result.retryable) == (kind, True)
    assert result.retry_after_s is not None
    assert result.retry_after_s > 0
    assert "status=" in result.detail or kind is ErrorKind.INVALID_RESPONSE


async def test_inline_retries_absorb_a_fault_that_passes(sandbox_url: str) -> None:
    # The sandbox's dice are unseeded, so the odds make either way of failing negligible: at 50% and
    # 5 DOTs, all 9 calls of a page failing was about 1% of runs; now it is 60 * 0.2**9 < 4e-5 (a page
    # each), and no fault at all among 60 calls is 0.8**60 < 2e-6.
    await admin(sandbox_url, "PUT", "faults", {"violations_p_5xx": 0.2})
    patient = SocrataClient.from_settings(
        settings_for(sandbox_url, inline_retries=8, inline_wait_max_s=0.2, rate_per_s=50)
    )
    try:
        results = await asyncio.gather(*(patient.fetch(str(dot)) for dot in range(1_000_001, 1_000_061)))
    finally:
        await patient.aclose()
    assert all(isinstance(result, ViolationsFetch) for result in results), results
    assert (await violations_stats(sandbox_url))["faults"]["5xx"] > 0


async def test_a_hang_is_a_retryable_timeout(sandbox_url: str) -> None:
    await admin(sandbox_url, "PUT", "faults", {"violations_p_hang": 1.0})
    impatient = SocrataClient.from_settings(settings_for(sandbox_url, read_timeout_s=0.5))
    try:
        started = time.monotonic()
        result = failed(await impatient.fetch(HEALTHY))
        elapsed = time.monotonic() - started
    finally:
        await impatient.aclose()
    assert (result.kind, result.retryable) == (ErrorKind.TIMEOUT, True)
    assert elapsed < 5, "a timeout is not retried in process"


async def test_another_dataset_is_a_final_upstream_error(sandbox_url: str) -> None:
    lost = SocrataClient.from_settings(settings_for(sandbox_url, dataset="8mt8-2mdx"))
    try:
        result = failed(await lost.fetch(HEALTHY))
    finally:
        await lost.aclose()
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, False)
    assert "dataset.missing" in result.detail


async def test_a_refused_connection_is_a_retryable_upstream_error(unused_port: int) -> None:
    nowhere = SocrataClient.from_settings(settings_for(f"http://127.0.0.1:{unused_port}", inline_retries=0))
    try:
        result = failed(await nowhere.fetch(HEALTHY))
    finally:
        await nowhere.aclose()
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, True)


# --- the monthly refresh in the middle of a read -----------------------------------------------------------


class BumpAfterFirstPage(httpx.AsyncBaseTransport):
    """Real HTTP to the sandbox; after `times` answers to `$offset=0` it bumps the data version."""

    def __init__(self, base: str, *, times: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._base = base
        self.left = times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.params.get("$offset") == "0" and self.left > 0:
            await response.aread()
            self.left -= 1
            await admin(self._base, "POST", "bump")
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_refresh_between_pages_restarts_the_read_once(sandbox_url: str) -> None:
    before = fetched(await _fetch_with(sandbox_url, BumpAfterFirstPage(sandbox_url, times=0)))
    result = fetched(await _fetch_with(sandbox_url, BumpAfterFirstPage(sandbox_url, times=1)))
    assert len(result.records) == 2500
    assert result.upstream_as_of is not None
    assert before.upstream_as_of is not None
    assert result.upstream_as_of > before.upstream_as_of, "the restarted read is all of the new version"
    # 3 pages, bump, page 2 seen changed -> restart: 3 more pages
    assert (await violations_stats(sandbox_url))["requests"] == 3 + 2 + 3


async def test_a_refresh_during_the_restarted_read_too_fails_retryable(sandbox_url: str) -> None:
    result = failed(await _fetch_with(sandbox_url, BumpAfterFirstPage(sandbox_url, times=2)))
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, True)
    assert result.retry_after_s is not None


async def _fetch_with(base: str, transport: httpx.AsyncBaseTransport) -> ViolationsFetch | Failure:
    async with httpx.AsyncClient(transport=transport) as http:
        client = SocrataClient.from_settings(settings_for(base), http=http)
        return await client.fetch(ROWS_2500)


# --- secrets ---------------------------------------------------------------------------------------------


@pytest.fixture
def sentinel_sandbox(tmp_path: Path) -> Iterator[str]:
    with sandbox_process(tmp_path, {"FMCSA_SANDBOX_SOCRATA_APP_TOKEN": SENTINEL}) as url:
        yield url


async def test_the_sentinel_token_is_in_no_log_failure_or_stored_row(
    sentinel_sandbox: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outcomes: list[ViolationsFetch | Failure] = []
    with structlog.testing.capture_logs() as events:
        good = SocrataClient.from_settings(
            settings_for(sentinel_sandbox, app_token=SENTINEL, inline_retries=1)
        )
        try:
            outcomes.append(await good.fetch(HEALTHY))
            outcomes.append(await good.fetch("bad dot"))
            await admin(sentinel_sandbox, "PUT", "faults", {"violations_p_5xx": 1.0})
            outcomes.append(await good.fetch(HEALTHY))
            await admin(sentinel_sandbox, "PUT", "faults", {"violations_p_5xx": 0.0, "violations_p_429": 1.0})
            outcomes.append(await good.fetch(HEALTHY))
            await admin(
                sentinel_sandbox, "PUT", "faults", {"violations_p_429": 0.0, "violations_p_malformed": 1.0}
            )
            outcomes.append(await good.fetch(HEALTHY))
        finally:
            await good.aclose()
        wrong = SocrataClient.from_settings(settings_for(sentinel_sandbox, app_token=SENTINEL + "-wrong"))
        try:
            outcomes.append(await wrong.fetch(HEALTHY))
        finally:
            await wrong.aclose()
    stored = fetched(outcomes[0])
    kinds = [o.kind for o in outcomes[1:] if isinstance(o, Failure)]
    assert kinds == [
        ErrorKind.INTERNAL,
        ErrorKind.UPSTREAM_ERROR,
        ErrorKind.RATE_LIMITED,
        ErrorKind.INVALID_RESPONSE,
        ErrorKind.NOT_CONFIGURED,
    ]
    for failure in outcomes[1:]:
        assert isinstance(failure, Failure)
        assert SENTINEL not in failure.message
        assert SENTINEL not in failure.detail
        assert SENTINEL not in repr(failure)
    assert SENTINEL not in caplog.text
    assert SENTINEL not in repr(events)
    database = tmp_path / "violations.sqlite3"
    store = await Store.connect(f"sqlite:///{database}")
    try:
        await store.upsert(stored, request_id=uuid4())
    finally:
        await store.close()
    assert SENTINEL.encode() not in database.read_bytes()
    seen = (await admin(sentinel_sandbox, "GET", "stats"))["requests_seen"]
    assert not any(SENTINEL in line for line in seen)


# --- the rate limit ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "carriers"), [(2.0, 12), (10.0, 50)])
async def test_at_the_sandbox_rate_the_client_is_served_no_429(
    sandbox_url: str, rate: float, carriers: int
) -> None:
    await admin(sandbox_url, "PUT", "faults", {"violations_rate_per_s": rate})
    await admin(sandbox_url, "POST", "reset")
    limited = SocrataClient.from_settings(
        settings_for(sandbox_url, rate_per_s=rate, concurrency=8, inline_retries=0)
    )
    dots = [str(dot) for dot in range(1_000_001, 1_000_001 + carriers)]
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(limited.fetch(dot) for dot in dots))
        elapsed = time.monotonic() - started
    finally:
        await limited.aclose()
    stats = await violations_stats(sandbox_url)
    failures = [r for r in results if isinstance(r, Failure)]
    requests = stats["requests"]
    burst, _ = client_bucket(rate)  # served at once; the rest at the drain rate
    steady = (requests - burst) / elapsed
    print(
        f"\nrate figure: limit {rate}/s, {requests} requests in {elapsed:.2f}s "
        f"(overall {requests / elapsed:.2f}/s), after the client's burst of {burst:g}: {steady:.2f}/s "
        f"({steady / rate:.0%} of the limit), served_429={stats['served_429']}, "
        f"max_per_s={stats['max_per_s']}"
    )
    assert failures == []
    assert stats["served_429"] == 0
