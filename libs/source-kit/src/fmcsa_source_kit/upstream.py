"""One upstream client shape for every source: what is the same whichever FMCSA host a source calls.

A source declares only what differs: its base URL and credential placement (`Auth`), and for each call
a path and a parser from an `Answer` (status, headers, body) to its own value or a `Failure`. This
module does the rest, the same way for every source:

- **Edge checks before any call.** `check(dot)`: a value that is not a DOT number (`parse_dot`) is
  answered `internal` and nothing is sent; a source whose credential is required and unset answers
  `not_configured` and sends nothing.
- **Bounds.** Every HTTP call takes a slot of a semaphore of `concurrency`, then a token of the
  source's `UpstreamPace` (`fmcsa_source_kit.pacing`: shared by the replicas, halves on a 429 or
  `Retry-After`); the whole call, body included, is bounded by `call_timeout_s` (a trickling answer
  resets httpx's read timeout on every chunk).
- **One retry policy** (`RetryPolicy`, on `stamina`, the retry library the sources already use): a
  retryable failure is retried in process while its wait is at most `inline_wait_max_s` (the
  upstream's `Retry-After` when it sent one, else full-jitter exponential backoff from
  `backoff_initial_s`), up to `inline_retries` times; a timeout goes straight back (the attempt
  already took long). What is left is **handed back to the bus**: the failure leaves with
  `retry_after_s` set, and the runner naks the delivery with that delay (`settle`).
- **No secret leaks.** The credential travels only where `Auth` puts it (a header or a query
  parameter), is registered with `redact`, and no URL, request or header is ever logged or copied into
  a `Failure` (transport errors are scrubbed).
- **Never raises for upstream trouble:** every answer becomes the parser's value or one `Failure`; a
  parser that raises (our bug) becomes `internal`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import httpx
import stamina
import structlog
from pydantic import SecretStr

from fmcsa_events.identifiers import InvalidDotNumber, parse_dot
from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import redact, register_secret, sample
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import UpstreamPace

log = structlog.get_logger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer as a parser sees it; `at` is when it was read (the fetch's `retrieved_at`)."""

    status: int
    headers: httpx.Headers
    body: bytes
    at: datetime


Parser = Callable[[Answer], "T | Failure"]


@dataclass(frozen=True, slots=True)
class Auth:
    """Where the credential travels: a request header (`x-api-key`, `X-App-Token`) or a query parameter
    (`webKey`). `required=False` lets a source call anonymously without one (Socrata's app token).
    """

    setting: str
    header: str | None = None
    param: str | None = None
    required: bool = True

    def __post_init__(self) -> None:
        if (self.header is None) == (self.param is None):
            raise ValueError("a credential travels in exactly one of a header and a query parameter")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The one retry policy of every source client (module docstring)."""

    inline_retries: int = 2
    inline_wait_max_s: float = 5.0
    backoff_initial_s: float = 0.5
    retry_after_max_s: float = 3600.0

    def inline_wait(self, failure: Failure, retry: int, jitter: float) -> float | None:
        """Seconds to wait before retry number `retry` (1-based) in process, or None when the wait
        belongs to the bus (a timeout, a `Retry-After` above `inline_wait_max_s`, or the budget spent).
        `jitter` is a uniform draw in [0, 1).
        """
        if retry > self.inline_retries or failure.kind is ErrorKind.TIMEOUT:
            return None
        if failure.retry_after_s is not None:
            return failure.retry_after_s if failure.retry_after_s <= self.inline_wait_max_s else None
        ceiling = min(self.inline_wait_max_s, self.backoff_initial_s * 2 ** (retry - 1))
        return float(jitter * ceiling)

    def for_bus(self, failure: Failure, jitter: float) -> Failure:
        """A retryable failure as handed back: with the delay the runner naks with (the upstream's
        `Retry-After` when it sent one, else half to all of twice `inline_wait_max_s`).
        """
        if not failure.retryable or failure.retry_after_s is not None:
            return failure
        base = 2.0 * max(1.0, self.inline_wait_max_s)
        return replace(failure, retry_after_s=min(self.retry_after_max_s, base * (0.5 + 0.5 * jitter)))


class ClientSettings(Protocol):
    """The settings every source client is built from (each source's `Settings` has them)."""

    @property
    def concurrency(self) -> int: ...

    @property
    def connect_timeout_s(self) -> float: ...

    @property
    def read_timeout_s(self) -> float: ...

    @property
    def inline_retries(self) -> int: ...

    @property
    def inline_wait_max_s(self) -> float: ...

    @property
    def retry_after_max_s(self) -> float: ...


def policy_of(settings: ClientSettings, *, backoff_initial_s: float = 0.5) -> RetryPolicy:
    return RetryPolicy(
        inline_retries=settings.inline_retries,
        inline_wait_max_s=settings.inline_wait_max_s,
        backoff_initial_s=backoff_initial_s,
        retry_after_max_s=settings.retry_after_max_s,
    )


def http_client(settings: ClientSettings, *, base_url: str, user_agent: str) -> httpx.AsyncClient:
    """The httpx client a source uses unless a test passes its own: bounded connections, explicit
    timeouts, no redirects (an upstream that redirects is answered as it is, never followed).
    """
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.connect_timeout_s,
            pool=settings.connect_timeout_s,
        ),
        limits=httpx.Limits(
            max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
        ),
        headers={"accept": "application/json", "user-agent": user_agent},
        follow_redirects=False,
    )


