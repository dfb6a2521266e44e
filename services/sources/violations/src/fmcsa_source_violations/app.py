"""The composition root of the violations source service: client, store and the shared source runner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from fmcsa_events.bus import utc_now
from fmcsa_events.identifiers import SourceKey
from fmcsa_runtime.service import Shell
from fmcsa_source_kit.runner import ClientStoreAdapter, FreshnessCheck, SourceAdapter, create_source_app
from fmcsa_source_violations.batching import DeltaAdapter, DeltaBatcher
from fmcsa_source_violations.domain.summary import paginate, summarize
from fmcsa_source_violations.settings import Settings
from fmcsa_source_violations.store import Store
from fmcsa_source_violations.upstream import SocrataClient, make_pace


def create_app(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now, http: httpx.AsyncClient | None = None
) -> Shell:
    """Wire the violations source; tests pass the clock or HTTP client they must control. Builds nothing
    until the app starts. The client's pace is bound to the bus (shared with the other replicas) at start.
    """
    pace = make_pace(settings)

    async def adapter() -> SourceAdapter[Any]:
        store = await Store.connect(settings.resolved_database_url(), guard=settings.drop_guard())
        client = SocrataClient.from_settings(settings, http=http, pace=pace)
        return build_adapter(settings, client, store, clock=clock)

    return create_source_app(
        settings,
        source=SourceKey.VIOLATIONS,
        adapter_factory=adapter,
        clock=clock,
        pace=pace,
        paginate=paginate,  # a carrier's rows beyond the first 500 go in pages before the outcome
    )


def build_adapter(
    settings: Settings, client: SocrataClient, store: Store, *, clock: Callable[[], datetime] = utc_now
) -> SourceAdapter[Any]:
    """The violations adapter over a client and a store: full reads, the freshness check and, unless
    `delta_window_s` is 0, batched delta reads (`batching`).
    """
    # the dataset says when its rows last changed: a carrier held at least that recent is not read again
    freshness = FreshnessCheck(client.published_at, store.previous) if settings.freshness_check_s else None
    full = ClientStoreAdapter(client, store, summarize, freshness=freshness)
    if not settings.delta_window_s:
        return full
    batcher = DeltaBatcher(
        client,
        window_s=settings.delta_window_s,
        url_budget=settings.delta_url_budget,
        max_carriers=settings.delta_max_carriers,
    )
    return DeltaAdapter(
        full,
        store,
        batcher,
        summarize,
        freshness=freshness,
        reconcile_after=timedelta(days=settings.reconcile_days),
        clock=clock,
        client=client,
    )
