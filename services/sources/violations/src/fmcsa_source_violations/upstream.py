"""Socrata client for dataset `8mt8-2mdr`: reads one carrier's whole violation window, page by page.

Built on the source kit's `UpstreamClient` (`fmcsa_source_kit.upstream`), which gives every call the
DOT check (nothing is sent for a bad DOT), the concurrency cap, the shared `UpstreamPace`, the whole-call
time bound, the one retry policy (`Retry-After` honoured, short waits in process, longer ones handed back
to the bus) and scrubbed transport failures. What is the violations source's own:

- **the query**: only the validated canonical DOT, and only as the equality filter
  `dot_number=<digits>` (never SoQL text), with stable paging `$order=:id&$limit=..&$offset=..` and the
  system fields (`$select=:*,*`, for `:updated_at`); a batched delta query (`fetch_batch`) is a `$where`
  built only from checked DOTs and a datetime (`domain.delta.where_clause`);
- **the credential**: the optional app token travels only in the `X-App-Token` header (anonymous reads
  are allowed: Socrata serves them from a shared per-IP pool); it is in no log line or Failure;
- **the parser** of an answer (`domain.parse_page`);
- **paging**: offset pages until a short one; a Last-Modified that changes between pages restarts the
  read once, then fails retryable (`domain.next_step`).

`fetch` never raises for upstream trouble: every answer becomes a `ViolationsFetch` or one `Failure`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Self

import httpx
import structlog

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import sample
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import UpstreamPace
from fmcsa_source_kit.upstream import (
    Answer,
    Auth,
    Clock,
    UpstreamClient,
    http_client,
    policy_of,
    utc_now,
)
from fmcsa_source_violations.domain.delta import Batch, per_carrier
from fmcsa_source_violations.domain.model import Page, Step, ViolationsFetch
from fmcsa_source_violations.domain.paging import assemble, next_step
from fmcsa_source_violations.domain.parse import parse_page
from fmcsa_source_violations.settings import Settings

log = structlog.get_logger(__name__)

USER_AGENT = "fmcsa-sync (violations source)"
AUTH = Auth(setting="FMCSA_VIOLATIONS_APP_TOKEN", header="X-App-Token", required=False)
BACKOFF_INITIAL_S = 1.0
"""First step of the in-process exponential backoff (full jitter) when no Retry-After came."""


def make_pace(settings: Settings) -> UpstreamPace:
    """The pace of every call, starting at `rate_per_s` (`fmcsa_source_kit.pacing`); this process's alone
    until the service binds it to the bus.
    """
    return UpstreamPace(source="violations", base_url=str(settings.base_url), ceiling=settings.rate_per_s)


class SocrataClient(UpstreamClient):
    """Reads `GET /resource/<dataset>.json?dot_number=..&$order=:id&$limit=..&$offset=..` until a
    short page.
    """

    _resource: str  # absolute, so an HTTP client a caller passes in needs no base URL
    _view: str  # the dataset's metadata, for `published_at`
    _page_size: int
    _max_pages: int
    _freshness_s: float
    _published: tuple[float, datetime | None] | None = None  # (monotonic time asked, answer)
    _asking: asyncio.Lock | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = utc_now,
        pace: UpstreamPace | None = None,
    ) -> Self:
        """Build the client. A passed `http` client is the caller's to close; otherwise the client owns
        one sized to `concurrency`. A `pace` passed in (the service's, shared on the bus) is used
        instead of a fresh one at `rate_per_s`.
        """
        base = str(settings.base_url).rstrip("/")
        client = cls(
            upstream="Socrata",
            http=http or http_client(settings, base_url=base, user_agent=USER_AGENT),
            auth=AUTH,
            credential=settings.app_token,
            pace=pace or make_pace(settings),
            concurrency=settings.concurrency,
            policy=policy_of(settings, backoff_initial_s=BACKOFF_INITIAL_S),
            # a trickling answer resets the read timeout on every chunk: this bounds the whole call
            call_timeout_s=settings.connect_timeout_s + settings.read_timeout_s,
            owns_http=http is None,
            clock=clock,
        )
        client._resource = f"{base}/resource/{settings.dataset}.json"
        client._view = f"{base}/api/views/{settings.dataset}.json"
        client._page_size, client._max_pages = settings.page_size, settings.max_pages
        client._freshness_s = settings.freshness_check_s
        return client

    async def published_at(self) -> datetime | None:
        """When the dataset's rows last changed (`rowsUpdatedAt` of its metadata), asked at most once per
        `freshness_check_s` however many carriers wait on it; None when the metadata could not be had or
        read (the carrier is then read in full: the check fails open).
        """
        if self._asking is None:
            self._asking = asyncio.Lock()
        async with self._asking:
            now = time.monotonic()
            if self._published is not None and now - self._published[0] < self._freshness_s:
                return self._published[1]
            answer = await self.get(self._view, _rows_updated_at, retry=False)
            published = None if isinstance(answer, Failure) else answer
            if published is None:
                log.info("violations_freshness_unknown", reason=getattr(answer, "message", "unreadable"))
            self._published = (now, published)
            return published

    async def fetch(self, dot: str) -> ViolationsFetch | Failure:
        """Every row of one carrier, or one Failure; never raises for upstream trouble.

        An invalid DOT is `internal` (a bug upstream of the client) and sends nothing. `[]` is a
        success with zero records (a clean carrier and an unknown DOT look the same).
        """
        canonical = self.check(dot)
        if isinstance(canonical, Failure):
            return canonical
        try:
            return await self._read(canonical)
        except Exception as error:  # a bug in our code: a value, never an escaped exception
            log.exception("violations_client_bug", dot=canonical)
            return Failure(
                ErrorKind.INTERNAL,
                retryable=False,
                message="the violations client failed unexpectedly",
                detail=sample(f"{type(error).__name__}: {error}", limit=500),
            )

    async def first_page(self, dot: str) -> Page | Failure:
        """The first page of a carrier's rows, one call, no retry: the cheap probe of `./fmcsa doctor`."""
        canonical = self.check(dot)
        if isinstance(canonical, Failure):
            return canonical
        parse = self._parser(canonical)
        return await self.get(self._resource, parse, params=self._query(canonical, 0), retry=False)

    async def fetch_batch(self, batch: Batch) -> dict[str, ViolationsFetch] | Failure:
        """One batched delta query (`domain.delta`): the rows of the batch's carriers newer than its
        mark, page after page like a full read, split per carrier (`delta=True`, each with the answer's
        newest `:updated_at` as its new mark); one Failure for the whole batch; never raises for
        upstream trouble.
        """
        for dot in batch.dots:
            if isinstance(checked := self.check(dot), Failure):
                return checked
        dots = frozenset(batch.dots)
        try:
            pages = await self._pages(
                lambda offset: self._batch_query(batch, offset), self._parser(dots), what=f"{len(dots)} DOTs"
            )
            if isinstance(pages, Failure):
                return pages
            at = self.clock()
            whole = assemble(batch.dots[0], pages, retrieved_at=at)
            split = per_carrier(batch, whole.records, high_water=whole.high_water)
            return {
                dot: ViolationsFetch(
                    dot=dot,
                    retrieved_at=at,
                    upstream_as_of=whole.upstream_as_of,
                    records=rows,
                    pages=len(pages),
                    high_water=mark,
                    delta=True,
                )
                for dot, (rows, mark) in split.items()
            }
        except Exception as error:  # a bug in our code: a value, never an escaped exception
            log.exception("violations_client_bug", dots=len(batch.dots))
            return Failure(
                ErrorKind.INTERNAL,
                retryable=False,
                message="the violations client failed unexpectedly",
                detail=sample(f"{type(error).__name__}: {error}", limit=500),
            )

    async def _read(self, dot: str) -> ViolationsFetch | Failure:
        pages = await self._pages(lambda offset: self._query(dot, offset), self._parser(dot), what=dot)
        if isinstance(pages, Failure):
            return pages
        return assemble(dot, pages, retrieved_at=self.clock())

    async def _pages(
        self,
        query: Callable[[int], dict[str, str]],
        parse: Callable[[Answer], Page | Failure],
        *,
        what: str,
    ) -> list[Page] | Failure:
        restarted = False
        while True:
            pages: list[Page] = []
            first_version: str | None = None
            for index in range(self._max_pages):
                page = await self.get(self._resource, parse, params=query(index * self._page_size))
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
                    return self.policy.for_bus(step, self._jitter())
                if step is Step.RESTART:
                    log.warning(
                        "violations_read_restarted", dot=what, page=index, reason="last_modified_changed"
                    )
                    restarted = True
                    break
                pages.append(page)
                if step is Step.COMPLETE:
                    return pages
            else:  # next_step fails at the page guard before this can happen
                return Failure(
                    ErrorKind.INTERNAL, retryable=False, message="paging loop ended without a verdict"
                )

    def _query(self, dot: str, offset: int) -> dict[str, str]:
        # Equality filter on the validated canonical DOT only: no $where, no SoQL text from input.
        # `:*,*` adds the system fields, of which `:updated_at` is the carrier's delta mark.
        return {
            "dot_number": dot,
            "$select": ":*,*",
            "$order": ":id",
            "$limit": str(self._page_size),
            "$offset": str(offset),
        }

    def _batch_query(self, batch: Batch, offset: int) -> dict[str, str]:
        # `$where` built from checked canonical DOTs and a datetime only (`domain.delta.where_clause`)
        return {
            "$select": ":*,*",
            "$where": batch.where,
            "$order": ":id",
            "$limit": str(self._page_size),
            "$offset": str(offset),
        }

    def _parser(self, dot: str | frozenset[str]) -> Callable[[Answer], Page | Failure]:
        def parse(answer: Answer) -> Page | Failure:
            return parse_page(
                answer.status,
                answer.headers,
                answer.body,
                dot,
                answer.at,
                token_sent=not self.anonymous,
                retry_after_max_s=self.policy.retry_after_max_s,
            )

        return parse


def _rows_updated_at(answer: Answer) -> datetime | Failure:
    """`rowsUpdatedAt` (epoch seconds) of a Socrata view's metadata, as an aware datetime."""
    unreadable = Failure(ErrorKind.INVALID_RESPONSE, retryable=True, message="dataset metadata unreadable")
    if answer.status != 200:
        return Failure(
            ErrorKind.UPSTREAM_ERROR, retryable=True, message=f"dataset metadata: HTTP {answer.status}"
        )
    try:
        doc = json.loads(answer.body)
        updated = doc["rowsUpdatedAt"] if isinstance(doc, dict) else None
    except (ValueError, KeyError):
        return unreadable
    if not isinstance(updated, int) or isinstance(updated, bool) or updated <= 0:
        return unreadable
    return datetime.fromtimestamp(updated, UTC)
