"""What the client promises whatever the transport does: the exact query, the token only as a header,
nothing sent for a bad DOT, and no exception escaping `fetch`. (Real HTTP is in tests/integration.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
import structlog

from fmcsa_events.models import ErrorKind
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.upstream import Answer
from fmcsa_source_violations.domain.model import ViolationsFetch
from fmcsa_source_violations.settings import Settings
from fmcsa_source_violations.upstream import SocrataClient, _rows_updated_at

Handler = Callable[[httpx.Request], httpx.Response]


def client_with(handler: Handler, **settings: object) -> tuple[SocrataClient, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    made = SocrataClient.from_settings(
        Settings.model_validate({"base_url": "https://socrata.test", "rate_per_s": 1000, **settings}),
        http=http,
    )
    return made, sent


def empty(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[], headers={"Last-Modified": "Tue, 21 Oct 2025 09:12:44 GMT"})


async def test_the_query_is_the_equality_filter_with_stable_paging_and_nothing_else() -> None:
    client, sent = client_with(empty, page_size=250)
    result = await client.fetch("00123")
    assert isinstance(result, ViolationsFetch)
    (request,) = sent
    assert request.url.path == "/resource/8mt8-2mdr.json"
    assert dict(request.url.params) == {
        "dot_number": "123",
        "$select": ":*,*",
        "$order": ":id",
        "$limit": "250",
        "$offset": "0",
    }


async def test_the_token_is_sent_as_x_app_token_only() -> None:
    client, sent = client_with(empty, app_token="tok-5678-secret")
    await client.fetch("123")
    (request,) = sent
    assert request.headers["X-App-Token"] == "tok-5678-secret"
    assert "tok-5678-secret" not in str(request.url)
    assert "app_token" not in str(request.url)


async def test_without_a_token_no_token_header_is_sent() -> None:
    client, sent = client_with(empty)
    assert client.configured is True
    assert client.anonymous is True
    await client.fetch("123")
    assert "X-App-Token" not in sent[0].headers


@pytest.mark.parametrize("dot", ["", "123456789", "1' OR '1'='1", "12 3", "-1", "0"])
async def test_a_bad_dot_sends_nothing(dot: str) -> None:
    client, sent = client_with(empty)
    result = await client.fetch(dot)
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.INTERNAL, False)
    assert sent == []


async def test_an_unexpected_exception_becomes_an_internal_failure() -> None:
    def explode(_: httpx.Request) -> httpx.Response:
        raise ZeroDivisionError("a bug somewhere below us")

    client, _ = client_with(explode)
    with structlog.testing.capture_logs() as logs:
        result = await client.fetch("123")
    assert [entry["event"] for entry in logs] == ["violations_client_bug"]
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.INTERNAL, False)
    assert "ZeroDivisionError" in result.detail


async def test_a_long_retry_after_goes_back_to_the_bus_without_waiting() -> None:
    def limited(_: httpx.Request) -> httpx.Response:
        return httpx.Response(429, text="Too Many Requests", headers={"Retry-After": "120"})

    client, sent = client_with(limited)
    result = await client.fetch("123")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable, result.retry_after_s) == (ErrorKind.RATE_LIMITED, True, 120.0)
    assert len(sent) == 1


async def test_a_final_failure_is_not_retried() -> None:
    client, sent = client_with(lambda _: httpx.Response(400, json={"errorCode": "query.soql.type-mismatch"}))
    result = await client.fetch("123")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, False)
    assert len(sent) == 1


@pytest.mark.parametrize("status", [400, 403, 404, 414])
async def test_a_final_answer_is_sent_once_and_leaves_without_a_delay(status: int) -> None:
    client, sent = client_with(lambda _: httpx.Response(status, json={"code": "x"}), app_token="t")
    result = await client.fetch("123")
    assert isinstance(result, Failure)
    assert result.retryable is False
    assert result.retry_after_s is None
    assert len(sent) == 1


async def test_a_timeout_is_handed_back_to_the_bus_at_once() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("the read timed out", request=request)

    client, sent = client_with(slow, app_token="tok-5678-secret")
    result = await client.fetch("123")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.TIMEOUT, True)
    assert result.retry_after_s is not None
    assert result.retry_after_s > 0
    assert len(sent) == 1
    assert "tok-5678-secret" not in result.detail


async def test_the_doctor_probe_is_one_call_of_the_first_page_and_nothing_for_a_bad_dot() -> None:
    rows = [{"unique_id": "1"}]  # a row of the wrong shape: the probe runs the service's parser
    client, sent = client_with(lambda _: httpx.Response(200, json=rows), page_size=5)
    result = await client.first_page("0123")
    assert isinstance(result, Failure)
    assert result.kind is ErrorKind.INVALID_RESPONSE
    (request,) = sent
    assert dict(request.url.params) == {
        "dot_number": "123",
        "$select": ":*,*",
        "$order": ":id",
        "$limit": "5",
        "$offset": "0",
    }
    bad = await client.first_page("12a")
    assert isinstance(bad, Failure)
    assert bad.kind is ErrorKind.INTERNAL
    assert len(sent) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            200,
            b'{"id":"8mt8-2mdr","rowsUpdatedAt":1761037964}',
            datetime(2025, 10, 21, 9, 12, 44, tzinfo=UTC),
        ),
        (200, b'{"id":"8mt8-2mdr"}', None),
        (200, b'{"rowsUpdatedAt":"1761037964"}', None),
        (200, b'{"rowsUpdatedAt":true}', None),
        (200, b"[]", None),
        (200, b"not json", None),
        (404, b'{"code":"not_found"}', None),
    ],
)
def test_the_dataset_metadata_gives_rows_updated_at_or_nothing(
    status: int, body: bytes, expected: datetime | None
) -> None:
    answer = Answer(status, httpx.Headers(), body, datetime(2026, 1, 1, tzinfo=UTC))
    parsed = _rows_updated_at(answer)
    assert (None if isinstance(parsed, Failure) else parsed) == expected
