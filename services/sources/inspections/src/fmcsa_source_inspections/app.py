"""The composition root of the inspections source service: client, store and the shared source runner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from fmcsa_events.bus import utc_now
from fmcsa_events.identifiers import SourceKey
from fmcsa_runtime.service import Shell
from fmcsa_source_inspections.domain.records import InspectionsFetch
from fmcsa_source_inspections.domain.summary import summarize
from fmcsa_source_inspections.settings import Settings
from fmcsa_source_inspections.store import Store
from fmcsa_source_inspections.upstream import SaferWebClient, make_pace
from fmcsa_source_kit.marks import FetchMark, FetchMarks
from fmcsa_source_kit.runner import Cadence, ClientStoreAdapter, SourceAdapter, create_source_app


def create_app(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now, http: httpx.AsyncClient | None = None
) -> Shell:
    """Wire the inspections source; tests pass the clock or HTTP client they must control. Builds nothing
    until the app starts. The client's pace is bound to the bus (shared with the other replicas) at start.
    """
    pace = make_pace(settings)

    async def adapter() -> SourceAdapter[Any]:
        store = await Store.connect(
            settings.resolved_database_url(), oos_rate_change_points=settings.oos_rate_change_points
        )
        client = SaferWebClient.from_settings(settings, http=http, pace=pace)
        return build_adapter(settings, client, store, clock=clock)

    return create_source_app(
        settings, source=SourceKey.INSPECTIONS, adapter_factory=adapter, clock=clock, pace=pace
    )


def build_adapter(
    settings: Settings, client: SaferWebClient, store: Store, *, clock: Callable[[], datetime] = utc_now
) -> ClientStoreAdapter[InspectionsFetch]:
    """The inspections adapter: with `publication_period_s`, a carrier fetched successfully (by any
    replica: the fetch marks are in the store's database) within the current publication period ends
    `checked_unchanged` without a SaferWebAPI call.
    """
    if not settings.publication_period_s:
        return ClientStoreAdapter(client, store, summarize)

    async def held(dot: str, mark: FetchMark) -> InspectionsFetch | None:
        snapshot = await store.previous(dot)
        if snapshot is None:
            return None
        return InspectionsFetch(dot, mark.fetched_at, mark.upstream_as_of, snapshot)

    return ClientStoreAdapter(
        client,
        store,
        summarize,
        cadence=Cadence(timedelta(seconds=settings.publication_period_s), held),
        marks=FetchMarks(store.engine),
        clock=clock,
    )
