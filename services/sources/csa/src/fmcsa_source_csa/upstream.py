"""QCMobile client: two calls per sync (carrier, then BASICs), rate-limited, bounded, briefly retried.

Guarantees:
- `fetch` never raises for upstream trouble: every answer becomes a `CsaFetch` or one `Failure`.
  An invalid DOT (`internal`) or a missing webKey (`not_configured`) makes no call at all.
- Every HTTP call takes a slot of a semaphore of `concurrency`, then a token of the source's
  `UpstreamPace` (`fmcsa_source_kit.pacing`: reserved at its gate, taken right before the request is
  written; the pace is shared by the replicas and halves on a 429 or `Retry-After`), so calls never
  bunch up behind a busy event loop and equal limits serve no 429s.
- A retryable failure is retried in process (`stamina`, full-jitter backoff, or `Retry-After` when
  sent) while its wait is at most `inline_wait_max_s`, up to `inline_retries` times; timeouts go
  straight back (the attempt already took long). What is left returns with `retry_after_s` set:
  the runner naks the message with that delay.
- The webKey travels only in httpx `params=`; no URL, request or header is ever logged or copied
  into a `Failure`, and the key is registered with `redact` as a second guard.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Self, TypeVar

import httpx
import stamina
import structlog
from pydantic import SecretStr

from fmcsa_events.identifiers import InvalidDotNumber, parse_dot
from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import redact, register_secret
from fmcsa_source_csa.domain import (
    Call,
    CsaFetch,
    assemble,
    failure_for_exception,
    parse_basics,
    parse_carrier,
)
from fmcsa_source_csa.settings import Settings
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import UpstreamPace

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
_T = TypeVar("_T")
Parser = Callable[[int, Mapping[str, str], bytes, str, datetime], "_T | Failure"]

BACKOFF_BASE_S = 0.5
"""First in-process backoff ceiling; doubles per retry (full jitter: a uniform draw below it)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def make_pace(settings: Settings) -> UpstreamPace:
    """The pace of every call, starting at `rate_per_s` (`fmcsa_source_kit.pacing`); this process's alone
    until the service binds it to the bus.
    """
    return UpstreamPace(source="csa", base_url=str(settings.base_url), ceiling=settings.rate_per_s)


class _RetryableAnswer(Exception):
    """Carries a retryable failure through stamina's retry loop; never leaves this module."""

    def __init__(self, failure: Failure, wait_s: float) -> None:
        super().__init__(failure.kind.value)
        self.failure = failure
        self.wait_s = wait_s

    def __repr__(self) -> str:  # stamina logs the repr: the kind and wait are enough
        return f"_RetryableAnswer({self.failure.kind.value}, wait_s={self.wait_s:.2f})"


def _wait_of(error: Exception) -> bool | float:
    return error.wait_s if isinstance(error, _RetryableAnswer) else False


