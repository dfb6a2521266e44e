"""The kit's upstream client over an in-memory transport and a real pace: edge checks, credential
placement, the one retry policy and the hand-back to the bus, transport failures and parser bugs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest
import stamina

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.retry_after import parse_retry_after
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import UpstreamPace
from fmcsa_source_kit.upstream import Answer, Auth, RetryPolicy, UpstreamClient

KEY = "kit-unit-sentinel-credential-7c2e"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
DOT = "1234567"
Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


@pytest.fixture(autouse=True)
def no_backoff_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):  # keep the policy's attempt counts, drop sleeps
        yield


class Recorder:
    """The upstream: records every request it is sent and answers with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.handler(request)
        return await answer if isinstance(answer, Awaitable) else answer


def answers(*responses: httpx.Response) -> Handler:
    """Answer with `responses` in order, then with the last one for ever."""
    remaining = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return handle


def body_or_failure(answer: Answer) -> bytes | Failure:
    """A source's parser in small: 2xx is the body, 429 is rate_limited with its Retry-After, 5xx is
    a retryable upstream_error, anything else a final one.
    """
    if answer.status == 429:
        wait = parse_retry_after(answer.headers.get("retry-after"), now=answer.at, ceiling_s=3600)
        return Failure(ErrorKind.RATE_LIMITED, retryable=True, message="429", retry_after_s=wait)
    if answer.status >= 500:
        return Failure(ErrorKind.UPSTREAM_ERROR, retryable=True, message=f"HTTP {answer.status}")
    if answer.status >= 300:
        return Failure(ErrorKind.UPSTREAM_ERROR, retryable=False, message=f"HTTP {answer.status}")
    return answer.body


def make_client(
    recorder: Recorder,
    *,
    auth: Auth | None = None,
    credential: str | None = KEY,
    policy: RetryPolicy | None = None,
    call_timeout_s: float = 5.0,
    pace: UpstreamPace | None = None,
) -> UpstreamClient:
    return UpstreamClient(
        upstream="kit-test",
        http=httpx.AsyncClient(base_url="http://upstream.test/api", transport=httpx.MockTransport(recorder)),
        auth=auth or Auth(setting="FMCSA_KIT_KEY", param="webKey"),
        credential=credential,
        pace=pace or UpstreamPace(source="kit", base_url="http://upstream.test/api", ceiling=1000.0),
        concurrency=4,
        policy=policy or RetryPolicy(inline_retries=2, inline_wait_max_s=5.0),
        call_timeout_s=call_timeout_s,
        clock=lambda: NOW,
        jitter=lambda: 0.5,
    )


async def fetch(client: UpstreamClient, dot: str = DOT) -> bytes | Failure:
    checked = client.check(dot)
    if isinstance(checked, Failure):
        return checked
    return await client.get(f"carriers/{checked}", body_or_failure)


def failed(result: object, kind: ErrorKind, *, retryable: bool) -> Failure:
    assert isinstance(result, Failure), result
    assert (result.kind, result.retryable) == (kind, retryable), result
    return result


# --- edge checks: no call at all ------------------------------------------------------------------


@pytest.mark.parametrize("dot", ["", "123456789", "12a", " 123", "0", "-1", "١٢٣"])
async def test_a_value_that_is_no_dot_number_is_internal_and_nothing_is_sent(dot: str) -> None:
    recorder = Recorder(answers(httpx.Response(200, content=b"ok")))
    failure = failed(await fetch(make_client(recorder), dot), ErrorKind.INTERNAL, retryable=False)
    assert recorder.requests == []
    assert KEY not in f"{failure.message} {failure.detail}"


def test_a_dot_number_is_checked_to_its_canonical_form() -> None:
    client = make_client(Recorder(answers(httpx.Response(200))))
    assert client.check("02847193") == "2847193"


@pytest.mark.parametrize("credential", [None, ""])
async def test_a_required_credential_that_is_unset_is_not_configured_and_nothing_is_sent(
    credential: str | None,
) -> None:
    recorder = Recorder(answers(httpx.Response(200, content=b"ok")))
    client = make_client(recorder, credential=credential)
    failure = failed(await fetch(client), ErrorKind.NOT_CONFIGURED, retryable=False)
    assert "FMCSA_KIT_KEY" in failure.message
    assert (client.configured, client.anonymous) == (False, True)
    assert recorder.requests == []