class _Retryable(Exception):
    """Carries a retryable failure through stamina's loop; its repr names the kind only (no detail)."""

    def __init__(self, failure: Failure, wait_s: float) -> None:
        super().__init__(failure.kind.value)
        self.failure = failure
        self.wait_s = wait_s

    def __repr__(self) -> str:  # stamina logs the repr: the kind and wait are enough
        return f"_Retryable({self.failure.kind.value}, wait_s={self.wait_s:.2f})"


def _wait_of(error: Exception) -> bool | float:
    return error.wait_s if isinstance(error, _Retryable) else False


class UpstreamClient:
    """Calls one upstream host for one source (module docstring). Subclass or compose it: a source's
    client adds its calls (`get(path, parse)`) and its `fetch(dot)`.
    """

    def __init__(
        self,
        *,
        upstream: str,
        http: httpx.AsyncClient,
        auth: Auth,
        credential: SecretStr | str | None,
        pace: UpstreamPace,
        concurrency: int,
        policy: RetryPolicy,
        call_timeout_s: float,
        owns_http: bool = True,
        clock: Clock = utc_now,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        secret = credential.get_secret_value() if isinstance(credential, SecretStr) else credential
        self.upstream = upstream
        self._credential = secret or None  # an empty variable means "not set"
        register_secret(self._credential)
        self._http = http
        self._owns_http = owns_http
        self._auth = auth
        self._pace = pace
        self._slots = asyncio.Semaphore(concurrency)
        self.policy = policy
        self._call_timeout_s = call_timeout_s
        self.clock = clock
        self._jitter = jitter

    @property
    def configured(self) -> bool:
        """True when the credential is set, or when the upstream can be called without one."""
        return self._credential is not None or not self._auth.required

    @property
    def anonymous(self) -> bool:
        """True when calls go without a credential (allowed only when `Auth.required` is False)."""
        return self._credential is None

    async def aclose(self) -> None:
        """Close the HTTP client if this client made it."""
        if self._owns_http:
            await self._http.aclose()

    def check(self, dot: str) -> str | Failure:
        """The canonical DOT to ask for, or the Failure that answers the request with no call made."""
        try:
            canonical = parse_dot(dot)
        except InvalidDotNumber as error:
            return Failure(
                ErrorKind.INTERNAL,
                retryable=False,
                message=f"{self.upstream} was to be asked for an invalid DOT number; nothing was sent",
                detail=redact(str(error)),
            )
        if not self.configured:
            return Failure(
                ErrorKind.NOT_CONFIGURED,
                retryable=False,
                message=f"{self.upstream} credential is not set ({self._auth.setting}); nothing was sent",
            )
        return canonical

    async def get(
        self, path: str, parse: Parser[T], *, params: Mapping[str, str] | None = None, retry: bool = True
    ) -> T | Failure:
        """GET `path` (relative to the base URL) and parse the answer, retried in process under the
        policy; what is still retryable at the end leaves with its bus delay. `retry=False` makes one
        call (the doctor's cheap probe).
        """
        if not retry:
            return await self._once(path, parse, params)
        try:
            async for attempt in stamina.retry_context(
                on=_wait_of,
                attempts=self.policy.inline_retries + 1,
                timeout=None,
                wait_max=max(self.policy.inline_wait_max_s, 0.0),
            ):
                with attempt:
                    result = await self._once(path, parse, params)
                    if isinstance(result, Failure) and result.retryable:
                        wait = self.policy.inline_wait(result, attempt.num, self._jitter())
                        if wait is None:
                            return self.policy.for_bus(result, self._jitter())
                        raise _Retryable(result, wait)
                    return result
        except _Retryable as exhausted:
            return self.policy.for_bus(exhausted.failure, self._jitter())
        raise AssertionError("stamina ended without a result")  # pragma: no cover

    async def _once(self, path: str, parse: Parser[T], params: Mapping[str, str] | None) -> T | Failure:
        answer = await self._send(path, params)
        if isinstance(answer, Failure):
            return answer
        try:
            return parse(answer)
        except Exception as error:  # a bug in mapping code answers `internal`, never kills the handler
            log.error("upstream_mapping_failed", upstream=self.upstream, error=type(error).__name__)
            return Failure(
                ErrorKind.INTERNAL,
                retryable=False,
                message=f"the {self.upstream} answer could not be mapped (a bug); see the logs",
                detail=sample(redact(f"{type(error).__name__}: {error}")),
            )

    async def _send(self, path: str, params: Mapping[str, str] | None) -> Answer | Failure:
        query: dict[str, Any] = dict(params or {})
        headers: dict[str, str] = {}
        if self._credential is not None:
            if self._auth.param is not None:
                query[self._auth.param] = self._credential
            else:
                assert self._auth.header is not None
                headers[self._auth.header] = self._credential
        status: int | None = None
        try:
            # the slot and the pace token first; the time bound covers the call alone, body included
            async with (
                self._slots,
                self._pace.call() as paced,
                asyncio.timeout(self._call_timeout_s),
                self._http.stream(
                    "GET", path, params=query, headers=headers, extensions={"trace": paced.trace}
                ) as response,
            ):
                status = response.status_code
                paced.answered(status, response.headers)
                body = await response.aread()
                return Answer(status, response.headers, body, self.clock())
        except (httpx.TimeoutException, TimeoutError) as error:
            return self._transport(ErrorKind.TIMEOUT, "did not answer in time", error, status)
        except httpx.RequestError as error:
            if status is not None and 200 <= status <= 299:
                return self._transport(ErrorKind.INVALID_RESPONSE, "answer was cut short", error, status)
            return self._transport(ErrorKind.UPSTREAM_ERROR, "could not be reached or hung up", error, status)
        except httpx.HTTPError as error:  # e.g. a body that fails its content-encoding
            return self._transport(ErrorKind.INVALID_RESPONSE, "answer could not be read", error, status)

    def _transport(self, kind: ErrorKind, what: str, error: Exception, status: int | None) -> Failure:
        # httpx exception text can carry the request URL, query string included: scrub it.
        shown = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        prefix = f"HTTP {status}, then " if status is not None else ""
        return Failure(
            kind, retryable=True, message=f"{self.upstream} {what}", detail=sample(redact(prefix + shown))
        )