class QCMobileClient:
    """Fetches one carrier's facts and BASICs from QCMobile (or the sandbox at the same paths)."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        web_key: SecretStr | None,
        pace: UpstreamPace,
        concurrency: int = 8,
        inline_retries: int = 2,
        inline_wait_max_s: float = 5.0,
        retry_after_max_s: float = 3600.0,
        clock: Clock = utc_now,
        owns_http: bool = True,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._web_key = web_key
        self._pace = pace
        self._semaphore = asyncio.Semaphore(concurrency)
        self._inline_retries = inline_retries
        self._inline_wait_max_s = inline_wait_max_s
        self._retry_after_max_s = retry_after_max_s
        self._clock = clock
        self._owns_http = owns_http

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = utc_now,
        pace: UpstreamPace | None = None,
    ) -> Self:
        """Build the client from settings; an `http` client passed in is used as is and not closed, a
        `pace` passed in (the service's, shared on the bus) is used instead of a fresh one.

        Registers the webKey with `redact`; warns once (here, at start) when it is missing.
        """
        web_key = settings.web_key
        if web_key is not None and web_key.get_secret_value():
            register_secret(web_key.get_secret_value())
        else:
            web_key = None
            log.warning(
                "csa_web_key_missing", hint="set FMCSA_CSA_WEB_KEY; every request answers not_configured"
            )
        owns_http = http is None
        if http is None:
            http = httpx.AsyncClient(
                timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
                limits=httpx.Limits(
                    max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
                ),
                headers={"Accept": "application/json", "User-Agent": "fmcsa-sync-csa"},
                follow_redirects=False,
            )
        return cls(
            http=http,
            base_url=str(settings.base_url),
            web_key=web_key,
            pace=pace or make_pace(settings),
            concurrency=settings.concurrency,
            inline_retries=settings.inline_retries,
            inline_wait_max_s=settings.inline_wait_max_s,
            retry_after_max_s=settings.retry_after_max_s,
            clock=clock,
            owns_http=owns_http,
        )

    @property
    def configured(self) -> bool:
        """True when a webKey is set (a wrong one is found out only by asking)."""
        return self._web_key is not None

    async def aclose(self) -> None:
        """Close the HTTP client if this client made it."""
        if self._owns_http:
            await self._http.aclose()

    async def fetch(self, dot: str) -> CsaFetch | Failure:
        """Fetch one carrier: `/carriers/{dot}` first (unknown -> `not_found`, stop), then `/basics`."""
        try:
            canonical = parse_dot(dot)
        except InvalidDotNumber as error:
            return Failure(
                ErrorKind.INTERNAL,
                retryable=False,
                message="csa source was asked for an invalid DOT number; nothing was sent",
                detail=redact(str(error)),
            )
        if self._web_key is None:
            return Failure(
                ErrorKind.NOT_CONFIGURED,
                retryable=False,
                message="QCMobile webKey is not set (FMCSA_CSA_WEB_KEY); nothing was sent",
            )
        carrier = await self._call(
            Call.CARRIER,
            f"carriers/{canonical}",
            canonical,
            partial(parse_carrier, retry_after_max_s=self._retry_after_max_s),
        )
        if isinstance(carrier, Failure):
            return carrier
        basics = await self._call(
            Call.BASICS,
            f"carriers/{canonical}/basics",
            canonical,
            partial(parse_basics, retry_after_max_s=self._retry_after_max_s),
        )
        if isinstance(basics, Failure):
            return basics
        fetched = assemble(canonical, carrier, basics, self._clock())
        if fetched.notes:
            log.warning("csa_values_unrecognized", dot=canonical, notes=list(fetched.notes))
        return fetched

    async def _call(self, call: Call, path: str, dot: str, parse: Parser[_T]) -> _T | Failure:
        # stamina logs each scheduled retry; bind which call it was so those lines say so.
        with structlog.contextvars.bound_contextvars(qcmobile_call=call.value, dot=dot):
            return await self._call_with_retries(call, path, dot, parse)

    async def _call_with_retries(self, call: Call, path: str, dot: str, parse: Parser[_T]) -> _T | Failure:
        try:
            async for attempt in stamina.retry_context(
                on=_wait_of,
                attempts=self._inline_retries + 1,
                timeout=None,
                wait_max=max(self._inline_wait_max_s, 0.0),
            ):
                with attempt:
                    result = await self._once(call, path, dot, parse)
                    if isinstance(result, Failure) and result.retryable:
                        wait = self._inline_wait(result, attempt.num)
                        if wait is None or attempt.num > self._inline_retries:
                            return self._for_bus(result)
                        raise _RetryableAnswer(result, wait)
                    return result
        except _RetryableAnswer as exhausted:
            return self._for_bus(exhausted.failure)
        raise AssertionError("stamina ended without a result")  # pragma: no cover

    def _inline_wait(self, failure: Failure, attempt: int) -> float | None:
        """Seconds to wait before retrying in process, or None when the wait belongs to the bus."""
        if failure.kind is ErrorKind.TIMEOUT:
            return None
        if failure.retry_after_s is not None:
            return failure.retry_after_s if failure.retry_after_s <= self._inline_wait_max_s else None
        ceiling = min(self._inline_wait_max_s, BACKOFF_BASE_S * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)

    def _for_bus(self, failure: Failure) -> Failure:
        """Give a retryable failure the delay the runner should nak with."""
        if failure.retry_after_s is not None:
            return failure
        base = 2.0 * max(1.0, self._inline_wait_max_s)
        delay = min(self._retry_after_max_s, random.uniform(0.5 * base, base))
        return replace(failure, retry_after_s=delay)

    async def _once(self, call: Call, path: str, dot: str, parse: Parser[_T]) -> _T | Failure:
        assert self._web_key is not None
        params = {"webKey": self._web_key.get_secret_value()}
        try:
            async with self._semaphore, self._pace.call() as paced:
                response = await self._http.get(
                    f"{self._base_url}/{path}", params=params, extensions={"trace": paced.trace}
                )
                paced.answered(response.status_code, response.headers)
        except httpx.TimeoutException as error:
            return self._transport_failure(call, ErrorKind.TIMEOUT, "QCMobile did not answer in time", error)
        except httpx.TransportError as error:
            return self._transport_failure(
                call, ErrorKind.UPSTREAM_ERROR, "QCMobile could not be reached or hung up", error
            )
        except httpx.HTTPError as error:  # e.g. a body that fails its content-encoding
            return self._transport_failure(
                call, ErrorKind.INVALID_RESPONSE, "QCMobile answer could not be read", error
            )
        try:
            return parse(response.status_code, response.headers, response.content, dot, self._clock())
        except Exception as error:  # a bug in mapping code must answer `internal`, not kill the handler
            log.error("csa_mapping_failed", call=call.value, dot=dot, error=type(error).__name__)
            return failure_for_exception(call, error)

    @staticmethod
    def _transport_failure(call: Call, kind: ErrorKind, message: str, error: Exception) -> Failure:
        # httpx exception text can carry the request URL, query string included: scrub it.
        detail = redact(f"call={call.value}; {type(error).__name__}: {error}")[:500]
        return Failure(kind, retryable=True, message=message, detail=detail)
