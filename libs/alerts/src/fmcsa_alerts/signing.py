"""The webhook signature: `X-Fmcsa-Signature: t=<unix seconds>,v1=<hex>,v2=<hex>`.

Each is an HMAC-SHA256 under the destination's secret:

- `v2` of `"<t>.<event id>.<raw body>"`: the timestamp, the `X-Fmcsa-Event-Id` header and the body, so
  a captured request can neither be replayed later than the receiver's tolerance (five minutes by
  default) nor be replayed within it under another event id to slip past the receiver's de-duplication.
- `v1` of `"<t>.<raw body>"`: the first scheme, still sent during the transition so receivers written
  for it keep working; it does not cover the event id header. Receivers should check `v2`; `v1` will be
  dropped in a later release.

The comparison is constant-time. A header may carry several values of one version (during a secret
rotation); one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

EVENT_ID_HEADER = "X-Fmcsa-Event-Id"
TIMESTAMP_HEADER = "X-Fmcsa-Timestamp"
SIGNATURE_HEADER = "X-Fmcsa-Signature"
TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1`: the hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_v2(secret: str, timestamp: int, event_id: str, body: bytes) -> str:
    """`v2`: the hex HMAC-SHA256 of `<timestamp>.<event id>.<body>` under `secret`."""
    message = f"{timestamp}.{event_id}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes, *, event_id: str) -> str:
    v1 = signature(secret, timestamp, body)
    v2 = signature_v2(secret, timestamp, event_id, body)
    return f"t={timestamp},v1={v1},v2={v2}"


@dataclass(frozen=True, slots=True)
class Verified:
    timestamp: int


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


def verify(
    header: str | None,
    secret: str,
    body: bytes,
    *,
    now: float,
    event_id: str | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> Verified | Refused:
    """Check a signature header against the raw body; refuse a timestamp more than `tolerance_s` away
    from `now` (either way: a clock far ahead is as suspect as a replay). With `event_id` (the
    `X-Fmcsa-Event-Id` header as received) a `v2` signature is required; without it, `v1` (legacy).
    """
    if not header:
        return Refused("no signature header")
    version = "v1" if event_id is None else "v2"
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == version and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return Refused(f"the header lacks t= or {version}=")
    if abs(now - timestamp) > tolerance_s:
        return Refused(f"timestamp {timestamp} is more than {tolerance_s} s from now")
    if event_id is None:
        expected = signature(secret, timestamp, body)
    else:
        expected = signature_v2(secret, timestamp, event_id, body)
    if any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in candidates):
        return Verified(timestamp)
    return Refused("no signature matches")
