"""The composition root of the csa source service: client, store and the shared source runner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from fmcsa_events.bus import utc_now
from fmcsa_events.identifiers import SourceKey
from fmcsa_runtime.service import Shell
from fmcsa_source_csa.domain.summary import summarize
from fmcsa_source_csa.settings import Settings
from fmcsa_source_csa.store import Store
from fmcsa_source_csa.upstream import QCMobileClient, make_pace
from fmcsa_source_kit.marks import FetchMarks
from fmcsa_source_kit.publication import SocrataPublication
from fmcsa_source_kit.runner import ClientStoreAdapter, FreshnessCheck, SourceAdapter, create_source_app


def create_app(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now, http: httpx.AsyncClient | None = None
) -> Shell:
    """Wire the csa source; tests pass the clock or HTTP client they must control. Builds nothing
    until the app starts. The client's pace is bound to the bus (shared with the other replicas) at start.
    """
    pace = make_pace(settings)

    async def adapter() -> SourceAdapter[Any]:
        store = await Store.connect(settings.resolved_database_url(), guard=settings.drop_guard())
        client = QCMobileClient.from_settings(settings, http=http, pace=pace)
        return build_adapter(settings, client, store, http=http)

    return create_source_app(settings, source=SourceKey.CSA, adapter_factory=adapter, clock=clock, pace=pace)


def build_adapter(
    settings: Settings, client: QCMobileClient, store: Store, *, http: httpx.AsyncClient | None = None
) -> ClientStoreAdapter[Any]:
    """The csa adapter: with `publication_check_s`, a carrier fetched (by any replica, before or after a
    restart: the fetch marks are in the store's database) since the SMS run's newest publication (the SMS
    dataset's `rowsUpdatedAt`) ends `checked_unchanged` without a QCMobile call.
    """
    if not settings.publication_check_s:
        return ClientStoreAdapter(client, store, summarize)
    publication = SocrataPublication(
        str(settings.publication_url),
        settings.publication_dataset,
        ttl_s=settings.publication_check_s,
        http=http,
    )
    return ClientStoreAdapter(
        client,
        store,
        summarize,
        since_fetch=FreshnessCheck(publication.published_at, store.previous, publication.aclose),
        marks=FetchMarks(store.engine),
    )
