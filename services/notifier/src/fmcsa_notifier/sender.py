"""One webhook attempt over HTTP: the SSRF check against what the host resolves to now, then the signed
POST. Never raises for the receiver's trouble: every outcome is a status code or an error word.

The check and the connection resolve the name separately, so a name that changes its answer in
between (DNS rebinding) could slip through for one request; deployments that fear it point
`FMCSA_WEBHOOK_ALLOW_HOSTS` at nothing private and block private ranges at the egress as well.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from fmcsa_alerts.addresses import AllowList, UrlRefused, check_url
from fmcsa_alerts.resolve import refusal_for
from fmcsa_alerts.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_header
from fmcsa_runtime.failures import parse_retry_after

USER_AGENT = "fmcsa-sync-notifier/1"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None
    error: str | None
    retry_after_s: float | None
    duration_ms: int


class Sender:
    def __init__(self, http: httpx.AsyncClient, *, allow: AllowList, retry_after_max_s: float) -> None:
        self._http = http
        self._allow = allow
        self._retry_after_max_s = retry_after_max_s

    @classmethod
    def build(
        cls, *, allow: AllowList, connect_timeout_s: float, timeout_s: float, retry_after_max_s: float
    ) -> Sender:
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            follow_redirects=False,  # a redirect could lead anywhere, past the address check
            trust_env=False,  # no proxy from the environment between us and the check
        )
        return cls(http, allow=allow, retry_after_max_s=retry_after_max_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, url: str, body: bytes, *, event_id: str, secret: str, now: datetime) -> Answer:
        started = time.monotonic()
        target = check_url(url)
        if isinstance(target, UrlRefused):
            return Answer(None, f"refused_address: {target.reason}", None, 0)
        if refusal := await refusal_for(target, self._allow):
            return Answer(None, f"refused_address: {refusal}", None, _ms(started))
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: event_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature_header(secret, timestamp, body, event_id=event_id),
        }
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Answer(None, "timeout", None, _ms(started))
        except httpx.ConnectError:
            return Answer(None, "connect: the connection was refused or failed", None, _ms(started))
        except httpx.TransportError as error:
            return Answer(None, f"transport: {type(error).__name__}", None, _ms(started))
        retry_after = parse_retry_after(
            response.headers.get("Retry-After"), now=datetime.now(UTC), ceiling_s=self._retry_after_max_s
        )
        return Answer(response.status_code, None, retry_after, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
