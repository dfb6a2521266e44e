"""Socrata client for dataset `8mt8-2mdr`: reads one carrier's whole violation window, page by page.

Guarantees: `fetch` never raises for upstream trouble (every answer becomes a `ViolationsFetch` or one
`Failure`); only a validated, canonical DOT reaches the query, and only as the equality filter
`dot_number=<digits>` (never SoQL text); every HTTP call, retries included, passes the concurrency
cap and then the source's `UpstreamPace` (a token reserved at its gate and taken right before the
request is written, from a pace shared by the replicas that halves on a 429 or `Retry-After`; see
`fmcsa_source_kit.pacing`); the app token travels only in the `X-App-Token` header and
never in a log line or a Failure.
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
from pydantic import SecretStr

from fmcsa_events.identifiers import InvalidDotNumber, parse_dot
from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import redact, register_secret, sample
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import UpstreamPace
from fmcsa_source_violations.domain import (
    Page,
    Step,
    ViolationsFetch,
    assemble,
    for_the_bus,
    inline_wait,
    next_step,
    parse_page,
)
from fmcsa_source_violations.settings import Settings

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
USER_AGENT = "fmcsa-sync (violations source)"


def utc_now() -> datetime:
    return datetime.now(UTC)


class _InlineRetry(Exception):
    """Carries a retryable Failure and its wait through stamina; its text holds no secret."""

    def __init__(self, failure: Failure, wait_s: float) -> None:
        super().__init__(f"{failure.kind}: {failure.message}")
        self.failure = failure
        self.wait_s = wait_s


def _backoff(error: Exception) -> bool | float:
    """Stamina hook: retry only our own retryable failures, after exactly the wait we computed."""
    return error.wait_s if isinstance(error, _InlineRetry) else False


def make_pace(settings: Settings) -> UpstreamPace:
    """The pace of every call, starting at `rate_per_s` (`fmcsa_source_kit.pacing`); this process's alone
    until the service binds it to the bus.
    """
    return UpstreamPace(source="violations", base_url=str(settings.base_url), ceiling=settings.rate_per_s)


class SocrataClient:
    """Reads `GET /resource/<dataset>.json?dot_number=..&$order=:id&$limit=..&$offset=..` until a short page.

    A retryable failure is retried in process (Retry-After, else backoff with full jitter) while the
    wait is at most `inline_wait_max_s` and `inline_retries` allow; otherwise it is returned with
    `retry_after_s` set for a delayed redelivery. A Last-Modified that changes between pages restarts
    the read once, then fails retryable.
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        owns_http: bool,
        resource_url: str,
        app_token: SecretStr | None,
        page_size: int,
        max_pages: int,
        rate_per_s: float,
        concurrency: int,
        timeout: httpx.Timeout,
        inline_retries: int,
        inline_wait_max_s: float,
        retry_after_max_s: float,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        pace: UpstreamPace | None = None,
    ) -> None:
        self._http = http
        self._owns_http = owns_http
        self._url = resource_url
        self._token = app_token
        self._page_size = page_size
        self._max_pages = max_pages
        self._pace = pace or UpstreamPace(source="violations", base_url=resource_url, ceiling=rate_per_s)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._timeout = timeout
        self._inline_retries = inline_retries
        self._inline_wait_max_s = inline_wait_max_s
        self._retry_after_max_s = retry_after_max_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if app_token is not None:
            self._headers["X-App-Token"] = app_token.get_secret_value()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = utc_now,
        pace: UpstreamPace | None = None,
    ) -> Self:
        """Build the client; registers the token with `redact`. A passed `http` client is the caller's
        to close; otherwise the client owns one sized to `concurrency`. A `pace` passed in (the
        service's, shared on the bus) is used instead of a fresh one at `rate_per_s`.
        """
        token = settings.app_token
        register_secret(token.get_secret_value() if token is not None else None)
        timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
        owns_http = http is None
        if http is None:
            limits = httpx.Limits(
                max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
            )
            http = httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)
        base = str(settings.base_url).rstrip("/")
        return cls(
            http=http,
            owns_http=owns_http,
            resource_url=f"{base}/resource/{settings.dataset}.json",
            app_token=token,
            page_size=settings.page_size,
            max_pages=settings.max_pages,
            rate_per_s=settings.rate_per_s,
            concurrency=settings.concurrency,
            timeout=timeout,
            inline_retries=settings.inline_retries,
            inline_wait_max_s=settings.inline_wait_max_s,
            retry_after_max_s=settings.retry_after_max_s,
            clock=clock,
            pace=pace or make_pace(settings),
        )

    @property
    def configured(self) -> bool:
        """Always True: Socrata serves anonymous reads, so a missing token is no reason to refuse work."""
        return True

    @property
    def anonymous(self) -> bool:
        """True when no app token is set: reads draw on Socrata's shared per-IP pool (warn once at start)."""
        return self._token is None

    async def fetch(self, dot: str) -> ViolationsFetch | Failure:
        """Every row of one carrier, or one Failure; never raises for upstream trouble.

        An invalid DOT is `internal` (a bug upstream of the client) and sends nothing. `[]` is a
        success with zero records (a clean carrier and an unknown DOT look the same).
        """
        try:
            canonical = parse_dot(dot)
        except InvalidDotNumber as error:
            return Failure(
                ErrorKind.INTERNAL,
                retryable=False,
                message="an invalid DOT number reached the violations client",
                detail=sample(str(error)),
            )
        try:
            return await self._read(canonical)
        except Exception as error:  # a bug in our mapping code: a value, never an escaped exception
            log.exception("violations_client_bug", dot=canonical)
            return Failure(
                ErrorKind.INTERNAL,
                retryable=False,
                message="the violations client failed unexpectedly",
                detail=sample(f"{type(error).__name__}: {error}", limit=500),
            )

    async def first_page(self, dot: str) -> Page | Failure:
        """The first page of a valid DOT's rows, one call, no retry: the cheap probe of `./fmcsa doctor`."""
        return await self._call(parse_dot(dot), offset=0)

    async def aclose(self) -> None:
        """Close the HTTP client if this client made it."""
        if self._owns_http:
            await self._http.aclose()

    async def _read(self, dot: str) -> ViolationsFetch | Failure:
        restarted = False
        while True:
            pages: list[Page] = []
            first_version: str | None = None
            for index in range(self._max_pages):
                page = await self._page(dot, offset=index * self._page_size)
                if isinstance(page, Failure):
                    return page
                if index == 0:
                    first_version = page.version
                step = next_step(
                    page,
                    index=index,
                    first_version=first_version,
                    page_size=self._page_size,
                    max_pages=self._max_pages,
                    restarted=restarted,
                )
                if isinstance(step, Failure):
                    return for_the_bus(step, inline_wait_max_s=self._inline_wait_max_s)
                if step is Step.RESTART:
                    log.warning(
                        "violations_read_restarted", dot=dot, page=index, reason="last_modified_changed"
                    )
                    restarted = True
                    break
                pages.append(page)
                if step is Step.COMPLETE:
                    return assemble(dot, pages, retrieved_at=self._clock())
            else:  # next_step fails at the page guard before this can happen
                return Failure(
                    ErrorKind.INTERNAL, retryable=False, message="paging loop ended without a verdict"
                )

    async def _page(self, dot: str, *, offset: int) -> Page | Failure:
        try:
            async for attempt in stamina.retry_context(
                on=_backoff, attempts=self._inline_retries + 1, timeout=None, wait_max=self._inline_wait_max_s
            ):
                with attempt:
                    result = await self._call(dot, offset=offset)
                    if isinstance(result, Page) or not result.retryable:
                        return result
                    wait = inline_wait(
                        result,
                        retries_done=attempt.num - 1,
                        inline_retries=self._inline_retries,
                        inline_wait_max_s=self._inline_wait_max_s,
                        draw=self._rng.random(),
                    )
                    if wait is None:
                        return for_the_bus(result, inline_wait_max_s=self._inline_wait_max_s)
                    raise _InlineRetry(result, wait)
        except _InlineRetry as spent:
            return for_the_bus(spent.failure, inline_wait_max_s=self._inline_wait_max_s)
        return Failure(ErrorKind.INTERNAL, retryable=False, message="retry loop ended without a result")

    async def _call(self, dot: str, *, offset: int) -> Page | Failure:
        # Equality filter on the validated canonical DOT only: no $where, no SoQL text from input.
        params = {"dot_number": dot, "$order": ":id", "$limit": str(self._page_size), "$offset": str(offset)}
        try:
            async with self._semaphore, self._pace.call() as paced:
                response = await self._http.get(
                    self._url,
                    params=params,
                    headers=self._headers,
                    timeout=self._timeout,
                    extensions={"trace": paced.trace},
                )
                paced.answered(response.status_code, response.headers)
        except httpx.TimeoutException as error:
            return Failure(
                ErrorKind.TIMEOUT,
                retryable=True,
                message="Socrata did not answer in time",
                detail=sample(f"{type(error).__name__} offset={offset}"),
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
            return Failure(
                ErrorKind.INTERNAL,
                retryable=False,
                message="the Socrata URL is not usable",
                detail=sample(f"{type(error).__name__}: {redact(str(error))}"),
            )
        except httpx.HTTPError as error:
            return Failure(
                ErrorKind.UPSTREAM_ERROR,
                retryable=True,
                message="could not reach Socrata (connection refused, reset or broken)",
                detail=sample(f"{type(error).__name__}: {redact(str(error))}"),
            )
        return parse_page(
            response.status_code,
            response.headers,
            response.content,
            dot,
            self._clock(),
            token_sent=self._token is not None,
            retry_after_max_s=self._retry_after_max_s,
        )
