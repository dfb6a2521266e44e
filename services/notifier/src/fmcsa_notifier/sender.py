"""One webhook attempt over HTTP. Never raises: every outcome is a status code or an error word, so one
receiver's trouble (or a URL httpx cannot send) is that delivery's failure and no other's.

- The URL is read with `httpx.URL` (`fmcsa_alerts.urls`): whitespace and control characters refused.
- The host is resolved once, every address is checked (`fmcsa_alerts.resolve`), and the request goes to
  a checked address (the first that takes the connection, in resolver order): the URL's host is replaced
  by that IP, while the `Host` header and TLS (SNI and certificate verification, the `sni_hostname`
  request extension) keep the name. No second
  resolution, so DNS rebinding cannot lead the connection past the check. Connections are not kept
  alive, so a connection verified for one name is never reused for another on the same address.
- One deadline (`timeout_s`) covers the whole attempt: resolving, connecting, sending and reading the
  answer; a receiver that drips its answer a byte at a time cannot stretch it.
- At most `ANSWER_READ_BYTES` of the answer's body are read (raw, not decompressed); the rest is never
  read. A non-2xx answer's first `ANSWER_SHOWN_CHARS` printable characters go into the attempt's error.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from fmcsa_alerts.addresses import AllowList, UrlRefused
from fmcsa_alerts.resolve import resolve_checked
from fmcsa_alerts.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_header
from fmcsa_alerts.urls import parse_url, target_of
from fmcsa_runtime.retry_after import parse_retry_after

USER_AGENT = "fmcsa-sync-notifier/1"
ANSWER_READ_BYTES = 4096
"""At most this much of an answer's body is read (one network read may bring a little more)."""
ANSWER_SHOWN_CHARS = 200
"""At most this many characters of a non-2xx answer are kept in the attempt's error."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None
    error: str | None
    retry_after_s: float | None
    duration_ms: int
    body_bytes: int = 0
    """How many bytes of the answer's body were read (at most about `ANSWER_READ_BYTES`)."""
    address: str | None = None
    """The address connected to (the one checked)."""


def shown(raw: bytes) -> str:
    """The first printable characters of an answer, for the attempt's record."""
    text = raw.decode("utf-8", "replace")
    return "".join(c if c.isprintable() else " " for c in text)[:ANSWER_SHOWN_CHARS].strip()


class Sender:
    def __init__(
        self, http: httpx.AsyncClient, *, allow: AllowList, timeout_s: float, retry_after_max_s: float
    ) -> None:
        self._http = http
        self._allow = allow
        self._timeout_s = timeout_s
        self._retry_after_max_s = retry_after_max_s

    @classmethod
    def build(
        cls, *, allow: AllowList, connect_timeout_s: float, timeout_s: float, retry_after_max_s: float
    ) -> Sender:
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            follow_redirects=False,  # a redirect could lead anywhere, past the address check
            trust_env=False,  # no proxy from the environment between us and the check
            limits=httpx.Limits(max_keepalive_connections=0),  # no connection reused across names
        )
        return cls(http, allow=allow, timeout_s=timeout_s, retry_after_max_s=retry_after_max_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, url: str, body: bytes, *, event_id: str, secret: str, now: datetime) -> Answer:
        """One attempt, within `timeout_s` in all; see the module docstring."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._attempt(
                    url, body, event_id=event_id, secret=secret, now=now, started=started
                )
        except (TimeoutError, httpx.TimeoutException):
            return Answer(None, "timeout", None, _ms(started))
        except httpx.ConnectError:
            return Answer(None, "connect: the connection was refused or failed", None, _ms(started))
        except httpx.TransportError as error:
            return Answer(None, f"transport: {type(error).__name__}", None, _ms(started))
        except Exception as error:  # anything else is this delivery's failure, retried like a transport one
            return Answer(None, f"error: {type(error).__name__}", None, _ms(started))

    async def _attempt(
        self, url: str, body: bytes, *, event_id: str, secret: str, now: datetime, started: float
    ) -> Answer:
        parsed = parse_url(url)
        if isinstance(parsed, UrlRefused):
            return Answer(None, f"refused_address: {parsed.reason}", None, _ms(started))
        target = target_of(parsed)
        checked = await resolve_checked(target, self._allow)
        if isinstance(checked, UrlRefused):
            return Answer(None, f"refused_address: {checked.reason}", None, _ms(started))
        timestamp = int(now.timestamp())
        headers = {
            "Host": parsed.netloc.decode("ascii"),
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: event_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature_header(secret, timestamp, body, event_id=event_id),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        last = checked.addresses[-1]  # the addresses are distinct
        for address in checked.addresses:
            request = self._http.build_request(
                "POST", parsed.copy_with(host=address), content=body, headers=headers, extensions=extensions
            )
            try:
                response = await self._http.send(request, stream=True)
            except httpx.ConnectError:
                if address == last:
                    raise  # no checked address took the connection
                continue
            return await self._read(response, address, started)
        raise AssertionError("unreachable: the last address returns or raises")

    async def _read(self, response: httpx.Response, address: str, started: float) -> Answer:
        """At most `ANSWER_READ_BYTES` of the answer, then close the connection."""
        try:
            kept = bytearray()
            async for chunk in response.aiter_raw():
                kept += chunk
                if len(kept) >= ANSWER_READ_BYTES:
                    break  # the rest is never read: the connection is closed, not drained
        finally:
            await response.aclose()
        status = response.status_code
        retry_after = parse_retry_after(
            response.headers.get("Retry-After"), now=datetime.now(UTC), ceiling_s=self._retry_after_max_s
        )
        error = None
        if not 200 <= status < 300 and (text := shown(bytes(kept))):
            error = f"answer: {text}"
        return Answer(status, error, retry_after, _ms(started), body_bytes=len(kept), address=address)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
