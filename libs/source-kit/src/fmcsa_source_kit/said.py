"""An upstream answer's failure rules shared by the sources that read JSON over HTTP (authority's QCMobile
and DataHub calls, the change gates' DataHub reads): `Said` (where an answer came from, for a failure's
message and scrubbed detail) and `_json` (429, 202, a maintenance page, a body that is not JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import sample
from fmcsa_runtime.retry_after import parse_retry_after
from fmcsa_source_kit.failures import Failure

MAINTENANCE_TITLE = b"FMCSA System Maintenance Page"
_EIN = re.compile(rb'"ein"\s*:\s*"?[0-9-]*"?')


class ShapeError(ValueError):
    """A well-formed answer of the wrong shape: `invalid_response`, not retried."""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _detail(upstream: str, call: str, status: int, headers: Mapping[str, str], body: bytes) -> str:
    parts = [f"call={call}", f"status={status}"]
    if request_id := _header(headers, "X-Socrata-RequestId"):
        parts.append(f"request_id={sample(request_id, limit=64)}")
    # the carrier body holds a tax id (`ein`): never let even a sample of it out
    scrubbed = _EIN.sub(b'"ein":"***"', body)
    parts.append(f"body={sample(scrubbed)}")
    return f"{upstream}: " + "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Said:
    """Where an answer came from, for its failures' messages and details."""

    upstream: str
    call: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    def failure(
        self, kind: ErrorKind, message: str, *, retryable: bool, wait: float | None = None
    ) -> Failure:
        detail = _detail(self.upstream, self.call, self.status, self.headers, self.body)
        return Failure(kind, retryable=retryable, message=message, detail=detail, retry_after_s=wait)

    def refused(self) -> Failure:
        """A status no earlier rule covered: 5xx retried, 414 our bug, any other 4xx final."""
        if self.status >= 500:
            return self.failure(
                ErrorKind.UPSTREAM_ERROR, f"{self.upstream} failed (HTTP {self.status})", retryable=True
            )
        if self.status == 414:
            return self.failure(
                ErrorKind.INTERNAL, f"{self.upstream} refused our URL as too long (HTTP 414)", retryable=False
            )
        return self.failure(
            ErrorKind.UPSTREAM_ERROR,
            f"{self.upstream} refused the request (HTTP {self.status})",
            retryable=False,
        )

    def shape(self, error: ShapeError) -> Failure:
        return self.failure(
            ErrorKind.INVALID_RESPONSE,
            f"{self.upstream} {self.call} answer has an unexpected shape: {sample(str(error), limit=160)}",
            retryable=False,
        )


def _json(said: Said, now: datetime, retry_after_max_s: float) -> Any | Failure:
    """The parsed body, or the failure of a 429, a 202 or a body that is not JSON."""
    if said.status in (202, 429):
        wait = parse_retry_after(_header(said.headers, "Retry-After"), now=now, ceiling_s=retry_after_max_s)
        if said.status == 429:
            return said.failure(
                ErrorKind.RATE_LIMITED,
                f"{said.upstream} rate limit hit (HTTP 429)",
                retryable=True,
                wait=wait,
            )
        return said.failure(
            ErrorKind.UPSTREAM_ERROR,
            f"{said.upstream} is still preparing the answer (202)",
            retryable=True,
            wait=wait,
        )
    try:
        return json.loads(said.body, parse_float=Decimal)
    except (ValueError, RecursionError):
        if MAINTENANCE_TITLE in said.body:
            return said.failure(
                ErrorKind.UPSTREAM_ERROR, f"{said.upstream} is down for maintenance", retryable=True
            )
        if 200 <= said.status < 300:
            return said.failure(
                ErrorKind.INVALID_RESPONSE,
                f"{said.upstream} answered a body that is not JSON or is cut short",
                retryable=True,
            )
        return said.refused()


def _object(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{name} is not an object")
    return value


def _list(value: object, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ShapeError(f"{name} is not a list")
    return value
