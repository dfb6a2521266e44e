"""The client on the kit's retry loop and transport mapping, on httpx's in-process MockTransport (no sockets),
and the retry policy its settings give."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from fmcsa_events.models import ErrorKind
from fmcsa_source_inspections.domain.records import InspectionsFetch
from fmcsa_source_inspections.settings import Settings
from fmcsa_source_inspections.upstream import SaferWebClient
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.upstream import RetryPolicy

NOW = datetime(2025, 11, 4, 12, 0, tzinfo=UTC)
KEY = "unit-test-key-4711"
Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, **overrides: object) -> SaferWebClient:
    settings = Settings(
        **{
            "base_url": "http://upstream.test",
            "api_key": SecretStr(KEY),
            "backoff_initial_s": 0.001,
            "rate_per_s": 1000.0,
            **overrides,
        }
    )
    http = httpx.AsyncClient(base_url="http://upstream.test", transport=httpx.MockTransport(handler))
    return SaferWebClient.from_settings(settings, http=http, clock=lambda: NOW)


class Calls:
    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer.stream, CutShort):
            return httpx.Response(answer.status_code, stream=CutShort())  # a stream is read only once
        return answer


class CutShort(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"usdot": "2847'
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


@pytest.fixture
def snapshot_bytes(examples_dir: Path) -> bytes:
    return (examples_dir / "saferwebapi-snapshot.json").read_bytes()


async def test_the_request_has_the_canonical_dot_in_the_path_and_the_key_in_a_header(
    snapshot_bytes: bytes,
) -> None:
    calls = Calls(httpx.Response(200, content=snapshot_bytes))
    result = await client_for(calls).fetch("02847193")
    assert isinstance(result, InspectionsFetch)
    assert result.retrieved_at == NOW
    [request] = calls.seen
    assert request.url.path == "/v2/usdot/snapshot/2847193"
    assert request.url.query == b""
    assert request.headers["x-api-key"] == KEY


async def test_a_server_error_then_success_is_a_success(snapshot_bytes: bytes) -> None:
    calls = Calls(httpx.Response(503, text="busy"), httpx.Response(200, content=snapshot_bytes))
    assert isinstance(await client_for(calls).fetch("2847193"), InspectionsFetch)
    assert len(calls.seen) == 2


async def test_a_short_retry_after_is_waited_in_process(snapshot_bytes: bytes) -> None:
    calls = Calls(
        httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, content=snapshot_bytes)
    )
    assert isinstance(await client_for(calls).fetch("2847193"), InspectionsFetch)
    assert len(calls.seen) == 2


async def test_a_long_retry_after_is_handed_back_at_once() -> None:
    calls = Calls(httpx.Response(429, headers={"Retry-After": "120"}))
    result = await client_for(calls).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retry_after_s) == (ErrorKind.RATE_LIMITED, 120.0)
    assert len(calls.seen) == 1


@pytest.mark.parametrize("retries", [0, 1, 3])
async def test_retries_stop_at_the_budget_with_a_delay_for_the_bus(retries: int) -> None:
    calls = Calls(httpx.Response(500, text="boom"))
    result = await client_for(calls, inline_retries=retries).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, True)
    assert result.retry_after_s is not None
    assert result.retry_after_s > 0
    assert len(calls.seen) == retries + 1


async def test_final_failures_are_not_retried() -> None:
    calls = Calls(httpx.Response(404, json={"message": "USDOT number not found"}))
    result = await client_for(calls).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable, result.retry_after_s) == (ErrorKind.NOT_FOUND, False, None)
    assert len(calls.seen) == 1


async def test_a_body_cut_short_is_retryable_invalid_response() -> None:
    calls = Calls(httpx.Response(200, stream=CutShort()))
    result = await client_for(calls, inline_retries=1).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.INVALID_RESPONSE, True)
    assert len(calls.seen) == 2


async def test_a_read_timeout_is_a_timeout_handed_back_without_inline_retry() -> None:
    calls = Calls(httpx.ReadTimeout("timed out"))
    result = await client_for(calls).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.TIMEOUT, True)
    assert len(calls.seen) == 1


async def test_a_reset_connection_is_a_retryable_upstream_error() -> None:
    calls = Calls(httpx.ConnectError("connection refused"))
    result = await client_for(calls, inline_retries=2).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, True)
    assert len(calls.seen) == 3


async def test_a_bug_in_mapping_is_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("mapping bug")

    monkeypatch.setattr("fmcsa_source_inspections.upstream.parse_response", broken)
    result = await client_for(Calls(httpx.Response(200, json={}))).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.INTERNAL, False)


async def test_an_empty_key_counts_as_not_set() -> None:
    calls = Calls(httpx.Response(200, content=json.dumps({}).encode()))
    client = client_for(calls, api_key=SecretStr(""))
    assert not client.configured
    result = await client.fetch("2847193")
    assert isinstance(result, Failure)
    assert result.kind is ErrorKind.NOT_CONFIGURED
    assert calls.seen == []


# --- the retry policy the settings give (the kit's `RetryPolicy`) ------------------------------------


def failure(kind: ErrorKind, *, retryable: bool = True, retry_after_s: float | None = None) -> Failure:
    return Failure(kind, retryable=retryable, message="m", retry_after_s=retry_after_s)


def policy(**overrides: object) -> RetryPolicy:
    return client_for(Calls(httpx.Response(500)), **{"backoff_initial_s": 0.5, **overrides}).policy


def test_the_policy_comes_from_the_settings() -> None:
    assert policy() == RetryPolicy(
        inline_retries=2, inline_wait_max_s=5.0, backoff_initial_s=0.5, retry_after_max_s=3600.0
    )
    assert policy(inline_retries=4, inline_wait_max_s=1.5, backoff_initial_s=0.1, retry_after_max_s=90.0) == (
        RetryPolicy(inline_retries=4, inline_wait_max_s=1.5, backoff_initial_s=0.1, retry_after_max_s=90.0)
    )


def test_short_retryable_failures_are_retried_in_process_with_full_jitter() -> None:
    server_error = failure(ErrorKind.UPSTREAM_ERROR)
    assert policy().inline_wait(server_error, 1, 0.0) == 0.0
    assert policy().inline_wait(server_error, 1, 0.5) == 0.25
    assert policy().inline_wait(server_error, 2, 0.5) == 0.5
    assert policy().inline_wait(server_error, 3, 0.5) is None  # budget spent


def test_backoff_never_exceeds_the_inline_ceiling() -> None:
    many = policy(inline_retries=10)
    assert many.inline_wait(failure(ErrorKind.UPSTREAM_ERROR), 10, 0.999) == pytest.approx(4.995)


def test_a_short_retry_after_is_honoured_in_process_and_a_long_one_goes_to_the_bus() -> None:
    assert policy().inline_wait(failure(ErrorKind.RATE_LIMITED, retry_after_s=1.0), 1, 0.9) == 1.0
    assert policy().inline_wait(failure(ErrorKind.RATE_LIMITED, retry_after_s=60.0), 1, 0.0) is None


def test_timeouts_are_not_retried_in_process() -> None:
    assert policy().inline_wait(failure(ErrorKind.TIMEOUT), 1, 0.1) is None


def test_a_retryable_failure_handed_back_always_names_a_delay() -> None:
    for kind in (ErrorKind.UPSTREAM_ERROR, ErrorKind.TIMEOUT, ErrorKind.INVALID_RESPONSE):
        delay = policy().for_bus(failure(kind), 0.5).retry_after_s
        assert delay is not None
        assert 5.0 <= delay <= 10.0  # half to all of twice inline_wait_max_s
    assert policy().for_bus(failure(ErrorKind.RATE_LIMITED, retry_after_s=60.0), 0.5).retry_after_s == 60.0
    final = failure(ErrorKind.NOT_FOUND, retryable=False)
    assert policy().for_bus(final, 0.5) is final
