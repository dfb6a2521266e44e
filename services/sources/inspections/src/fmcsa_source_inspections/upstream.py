"""SaferWebAPI client: one `GET /v2/usdot/snapshot/{dot}` per sync, under a rate limit, a cap on
calls in flight, timeouts and short in-process retries; every answer becomes a fetch or a Failure.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Self

import httpx
import stamina
import structlog

from fmcsa_events.identifiers import InvalidDotNumber, parse_dot
from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import redact, register_secret, sample
from fmcsa_source_inspections.domain import (
    InspectionsFetch,
    RetryPolicy,
    handed_back,
    inline_wait_s,
    parse_response,
)
from fmcsa_source_inspections.settings import Settings
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import PacedCall, UpstreamPace

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
SNAPSHOT_PATH = "v2/usdot/snapshot/{dot}"


def utc_now() -> datetime:
    return datetime.now(UTC)


class _RetryableAnswer(Exception):
    """Carries a failure through stamina's retry loop; its repr names the kind only (no detail)."""

    def __init__(self, failure: Failure, *, retry: int, wait_s: float | None) -> None:
        super().__init__(failure.kind.value)
        self.failure = failure
        self.retry = retry
        self.wait_s = wait_s


def _backoff_hook(error: Exception) -> bool | float:
    # stamina asks this after each failed attempt: a float is the wait before the next one.
    if isinstance(error, _RetryableAnswer) and error.wait_s is not None:
        return error.wait_s
    return False


def make_pace(settings: Settings) -> UpstreamPace:
    """The pace of every call, starting at `rate_per_s` with `burst_headroom_s` (`fmcsa_source_kit.pacing`);
    this process's alone until the service binds it to the bus.
    """
    return UpstreamPace(
        source="inspections",
        base_url=str(settings.base_url),
        ceiling=settings.rate_per_s,
        burst_s=settings.burst_headroom_s,
    )