async def test_an_optional_credential_that_is_unset_calls_anonymously() -> None:
    recorder = Recorder(answers(httpx.Response(200, content=b"rows")))
    auth = Auth(setting="FMCSA_KIT_TOKEN", header="X-App-Token", required=False)
    client = make_client(recorder, auth=auth, credential=None)
    assert (client.configured, client.anonymous) == (True, True)
    assert await fetch(client) == b"rows"
    [request] = recorder.requests
    assert "x-app-token" not in request.headers
    assert request.url.params == httpx.QueryParams()


# --- the credential goes where Auth says and nowhere else -----------------------------------------


async def test_a_query_parameter_credential_travels_only_in_that_parameter() -> None:
    recorder = Recorder(answers(httpx.Response(200, content=b"ok")))
    client = make_client(recorder, auth=Auth(setting="FMCSA_KIT_KEY", param="webKey"))
    await client.get("carriers/1234567", body_or_failure, params={"size": "10"})
    [request] = recorder.requests
    assert dict(request.url.params) == {"size": "10", "webKey": KEY}
    assert request.url.path == "/api/carriers/1234567"
    assert all(KEY not in value for value in request.headers.values())


async def test_a_header_credential_travels_only_in_that_header() -> None:
    recorder = Recorder(answers(httpx.Response(200, content=b"ok")))
    client = make_client(recorder, auth=Auth(setting="FMCSA_KIT_KEY", header="x-api-key"))
    assert client.anonymous is False
    await client.get("carriers/1234567", body_or_failure)
    [request] = recorder.requests
    assert request.headers["x-api-key"] == KEY
    assert KEY not in str(request.url)
    assert [name for name, value in request.headers.items() if KEY in value] == ["x-api-key"]


def test_a_credential_travels_in_exactly_one_place() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Auth(setting="X", header="x-api-key", param="key")
    with pytest.raises(ValueError, match="exactly one"):
        Auth(setting="X")


@pytest.mark.parametrize(
    "error",
    [
        lambda request: httpx.ConnectError(f"could not connect for {request.url}", request=request),
        lambda request: httpx.ReadTimeout(f"timed out reading {request.url}", request=request),
        lambda request: httpx.RemoteProtocolError(
            f"peer closed {request.url} {dict(request.headers)}", request=request
        ),
    ],
    ids=["connect", "timeout", "protocol"],
)
@pytest.mark.parametrize("auth", [Auth(setting="K", param="webKey"), Auth(setting="K", header="x-api-key")])
async def test_a_transport_failure_never_carries_the_credential(
    error: Callable[[httpx.Request], Exception], auth: Auth
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error(request)

    recorder = Recorder(fail)
    result = await fetch(make_client(recorder, auth=auth))
    assert isinstance(result, Failure)
    assert result.retryable
    assert recorder.requests
    assert KEY not in f"{result.message} {result.detail} {result!r}"
    assert result.detail  # the error is named, scrubbed
    if auth.param is not None and result.kind is not ErrorKind.TIMEOUT:
        assert "webKey=***" in result.detail


# --- one retry policy: in process while short, then back to the bus --------------------------------


async def test_a_short_retry_after_is_retried_in_process() -> None:
    recorder = Recorder(
        answers(httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, content=b"ok"))
    )
    assert await fetch(make_client(recorder)) == b"ok"
    assert len(recorder.requests) == 2


def test_a_short_retry_after_is_the_wait_in_process() -> None:
    policy = RetryPolicy(inline_retries=2, inline_wait_max_s=5.0)
    rate_limited = Failure(ErrorKind.RATE_LIMITED, retryable=True, message="429", retry_after_s=2.0)
    assert policy.inline_wait(rate_limited, 1, jitter=0.9) == 2.0
    assert policy.inline_wait(rate_limited, 3, jitter=0.9) is None  # the budget is spent


async def test_a_long_retry_after_is_handed_back_at_once_with_that_delay() -> None:
    recorder = Recorder(answers(httpx.Response(429, headers={"Retry-After": "120"})))
    failure = failed(await fetch(make_client(recorder)), ErrorKind.RATE_LIMITED, retryable=True)
    assert failure.retry_after_s == 120.0
    assert len(recorder.requests) == 1


