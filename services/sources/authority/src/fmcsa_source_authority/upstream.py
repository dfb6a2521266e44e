"""The authority source's two upstreams on the kit's `UpstreamClient`: QCMobile (webKey in the query)
for the carrier record, `/authority`, `/docket-numbers` and `/oos`, then DataHub (optional `X-App-Token`)
for the insurance filings. Everything else (DOT check, not_configured, bounds, pace, retries, hand-back
to the bus, scrubbed failures) is the kit's; here are the paths and the parsers.

A sync is four QCMobile calls and one DataHub call per 1,000 filings; an unknown carrier stops after
the first. The first failure ends the fetch (nothing is stored from a partial answer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Self, TypeVar

import httpx
import structlog

from fmcsa_events.models import ErrorKind
from fmcsa_source_authority.domain import AuthorityFetch, Filing
from fmcsa_source_authority.domain.parse import (
    assemble,
    parse_authority,
    parse_carrier,
    parse_dockets,
    parse_filings,
    parse_oos,
)
from fmcsa_source_authority.settings import Settings
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import UpstreamPace
from fmcsa_source_kit.said import Said
from fmcsa_source_kit.upstream import Answer, Auth, UpstreamClient, http_client, policy_of, utc_now

log = structlog.get_logger(__name__)

T = TypeVar("T")
QCMOBILE_AUTH = Auth(setting="FMCSA_AUTHORITY_WEB_KEY", param="webKey")
DATAHUB_AUTH = Auth(setting="FMCSA_AUTHORITY_APP_TOKEN", header="X-App-Token", required=False)
PAGE_SIZE = 1000
"""Filings per DataHub page (`$limit`); a carrier has a handful."""
MAX_PAGES = 10
"""Pages read before the read fails as invalid_response (10,000 filings: something is wrong)."""


def make_paces(settings: Settings) -> tuple[UpstreamPace, UpstreamPace]:
    """The QCMobile and DataHub paces (one per host), this process's alone until the service binds them."""
    return (
        UpstreamPace(source="authority", base_url=str(settings.base_url), ceiling=settings.rate_per_s),
        UpstreamPace(
            source="authority",
            base_url=str(settings.datahub_base_url),
            ceiling=settings.datahub_rate_per_s,
            upstream="datahub",
        ),
    )


def _reading(
    upstream: str, call: str, parse: Callable[..., T], **options: Any
) -> Callable[[Answer], T | Failure]:
    def read(answer: Answer) -> T | Failure:
        said = Said(upstream, call, answer.status, answer.headers, answer.body)
        result: T | Failure = parse(said, now=answer.at, **options)
        return result

    return read


class AuthorityClient:
    """Fetches one carrier's authority, dockets, OOS orders and insurance filings."""

    def __init__(
        self, qcmobile: UpstreamClient, datahub: UpstreamClient, *, dataset: str, retry_after_max_s: float
    ) -> None:
        self.qcmobile = qcmobile
        self.datahub = datahub
        self._dataset = dataset
        self._retry_after_max_s = retry_after_max_s

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        datahub_http: httpx.AsyncClient | None = None,
        paces: Sequence[UpstreamPace] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> Self:
        """Build both clients; HTTP clients passed in are used as they are and not closed, `paces` (the
        service's, bound to the bus) are used instead of fresh ones. Warns once when the webKey is unset.
        """
        qc_pace, hub_pace = paces or make_paces(settings)
        policy = policy_of(settings)

        def client(
            upstream: str,
            base: str,
            given: httpx.AsyncClient | None,
            auth: Auth,
            secret: Any,
            pace: UpstreamPace,
        ) -> UpstreamClient:
            return UpstreamClient(
                upstream=upstream,
                http=given or http_client(settings, base_url=base, user_agent="fmcsa-sync-authority"),
                auth=auth,
                credential=secret,
                pace=pace,
                concurrency=settings.concurrency,
                policy=policy,
                call_timeout_s=settings.call_timeout_s,
                owns_http=given is None,
                clock=clock,
            )

        made = cls(
            client("QCMobile", str(settings.base_url), http, QCMOBILE_AUTH, settings.web_key, qc_pace),
            client(
                "DataHub",
                str(settings.datahub_base_url),
                datahub_http,
                DATAHUB_AUTH,
                settings.app_token,
                hub_pace,
            ),
            dataset=settings.insurance_dataset,
            retry_after_max_s=settings.retry_after_max_s,
        )
        if not made.qcmobile.configured:
            log.warning(
                "authority_web_key_missing",
                hint="set FMCSA_AUTHORITY_WEB_KEY; every request answers not_configured",
            )
        if made.datahub.anonymous:
            log.info(
                "authority_datahub_anonymous",
                hint="no FMCSA_AUTHORITY_APP_TOKEN: Socrata's shared per-IP pool",
            )
        return made

    @property
    def configured(self) -> bool:
        return self.qcmobile.configured

    async def aclose(self) -> None:
        await self.qcmobile.aclose()
        await self.datahub.aclose()

    async def fetch(self, dot: str) -> AuthorityFetch | Failure:
        canonical = self.qcmobile.check(dot)
        if isinstance(canonical, Failure):
            return canonical
        with structlog.contextvars.bound_contextvars(dot=canonical):
            return await self._fetch(canonical)

    async def _fetch(self, dot: str) -> AuthorityFetch | Failure:
        limit = {"dot": dot, "retry_after_max_s": self._retry_after_max_s}
        carrier = await self.qcmobile.get(
            f"carriers/{dot}", _reading("QCMobile", "carrier", parse_carrier, **limit)
        )
        if isinstance(carrier, Failure):
            return carrier
        entries = await self.qcmobile.get(
            f"carriers/{dot}/authority", _reading("QCMobile", "authority", parse_authority, **limit)
        )
        if isinstance(entries, Failure):
            return entries
        dockets = await self.qcmobile.get(
            f"carriers/{dot}/docket-numbers", _reading("QCMobile", "docket-numbers", parse_dockets, **limit)
        )
        if isinstance(dockets, Failure):
            return dockets
        orders = await self.qcmobile.get(
            f"carriers/{dot}/oos", _reading("QCMobile", "oos", parse_oos, **limit)
        )
        if isinstance(orders, Failure):
            return orders
        filings = await self.filings(dot)
        if isinstance(filings, Failure):
            return filings
        return assemble(dot, carrier, entries, dockets, orders, filings, self.qcmobile.clock())

    async def filings(self, dot: str) -> list[Filing] | Failure:
        """Every insurance filing of a canonical DOT, page by page (the DOT zero-padded to 8 digits, as
        these L&I datasets hold it).
        """
        read = _reading(
            "DataHub",
            "insurance",
            partial(parse_filings, token_sent=not self.datahub.anonymous),
            dot=dot,
            retry_after_max_s=self._retry_after_max_s,
        )
        found: list[Filing] = []
        for page in range(MAX_PAGES):
            params = {
                "dot_number": dot.zfill(8),
                "$order": ":id",
                "$limit": str(PAGE_SIZE),
                "$offset": str(page * PAGE_SIZE),
            }
            rows = await self.datahub.get(f"resource/{self._dataset}.json", read, params=params)
            if isinstance(rows, Failure):
                return rows
            found += rows
            if len(rows) < PAGE_SIZE:
                return found
        return Failure(
            ErrorKind.INVALID_RESPONSE,
            retryable=False,
            message=f"DataHub served more than {MAX_PAGES * PAGE_SIZE} insurance filings for one carrier",
        )
