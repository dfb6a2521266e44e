"""The composition root of the authority source service: client, store and the kit's source runner."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from fmcsa_events.bus import utc_now
from fmcsa_events.identifiers import SourceKey
from fmcsa_runtime.service import Shell
from fmcsa_source_authority.difference import DifferenceGate
from fmcsa_source_authority.domain import AuthorityFetch, summarize
from fmcsa_source_authority.settings import Settings
from fmcsa_source_authority.store import Store
from fmcsa_source_authority.upstream import AuthorityClient, make_paces
from fmcsa_source_kit.marks import FetchMark, FetchMarks
from fmcsa_source_kit.runner import Cadence, ChangeGate, ClientStoreAdapter, SourceAdapter, create_source_app


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    http: httpx.AsyncClient | None = None,
    datahub_http: httpx.AsyncClient | None = None,
) -> Shell:
    """Wire the authority source; tests pass the clock or HTTP clients they must control. Builds nothing
    until the app starts. Both paces (QCMobile, DataHub) are bound to the bus at start.
    """
    paces = make_paces(settings)

    async def adapter() -> SourceAdapter[Any]:
        store = await Store.connect(settings.resolved_database_url(), guard=settings.drop_guard())
        client = AuthorityClient.from_settings(
            settings, http=http, datahub_http=datahub_http, paces=paces, clock=clock
        )
        return build_adapter(settings, client, store, clock=clock)

    return create_source_app(
        settings, source=SourceKey.AUTHORITY, adapter_factory=adapter, clock=clock, pace=paces
    )


def build_adapter(
    settings: Settings,
    client: AuthorityClient,
    store: Store,
    *,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> ClientStoreAdapter[AuthorityFetch]:
    """The authority adapter. With `daily_difference` (the default), the daily difference gate
    (`fmcsa_source_authority.difference`) decides which carriers need a fetch; else, with
    `publication_period_s`, a carrier fetched successfully (by any replica: the fetch marks are in the
    store's database) within the current publication period ends `checked_unchanged` without a QCMobile or
    DataHub call.
    """

    async def held(dot: str, mark: FetchMark) -> AuthorityFetch | None:
        kept = await store.held(dot)
        if kept.profile is None:
            return None
        return AuthorityFetch(
            dot=dot,
            profile=kept.profile,
            dockets=kept.dockets,
            filings=kept.filings,
            retrieved_at=mark.fetched_at,
            upstream_as_of=mark.upstream_as_of,
        )

    if settings.daily_difference:
        gate = DifferenceGate(
            client.datahub,
            store.engine,
            datasets=settings.daily_difference_ids(),
            check_s=settings.daily_difference_check_s,
            max_gap=timedelta(seconds=settings.daily_difference_max_gap_s),
            full_refresh=timedelta(seconds=settings.full_refresh_s),
            retry_after_max_s=settings.retry_after_max_s,
            clock=clock,
            monotonic=monotonic,
        )
        return ClientStoreAdapter(
            client,
            store,
            summarize,
            changes=ChangeGate(gate.decide, held, gate.aclose),
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