class SaferWebClient:
    """Fetches carrier snapshots from SaferWebAPI (or the sandbox, by `base_url`).

    Guarantees: `fetch` never raises for upstream trouble; every HTTP call passes a semaphore of
    `concurrency` and the source's `UpstreamPace` (`fmcsa_source_kit.pacing`: a token taken right before
    the request is written, from a pace shared by the replicas that halves on a 429); no call is made
    for an invalid DOT or without a key; the key travels only in the `x-api-key` header and is
    registered with `redact`, so it reaches no log line, Failure or stored row.
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        owns_http: bool,
        api_key: str | None,
        pace: UpstreamPace,
        concurrency: int,
        policy: RetryPolicy,
        rate_limit_wait_s: float,
        call_timeout_s: float,
        clock: Clock = utc_now,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._http = http
        self._owns_http = owns_http
        self._api_key = api_key
        self._pace = pace
        self._slots = asyncio.Semaphore(concurrency)
        self._policy = policy
        self._rate_limit_wait_s = rate_limit_wait_s
        self._call_timeout_s = call_timeout_s
        self._clock = clock
        self._jitter = jitter

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = utc_now,
        pace: UpstreamPace | None = None,
    ) -> Self:
        """Build the client; an `http` passed in is used as is and left open by `aclose`; a `pace`
        passed in (the service's, shared on the bus) is used instead of a fresh one at `rate_per_s`.
        """
        api_key = settings.api_key.get_secret_value() if settings.api_key is not None else None
        api_key = api_key or None  # an empty variable means "not set"
        register_secret(api_key)
        owns_http = http is None
        if http is None:
            http = httpx.AsyncClient(
                base_url=str(settings.base_url),
                timeout=httpx.Timeout(
                    connect=settings.connect_timeout_s,
                    read=settings.read_timeout_s,
                    write=settings.connect_timeout_s,
                    pool=settings.connect_timeout_s,
                ),
                limits=httpx.Limits(
                    max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
                ),
                headers={"accept": "application/json", "user-agent": "fmcsa-sync/0.1 (inspections)"},
                follow_redirects=False,
            )
        return cls(
            http=http,
            owns_http=owns_http,
            api_key=api_key,
            pace=pace or make_pace(settings),
            concurrency=settings.concurrency,
            policy=RetryPolicy(
                inline_retries=settings.inline_retries,
                inline_wait_max_s=settings.inline_wait_max_s,
                backoff_initial_s=settings.backoff_initial_s,
                retry_after_max_s=settings.retry_after_max_s,
            ),
            rate_limit_wait_s=settings.rate_limit_wait_s,
            # A trickling answer resets the read timeout on every chunk; this bounds the whole call.
            call_timeout_s=settings.connect_timeout_s + settings.read_timeout_s,
            clock=clock,
        )

    @property
    def configured(self) -> bool:
        """True when an API key is set (without one every fetch is `not_configured`, no call made)."""
        return self._api_key is not None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def fetch(self, dot: str) -> InspectionsFetch | Failure:
        """The carrier's current snapshot, or one Failure. Retryable failures with a short wait are
        retried here (at most `inline_retries` times); a longer wait, or a spent budget, returns the
        retryable Failure with `retry_after_s` set for a delayed redelivery.
        """
        try:
            canonical = parse_dot(dot)
        except InvalidDotNumber as error:
            return Failure(
                ErrorKind.INTERNAL,
                retryable=False,
                message="an invalid DOT number reached the inspections client",
                detail=sample(str(error)),
            )
        if self._api_key is None:
            return Failure(
                ErrorKind.NOT_CONFIGURED,
                retryable=False,
                message="SaferWebAPI key is not set (FMCSA_INSPECTIONS_API_KEY)",
            )
        try:
            async for attempt in stamina.retry_context(
                on=_backoff_hook, attempts=self._policy.inline_retries + 1, timeout=None
            ):
                with attempt:
                    result = await self._call(canonical, self._api_key)
                    if isinstance(result, InspectionsFetch):
                        return result
                    retry = attempt.num
                    wait = inline_wait_s(result, retry=retry, policy=self._policy, jitter=self._jitter())
                    if wait is not None:
                        log.info("upstream_retry", kind=result.kind.value, retry=retry, wait_s=round(wait, 3))
                    raise _RetryableAnswer(result, retry=retry, wait_s=wait)
        except _RetryableAnswer as given_up:
            return handed_back(given_up.failure, retry=given_up.retry, policy=self._policy)
        raise AssertionError("unreachable: the retry loop returns or raises")

    async def _call(self, dot: str, api_key: str) -> InspectionsFetch | Failure:
        """One HTTP call, classified. Mapping errors (our bugs) become `internal`."""
        async with self._slots, self._pace.call() as paced:
            answer = await self._get(dot, api_key, paced)
        if isinstance(answer, Failure):
            return answer
        status, headers, body = answer
        try:
            return parse_response(
                status,
                headers,
                body,
                dot,
                self._clock(),
                rate_limit_wait_s=self._rate_limit_wait_s,
                retry_after_max_s=self._policy.retry_after_max_s,
            )
        except Exception as error:  # a bug in mapping code: report it as a value, never crash the sync
            log.exception("inspections_mapping_failed", status=status)
            return Failure(
                ErrorKind.INTERNAL,
                retryable=False,
                message="the inspections client failed to read the answer (a bug)",
                detail=sample(f"{type(error).__name__}: {error}"),
            )

    async def _get(
        self, dot: str, api_key: str, paced: PacedCall
    ) -> tuple[int, httpx.Headers, bytes] | Failure:
        """Send the request and read the body, or the Failure that stopped it. A transport error
        after a 2xx status line means the body was cut short (`invalid_response`, retryable).
        """
        status: int | None = None
        try:
            async with asyncio.timeout(self._call_timeout_s):
                async with self._http.stream(
                    "GET",
                    SNAPSHOT_PATH.format(dot=dot),
                    headers={"x-api-key": api_key},
                    extensions={"trace": paced.trace},
                ) as response:
                    status = response.status_code
                    paced.answered(status, response.headers)
                    return status, response.headers, await response.aread()
        except (httpx.TimeoutException, TimeoutError) as error:
            return _transport_failure(ErrorKind.TIMEOUT, "SaferWebAPI did not answer in time", error, status)
        except httpx.RequestError as error:
            if status is not None and 200 <= status <= 299:
                return _transport_failure(
                    ErrorKind.INVALID_RESPONSE, "SaferWebAPI's answer was cut short", error, status
                )
            return _transport_failure(
                ErrorKind.UPSTREAM_ERROR, "SaferWebAPI could not be reached", error, status
            )


def _transport_failure(kind: ErrorKind, message: str, error: Exception, status: int | None) -> Failure:
    # httpx puts the URL (never the key: it is a header) in some messages; scrub anyway.
    shown = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    prefix = f"HTTP {status}, then " if status is not None else ""
    return Failure(kind, retryable=True, message=message, detail=sample(redact(prefix + shown)))
