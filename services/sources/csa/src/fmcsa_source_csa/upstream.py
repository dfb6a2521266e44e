"""QCMobile client: two calls per sync (carrier, then BASICs) on the source kit's `UpstreamClient`.

What every source does alike is the kit's (`fmcsa_source_kit.upstream`): no call for an invalid DOT
(`internal`) or a missing webKey (`not_configured`), the concurrency semaphore, the shared pace, the
whole-call time bound, the one retry policy (in process while the wait is short, `Retry-After`
honoured, timeouts straight back, the rest handed back to the bus with a delay) and scrubbed transport
failures. What is QCMobile's is here: the two paths, the webKey as the query parameter `webKey` (its
only place; registered with `redact`), and the parsers of `domain.parse`. A whole call (connect and
every read) is bounded by `connect_timeout_s + read_timeout_s`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self, TypeVar

import httpx
import structlog

from fmcsa_source_csa.domain.model import CsaFetch
from fmcsa_source_csa.domain.parse import assemble, parse_basics, parse_carrier
from fmcsa_source_csa.settings import Settings
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import UpstreamPace
from fmcsa_source_kit.upstream import Answer, Auth, Clock, UpstreamClient, http_client, policy_of, utc_now

log = structlog.get_logger(__name__)

AUTH = Auth(setting="FMCSA_CSA_WEB_KEY", param="webKey")
_T = TypeVar("_T")
Parse = Callable[..., "_T | Failure"]
"""A `domain.parse` parser: (status, headers, body, dot, now, *, retry_after_max_s) -> value or Failure."""


def make_pace(settings: Settings) -> UpstreamPace:
    """The pace of every call, starting at `rate_per_s` (`fmcsa_source_kit.pacing`); this process's alone
    until the service binds it to the bus.
    """
    return UpstreamPace(source="csa", base_url=str(settings.base_url), ceiling=settings.rate_per_s)


class QCMobileClient(UpstreamClient):
    """Fetches one carrier's facts and BASICs from QCMobile (or the sandbox at the same paths)."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = utc_now,
        pace: UpstreamPace | None = None,
    ) -> None:
        base_url = str(settings.base_url).rstrip("/")
        super().__init__(
            upstream="QCMobile",
            http=http or http_client(settings, base_url=base_url, user_agent="fmcsa-sync-csa"),
            owns_http=http is None,
            auth=AUTH,
            credential=settings.web_key,
            pace=pace or make_pace(settings),
            concurrency=settings.concurrency,
            policy=policy_of(settings),
            call_timeout_s=settings.connect_timeout_s + settings.read_timeout_s,
            clock=clock,
        )
        self._base_url = base_url
        self._retry_after_max_s = settings.retry_after_max_s
        if not self.configured:
            log.warning(
                "csa_web_key_missing", hint="set FMCSA_CSA_WEB_KEY; every request answers not_configured"
            )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = utc_now,
        pace: UpstreamPace | None = None,
    ) -> Self:
        """Build the client from settings; an `http` client passed in is used as is and not closed, a
        `pace` passed in (the service's, shared on the bus) is used instead of a fresh one. Warns once
        (here, at start) when the webKey is missing.
        """
        return cls(settings, http=http, clock=clock, pace=pace)

    async def fetch(self, dot: str) -> CsaFetch | Failure:
        """Fetch one carrier: `/carriers/{dot}` first (unknown -> `not_found`, stop), then `/basics`."""
        canonical = self.check(dot)
        if isinstance(canonical, Failure):
            return canonical
        carrier = await self._call("carrier", f"carriers/{canonical}", canonical, parse_carrier)
        if isinstance(carrier, Failure):
            return carrier
        basics = await self._call("basics", f"carriers/{canonical}/basics", canonical, parse_basics)
        if isinstance(basics, Failure):
            return basics
        fetched = assemble(canonical, carrier, basics, self.clock())
        if fetched.notes:
            log.warning("csa_values_unrecognized", dot=canonical, notes=list(fetched.notes))
        return fetched

    async def _call(self, call: str, path: str, dot: str, parse: Parse[_T]) -> _T | Failure:
        def parse_answer(answer: Answer) -> _T | Failure:
            return parse(
                answer.status,
                answer.headers,
                answer.body,
                dot,
                answer.at,
                retry_after_max_s=self._retry_after_max_s,
            )

        # stamina logs each scheduled retry; bind which call it was so those lines say so.
        with structlog.contextvars.bound_contextvars(qcmobile_call=call, dot=dot):
            return await self.get(f"{self._base_url}/{path}", parse_answer)