async def test_a_retry_after_just_above_the_inline_limit_goes_to_the_bus() -> None:
    recorder = Recorder(answers(httpx.Response(429, headers={"Retry-After": "6"})))
    failure = failed(await fetch(make_client(recorder)), ErrorKind.RATE_LIMITED, retryable=True)
    assert failure.retry_after_s == 6.0
    assert len(recorder.requests) == 1


async def test_a_timeout_is_handed_back_at_once_without_an_inline_retry() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    recorder = Recorder(hang)
    failure = failed(await fetch(make_client(recorder)), ErrorKind.TIMEOUT, retryable=True)
    assert len(recorder.requests) == 1
    assert failure.retry_after_s is not None
    assert 5.0 <= failure.retry_after_s <= 10.0  # half to all of twice inline_wait_max_s


async def test_an_answer_slower_than_the_call_timeout_is_a_timeout_handed_back_at_once() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)  # an upstream that answers long after the call's time limit
        return httpx.Response(200, content=b"late")

    recorder = Recorder(slow)
    started = asyncio.get_running_loop().time()
    result = await fetch(make_client(recorder, call_timeout_s=0.05))
    failure = failed(result, ErrorKind.TIMEOUT, retryable=True)
    assert asyncio.get_running_loop().time() - started < 2
    assert len(recorder.requests) == 1
    assert failure.retry_after_s is not None


@pytest.mark.parametrize("inline_retries", [0, 1, 2, 3])
async def test_retries_never_exceed_inline_retries(inline_retries: int) -> None:
    recorder = Recorder(answers(httpx.Response(503)))
    client = make_client(recorder, policy=RetryPolicy(inline_retries=inline_retries, inline_wait_max_s=5.0))
    failure = failed(await fetch(client), ErrorKind.UPSTREAM_ERROR, retryable=True)
    assert len(recorder.requests) == inline_retries + 1
    assert failure.retry_after_s is not None


@pytest.mark.parametrize("inline_retries", [0, 2])
async def test_short_retry_afters_never_exceed_inline_retries_either(inline_retries: int) -> None:
    recorder = Recorder(answers(httpx.Response(429, headers={"Retry-After": "1"})))
    client = make_client(recorder, policy=RetryPolicy(inline_retries=inline_retries, inline_wait_max_s=5.0))
    failure = failed(await fetch(client), ErrorKind.RATE_LIMITED, retryable=True)
    assert len(recorder.requests) == inline_retries + 1
    assert failure.retry_after_s == 1.0


async def test_a_passing_failure_retried_in_process_returns_the_answer() -> None:
    recorder = Recorder(answers(httpx.Response(502), httpx.Response(503), httpx.Response(200, content=b"ok")))
    assert await fetch(make_client(recorder)) == b"ok"
    assert len(recorder.requests) == 3


async def test_a_final_failure_is_not_retried_and_gets_no_bus_delay() -> None:
    recorder = Recorder(answers(httpx.Response(403)))
    failure = failed(await fetch(make_client(recorder)), ErrorKind.UPSTREAM_ERROR, retryable=False)
    assert len(recorder.requests) == 1
    assert failure.retry_after_s is None


async def test_retry_false_makes_one_call() -> None:
    recorder = Recorder(answers(httpx.Response(503)))
    result = await make_client(recorder).get("carriers/1234567", body_or_failure, retry=False)
    failed(result, ErrorKind.UPSTREAM_ERROR, retryable=True)
    assert len(recorder.requests) == 1


def test_backoff_waits_grow_within_the_inline_limit_and_the_bus_delay_is_bounded() -> None:
    policy = RetryPolicy(
        inline_retries=5, inline_wait_max_s=2.0, backoff_initial_s=0.5, retry_after_max_s=3.0
    )
    failure = Failure(ErrorKind.UPSTREAM_ERROR, retryable=True, message="HTTP 503")
    waits = [policy.inline_wait(failure, retry, jitter=0.999) for retry in range(1, 6)]
    assert all(wait is not None and wait <= 2.0 for wait in waits)
    assert waits[0] is not None
    assert waits[1] is not None
    assert waits[0] < waits[1]
    assert policy.inline_wait(failure, 6, jitter=0.5) is None
    assert policy.for_bus(failure, jitter=0.999).retry_after_s == 3.0  # clamped to retry_after_max_s
    final = Failure(ErrorKind.NOT_FOUND, retryable=False, message="unknown")
    assert policy.for_bus(final, jitter=0.5) is final


