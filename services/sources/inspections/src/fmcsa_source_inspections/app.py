"""The composition root of the inspections source service: client, store and the shared source runner."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from fmcsa_events.bus import utc_now
from fmcsa_events.identifiers import SourceKey
from fmcsa_runtime.service import Shell
from fmcsa_source_inspections.domain.records import InspectionsFetch
from fmcsa_source_inspections.domain.summary import summarize
from fmcsa_source_inspections.gate import InspectionsGate
from fmcsa_source_inspections.settings import Settings
from fmcsa_source_inspections.store import Store
from fmcsa_source_inspections.upstream import SaferWebClient, datahub_client, make_datahub_pace, make_pace
from fmcsa_source_kit.marks import FetchMark, FetchMarks
from fmcsa_source_kit.pacing import UpstreamPace
from fmcsa_source_kit.runner import Cadence, ChangeGate, ClientStoreAdapter, SourceAdapter, create_source_app
from fmcsa_source_kit.upstream import UpstreamClient


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    http: httpx.AsyncClient | None = None,
    datahub_http: httpx.AsyncClient | None = None,
) -> Shell:
    """Wire the inspections source; tests pass the clock or HTTP clients they must control. Builds nothing
    until the app starts. The clients' paces (SaferWebAPI; DataHub, with the change gate) are bound to the
    bus (shared with the other replicas) at start.
    """
    pace = make_pace(settings)
    hub_pace = make_datahub_pace(settings)
    paces: tuple[UpstreamPace, ...] = (pace, hub_pace) if settings.change_gate else (pace,)

    async def adapter() -> SourceAdapter[Any]:
        store = await Store.connect(
            settings.resolved_database_url(), oos_rate_change_points=settings.oos_rate_change_points
        )
        client = SaferWebClient.from_settings(settings, http=http, pace=pace)
        datahub = (
            datahub_client(settings, http=datahub_http, pace=hub_pace, clock=clock)
            if settings.change_gate
            else None
        )
        return build_adapter(settings, client, store, datahub=datahub, clock=clock)

    return create_source_app(
        settings, source=SourceKey.INSPECTIONS, adapter_factory=adapter, clock=clock, pace=paces
    )


def build_adapter(
    settings: Settings,
    client: SaferWebClient,
    store: Store,
    *,
    datahub: UpstreamClient | None = None,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> ClientStoreAdapter[InspectionsFetch]:
    """The inspections adapter. With `change_gate` (the default) and a `datahub` client, the change gate
    (`fmcsa_source_inspections.gate`) decides which carriers need a fetch; else, with
    `publication_period_s`, a carrier fetched successfully (by any replica: the fetch marks are in the
    store's database) within the current publication period ends `checked_unchanged` without a
    SaferWebAPI call. The adapter closes `datahub`.
    """

    async def held(dot: str, mark: FetchMark) -> InspectionsFetch | None:
        snapshot = await store.previous(dot)
        if snapshot is None:
            return None
        return InspectionsFetch(dot, mark.fetched_at, mark.upstream_as_of, snapshot)

    if settings.change_gate and datahub is not None:
        timing = settings.gate_timing()
        gate = InspectionsGate(datahub, store.engine, **timing, clock=clock, monotonic=monotonic)

        async def close() -> None:
            await gate.aclose()
            await datahub.aclose()

        return ClientStoreAdapter(
            client,
            store,
            summarize,
            changes=ChangeGate(gate.decide, held, close),
            marks=FetchMarks(store.engine),
            clock=clock,
        )
    if not settings.publication_period_s:
        return ClientStoreAdapter(client, store, summarize)

    return ClientStoreAdapter(
        client,
        store,
        summarize,
        cadence=Cadence(timedelta(seconds=settings.publication_period_s), held),
        marks=FetchMarks(store.engine),
        clock=clock,
    )
