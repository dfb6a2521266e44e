"""Delta reads of the violations source: many carriers' syncs answered by one batched query.

The kit's runner hands the adapter one `SyncRequested` at a time, up to `concurrency` at once, and each
request awaits its own `fetch` and `store`. `DeltaAdapter.fetch` keeps that shape (so each request still
ends with exactly one outcome, and the kit needs no change): a carrier that needs a full read
(`domain.delta.needs_reconciliation`) is read in full as before; one that only needs a delta waits in the
`DeltaBatcher` for up to `delta_window_s`, during which the carriers of the other requests in flight join
it; the batcher then asks `domain.delta.batches` how to cut them into `dot_number IN (...) AND
:updated_at > mark` queries, reads each (paged), and hands every waiting request its own carrier's delta
(or the batch's one Failure, which each request then settles on its own: retried or final). A delta is
stored like a read (`Store.upsert`, planned by `domain.delta.delta_plan`); its outcome's summary describes
the carrier's whole window as stored, not only the delta's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from pydantic import JsonValue

from fmcsa_events.models import ErrorKind, SyncRequested
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.runner import ClientStoreAdapter, FreshnessCheck, Unchanged
from fmcsa_source_kit.settle import Stored
from fmcsa_source_violations.domain.delta import Batch, batches, needs_reconciliation
from fmcsa_source_violations.domain.model import ViolationsFetch
from fmcsa_source_violations.store import Store
from fmcsa_source_violations.upstream import SocrataClient

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A request's carrier waiting for the next batch: its mark and the futures of its requests."""

    since: datetime | None
    futures: list[asyncio.Future[ViolationsFetch | Failure]]


class DeltaBatcher:
    """Gathers the carriers that need a delta for `window_s`, then reads them in batched queries."""

    def __init__(self, client: SocrataClient, *, window_s: float, url_budget: int, max_carriers: int) -> None:
        self._client = client
        self._window_s = window_s
        self._url_budget = url_budget
        self._max_carriers = max_carriers
        self._waiting: dict[str, Waiting] = {}
        self._flush: asyncio.Task[None] | None = None

    async def read(self, dot: str, since: datetime | None) -> ViolationsFetch | Failure:
        """The carrier's rows newer than `since`, read with those of the other carriers waiting now."""
        future: asyncio.Future[ViolationsFetch | Failure] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(dot, Waiting(since, [])).futures.append(future)
        if self._flush is None:
            self._flush = asyncio.create_task(self._after_window(), name="violations-delta-batch")
        return await future

    async def _after_window(self) -> None:
        await asyncio.sleep(self._window_s)  # the window in which concurrent requests join the batch
        waiting, self._waiting, self._flush = self._waiting, {}, None
        try:
            cut = batches(
                ((dot, each.since) for dot, each in waiting.items()),
                url_budget=self._url_budget,
                max_carriers=self._max_carriers,
            )
        except Exception as error:  # our bug: every waiting request still gets an answer
            log.exception("violations_delta_batch_bug", dots=len(waiting))
            cut = []
            failed = Failure(
                ErrorKind.INTERNAL, retryable=False, message=f"delta batching failed: {error}"[:300]
            )
            _resolve(waiting.values(), failed)
        await asyncio.gather(*(self._read(batch, waiting) for batch in cut))

    async def _read(self, batch: Batch, waiting: dict[str, Waiting]) -> None:
        dots = batch.dots
        try:
            answer = await self._client.fetch_batch(batch)
        except Exception as error:  # fetch_batch answers trouble as a value; anything else is our bug
            log.exception("violations_delta_batch_bug", dots=len(dots))
            answer = Failure(
                ErrorKind.INTERNAL, retryable=False, message=f"delta batch failed: {error}"[:300]
            )
        log.info("violations_delta_batch", carriers=len(dots), failed=isinstance(answer, Failure))
        for dot in dots:
            _resolve([waiting[dot]], answer if isinstance(answer, Failure) else answer[dot])

    async def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush


def _resolve(entries: Iterable[Waiting], result: ViolationsFetch | Failure) -> None:
    """Answer every request waiting in these entries."""
    for entry in entries:
        for future in entry.futures:
            if not future.done():  # a request cancelled meanwhile (shutdown) takes nothing
                future.set_result(result)


class DeltaAdapter:
    """The violations `SourceAdapter`: a full read where `needs_reconciliation` says so, the freshness
    check next, a batched delta otherwise (module docstring). Full reads and unchanged checks are the
    kit's `ClientStoreAdapter`'s.
    """

    def __init__(
        self,
        full: ClientStoreAdapter[ViolationsFetch],
        store: Store,
        batcher: DeltaBatcher,
        summarize: Callable[[ViolationsFetch], dict[str, JsonValue]],
        *,
        freshness: FreshnessCheck[ViolationsFetch] | None,
        reconcile_after: timedelta,
        clock: Callable[[], datetime],
        client: SocrataClient,
    ) -> None:
        self._full = full
        self._store = store
        self._batcher = batcher
        self._summarize = summarize
        self._freshness = freshness
        self._reconcile_after = reconcile_after
        self._clock = clock
        self._client = client

    @property
    def configured(self) -> bool:
        return self._full.configured

    async def fetch(self, dot: str) -> ViolationsFetch | Unchanged[ViolationsFetch] | Failure:
        mark = await self._store.mark(dot)
        if mark is None or needs_reconciliation(mark, now=self._clock(), period=self._reconcile_after):
            return await self._client.fetch(dot)  # a full read, whatever the freshness check would say
        if self._freshness is not None and (published := await self._freshness.published_at()) is not None:
            held = await self._freshness.held(dot)
            if held is not None and held.upstream_as_of is not None and published <= held.upstream_as_of:
                return Unchanged(held)
        return await self._batcher.read(dot, mark.high_water)

    async def store(
        self, fetched: ViolationsFetch | Unchanged[ViolationsFetch], request: SyncRequested
    ) -> Stored | Failure:
        if isinstance(fetched, Unchanged) or not fetched.delta:
            return await self._full.store(fetched, request)
        counts = await self._store.upsert(fetched, request_id=request.request_id)
        window = await self._store.previous(fetched.dot)
        return Stored(
            counts=counts,
            retrieved_at=fetched.retrieved_at,
            upstream_as_of=fetched.upstream_as_of,
            summary=self._summarize(window if window is not None else fetched),
        )

    async def close(self) -> None:
        await self._batcher.close()
        await self._full.close()