# --- what the parser sees and what it does wrong ---------------------------------------------------


async def test_a_parser_that_raises_is_internal_and_not_retried() -> None:
    def broken(answer: Answer) -> bytes:
        raise KeyError(f"oops {KEY}")

    recorder = Recorder(answers(httpx.Response(200, content=b"ok")))
    result = await make_client(recorder).get("carriers/1234567", broken)
    failure = failed(result, ErrorKind.INTERNAL, retryable=False)
    assert len(recorder.requests) == 1
    assert KEY not in failure.detail
    assert "KeyError" in failure.detail


async def test_the_parser_sees_status_headers_body_and_the_clock() -> None:
    seen: list[Answer] = []

    def keep(answer: Answer) -> int:
        seen.append(answer)
        return answer.status

    recorder = Recorder(answers(httpx.Response(404, headers={"x-thing": "1"}, content=b'{"content": null}')))
    assert await make_client(recorder).get("carriers/1234567", keep) == 404
    [answer] = seen
    assert (answer.status, answer.headers["x-thing"], answer.body, answer.at) == (
        404,
        "1",
        b'{"content": null}',
        NOW,
    )


class CutShort(httpx.AsyncByteStream):
    """A body that stops half way: the peer hangs up after the first chunk."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"content": ['
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


@pytest.mark.parametrize("inline_retries", [0, 2])
async def test_a_2xx_body_cut_short_is_a_retryable_invalid_response(inline_retries: int) -> None:
    recorder = Recorder(lambda request: httpx.Response(200, stream=CutShort()))
    client = make_client(recorder, policy=RetryPolicy(inline_retries=inline_retries, inline_wait_max_s=5.0))
    failure = failed(await fetch(client), ErrorKind.INVALID_RESPONSE, retryable=True)
    assert failure.detail.startswith("HTTP 200, then ")
    assert len(recorder.requests) == inline_retries + 1
    assert failure.retry_after_s is not None


async def test_a_5xx_body_cut_short_is_a_retryable_upstream_error() -> None:
    recorder = Recorder(lambda request: httpx.Response(502, stream=CutShort()))
    failed(await fetch(make_client(recorder)), ErrorKind.UPSTREAM_ERROR, retryable=True)


# --- bounds -----------------------------------------------------------------------------------------


async def test_every_call_is_paced_and_a_429_halves_the_shared_pace() -> None:
    pace = UpstreamPace(source="kit", base_url="http://upstream.test/api", ceiling=1000.0)
    recorder = Recorder(answers(httpx.Response(429, headers={"Retry-After": "120"})))
    failed(await fetch(make_client(recorder, pace=pace)), ErrorKind.RATE_LIMITED, retryable=True)
    assert pace.state.rate == 500.0
    assert pace.state.throttled == 1


async def test_no_more_calls_are_in_flight_than_the_concurrency() -> None:
    in_flight = 0
    most = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)  # hold the slot long enough for the others to queue behind it
        in_flight -= 1
        return httpx.Response(200, content=b"ok")

    client = make_client(Recorder(slow))  # concurrency=4
    results = await asyncio.gather(*(fetch(client) for _ in range(12)))
    assert results == [b"ok"] * 12
    assert most == 4


async def test_the_client_closes_only_an_http_client_it_owns() -> None:
    lent = httpx.AsyncClient()
    pace = UpstreamPace(source="kit", base_url="http://upstream.test/api", ceiling=10.0)
    common = {
        "upstream": "kit-test",
        "auth": Auth(setting="K", param="webKey"),
        "credential": KEY,
        "pace": pace,
        "concurrency": 1,
        "policy": RetryPolicy(),
        "call_timeout_s": 1.0,
    }
    await UpstreamClient(http=lent, owns_http=False, **common).aclose()  # type: ignore[arg-type]
    assert not lent.is_closed
    await UpstreamClient(http=lent, owns_http=True, **common).aclose()  # type: ignore[arg-type]
    assert lent.is_closed
