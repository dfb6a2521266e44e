"""The composition root of the authority source service: client, store and the kit's source runner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from fmcsa_events.bus import utc_now
from fmcsa_events.identifiers import SourceKey
from fmcsa_runtime.service import Shell
from fmcsa_source_authority.domain import summarize
from fmcsa_source_authority.settings import Settings
from fmcsa_source_authority.store import Store
from fmcsa_source_authority.upstream import AuthorityClient, make_paces
from fmcsa_source_kit.runner import ClientStoreAdapter, SourceAdapter, create_source_app


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
        return ClientStoreAdapter(client, store, summarize)

    return create_source_app(
        settings, source=SourceKey.AUTHORITY, adapter_factory=adapter, clock=clock, pace=paces
    )
