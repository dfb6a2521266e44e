"""SaferWebAPI client: one `GET /v2/usdot/snapshot/{dot}` per sync on the source kit's `UpstreamClient`
(edge checks, bounds, the one retry policy, hand-back to the bus, scrubbed transport failures). What is
this source's own: the path, the key in the `x-api-key` header, and the parser of an answer.
"""

from __future__ import annotations

from typing import Any, Self

import httpx
from pydantic import SecretStr

from fmcsa_source_inspections.domain.parse import parse_response
from fmcsa_source_inspections.domain.records import InspectionsFetch
from fmcsa_source_inspections.settings import Settings
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import UpstreamPace
from fmcsa_source_kit.upstream import Answer, Auth, Clock, UpstreamClient, http_client, policy_of, utc_now

SNAPSHOT_PATH = "v2/usdot/snapshot/{dot}"
AUTH = Auth(setting="FMCSA_INSPECTIONS_API_KEY", header="x-api-key")


def make_pace(settings: Settings) -> UpstreamPace:
    """The pace of every call, starting at `rate_per_s` with `burst_headroom_s` (`fmcsa_source_kit.pacing`);
    this process's alone until the service binds it to the bus.
    """
    return UpstreamPace(
        source="inspections",
        base_url=str(settings.base_url),
        ceiling=settings.rate_per_s,
        burst_s=settings.burst_headroom_s,
    )


class SaferWebClient(UpstreamClient):
    """Fetches carrier snapshots from SaferWebAPI (or the sandbox, by `base_url`).

    Guarantees (the kit's, `fmcsa_source_kit.upstream`): `fetch` never raises for upstream trouble; no
    call is made for an invalid DOT or without a key; the key travels only in the `x-api-key` header
    and is registered with `redact`, so it reaches no log line, Failure or stored row. A 429 without
    `Retry-After` waits `rate_limit_wait_s` (so it goes back to the bus).
    """

    def __init__(self, *, rate_limit_wait_s: float, **kit: Any) -> None:
        super().__init__(**kit)
        self._rate_limit_wait_s = rate_limit_wait_s

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = utc_now,
        pace: UpstreamPace | None = None,
    ) -> Self:
        """Build the client; an `http` passed in is used as is and left open by `aclose`; a `pace`
        passed in (the service's, shared on the bus) is used instead of a fresh one at `rate_per_s`.
        """
        return cls(
            **_kit(settings, "SaferWebAPI", str(settings.base_url), AUTH, settings.api_key, http, clock),
            pace=pace or make_pace(settings),
            rate_limit_wait_s=settings.rate_limit_wait_s,
        )

    async def fetch(self, dot: str) -> InspectionsFetch | Failure:
        """The carrier's current snapshot, or one Failure (retried and handed back by the kit's policy)."""
        canonical = self.check(dot)
        if isinstance(canonical, Failure):
            return canonical

        def parse(answer: Answer) -> InspectionsFetch | Failure:
            return parse_response(
                answer.status,
                answer.headers,
                answer.body,
                canonical,
                answer.at,
                rate_limit_wait_s=self._rate_limit_wait_s,
                retry_after_max_s=self.policy.retry_after_max_s,
            )

        return await self.get(SNAPSHOT_PATH.format(dot=canonical), parse)


DATAHUB_AUTH = Auth(setting="FMCSA_INSPECTIONS_APP_TOKEN", header="X-App-Token", required=False)
DATAHUB_RATE_PER_S = 2.0
"""Ceiling on the change gate's DataHub calls per second (a check is a few calls every `check_s`)."""


def make_datahub_pace(settings: Settings) -> UpstreamPace:
    """The change gate's DataHub pace (another host than SaferWebAPI's)."""
    return UpstreamPace(
        source="inspections",
        base_url=str(settings.datahub_base_url),
        ceiling=DATAHUB_RATE_PER_S,
        upstream="datahub",
    )


def datahub_client(
    settings: Settings,
    *,
    http: httpx.AsyncClient | None = None,
    pace: UpstreamPace | None = None,
    clock: Clock = utc_now,
) -> UpstreamClient:
    """The change gate's DataHub client (app token optional: anonymous, Socrata's shared pool)."""
    base_url = str(settings.datahub_base_url)
    return UpstreamClient(
        **_kit(settings, "DataHub", base_url, DATAHUB_AUTH, settings.app_token, http, clock),
        pace=pace or make_datahub_pace(settings),
    )


def _kit(
    settings: Settings,
    upstream: str,
    base_url: str,
    auth: Auth,
    credential: SecretStr | None,
    http: httpx.AsyncClient | None,
    clock: Clock,
) -> dict[str, Any]:
    """What both clients (SaferWebAPI, DataHub) take from the settings alike."""
    return {
        "upstream": upstream,
        "http": http or http_client(settings, base_url=base_url, user_agent="fmcsa-sync/0.1 (inspections)"),
        "owns_http": http is None,
        "auth": auth,
        "credential": credential,
        "concurrency": settings.concurrency,
        "policy": policy_of(settings, backoff_initial_s=settings.backoff_initial_s),
        "call_timeout_s": settings.connect_timeout_s + settings.read_timeout_s,
        "clock": clock,
    }
