"""The webhook signature: `X-Fmcsa-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.

The same scheme as the best-known webhook providers: the timestamp is signed with the body, so a
captured request cannot be replayed later than the receiver's tolerance (five minutes by default),
and the comparison is constant-time. A header may carry several `v1=` values (during a secret
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
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


@dataclass(frozen=True, slots=True)
class Verified:
    timestamp: int


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


def verify(
    header: str | None, secret: str, body: bytes, *, now: float, tolerance_s: int = TOLERANCE_S
) -> Verified | Refused:
    """Check a signature header against the raw body; refuse a timestamp more than `tolerance_s` away
    from `now` (either way: a clock far ahead is as suspect as a replay).
    """
    if not header:
        return Refused("no signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return Refused("the header lacks t= or v1=")
    if abs(now - timestamp) > tolerance_s:
        return Refused(f"timestamp {timestamp} is more than {tolerance_s} s from now")
    expected = signature(secret, timestamp, body)
    if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        return Verified(timestamp)
    return Refused("no signature matches")
