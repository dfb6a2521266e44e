"""When an upstream last published, for a source whose own API has no cheap change signal.

QCMobile's BASICs follow the monthly SMS run, which DataHub also publishes as Socrata datasets (the SMS
Input - Violation dataset `8mt8-2mdr` among them): the dataset's metadata (`GET /api/views/{id}.json`,
`rowsUpdatedAt`) says when the run last changed, in one call however many carriers are monitored.

- `unchanged_since_fetch(published, seen_at_fetch)` (pure): the upstream has published nothing since the
  carrier's last successful fetch, i.e. the publication seen just before that fetch is still the newest.
  Unknown on either side (the check failed, the carrier has no `fetch_marks` row) means "fetch".
- `within_publication_period(fetched_at, now, period)` (pure): for an upstream with neither a change
  signal nor conditional requests, only a publication cadence (SAFER summaries, authority and insurance:
  daily), the carrier's last successful fetch falls in the current publication period. The hour at which
  the upstream publishes within its period is not known, so a carrier skipped this way is at most one
  publication behind, never more. Periods are counted from the Unix epoch (a day: midnight UTC).
- `SocrataPublication`: the dataset's `rowsUpdatedAt`, asked at most once per `ttl_s`; any failure is
  None (cannot tell: the carrier is fetched), never an error of the sync.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import structlog

log = structlog.get_logger(__name__)

METADATA_TIMEOUT_S = 10.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def unchanged_since_fetch(published: datetime | None, seen_at_fetch: datetime | None) -> bool:
    """True when `published` (the upstream's newest publication now) is no newer than the one seen just
    before the carrier's last successful fetch; False when either is unknown.
    """
    return published is not None and seen_at_fetch is not None and published <= seen_at_fetch


def within_publication_period(fetched_at: datetime | None, now: datetime, period: timedelta) -> bool:
    """True when `fetched_at` (the carrier's last successful fetch) lies in the same publication period as
    `now` (periods of `period` from the Unix epoch); False when never fetched or `period` is zero.
    """
    if fetched_at is None or period <= timedelta(0):
        return False
    return (fetched_at - EPOCH) // period == (now - EPOCH) // period


def rows_updated_at(status: int, body: bytes) -> datetime | None:
    """`rowsUpdatedAt` (epoch seconds) of a Socrata view's metadata answer, or None when unreadable."""
    if status != 200:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    updated = doc.get("rowsUpdatedAt") if isinstance(doc, dict) else None
    if not isinstance(updated, int) or isinstance(updated, bool) or updated <= 0:
        return None
    return datetime.fromtimestamp(updated, UTC)


class SocrataPublication:
    """A Socrata dataset's `rowsUpdatedAt`, cached for `ttl_s` (monotonic clock)."""

    def __init__(
        self,
        base_url: str,
        dataset: str,
        *,
        ttl_s: float,
        http: httpx.AsyncClient | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/api/views/{dataset}.json"
        self._ttl_s = ttl_s
        self._http = http or httpx.AsyncClient(timeout=METADATA_TIMEOUT_S)
        self._owned = http is None
        self._monotonic = monotonic
        self._cached: tuple[float, datetime | None] | None = None

    async def published_at(self) -> datetime | None:
        now = self._monotonic()
        if self._cached is not None and now - self._cached[0] < self._ttl_s:
            return self._cached[1]
        try:
            answer = await self._http.get(self._url)
            published = rows_updated_at(answer.status_code, answer.content)
        except httpx.HTTPError as error:
            log.warning("publication_check_failed", error=type(error).__name__)
            published = None
        self._cached = (now, published)
        return published

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()
