"""The sandbox's misbehaviour: a per-source leaky-bucket rate limit, fault dice, and cheap counters.

Nothing here reads a clock or a global RNG: the limiter and the counters take the time as an argument
or from an injected clock, the dice take a `random.Random`, so every rule unit-tests exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Clock = Callable[[], float]

_EPSILON = 1e-9  # float slack, so a client pacing at exactly the rate is not refused by rounding


class LeakyBucket:
    """A leaky bucket of capacity `rate` (one second's worth) draining at `rate` per second: the model of
    `aiolimiter.AsyncLimiter(rate, 1.0)`. A request that would overflow it is refused and does not fill it.
    Rate 0 admits everything. Changing the rate keeps the current level.
    """

    __slots__ = ("_clock", "_last", "_level", "rate")

    def __init__(self, rate: float, *, clock: Clock) -> None:
        self.rate = rate
        self._clock = clock
        self._level = 0.0
        self._last = clock()

    def admit(self) -> float | None:
        """None when the request fits (and is counted in); else the seconds until it would fit."""
        if self.rate <= 0:
            return None
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._last) * self.rate)
        self._last = now
        if self._level + 1 <= self.rate + _EPSILON:
            self._level += 1
            return None
        return (self._level + 1 - self.rate) / self.rate

    def set_rate(self, rate: float) -> None:
        """Drain the bucket up to now at the old rate, then switch."""
        now = self._clock()
        if self.rate > 0:
            self._level = max(0.0, self._level - (now - self._last) * self.rate)
        else:
            self._level = 0.0
        self._last = now
        self.rate = rate


def retry_after_header(wait_s: float) -> str:
    """`Retry-After` in whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(wait_s - _EPSILON)))


class Fault(StrEnum):
    HANG = "hang"
    SERVER_ERROR = "5xx"
    TOO_MANY = "429"
    MALFORMED = "malformed"
    ACCEPTED = "202"


@dataclass(frozen=True, slots=True)
class Odds:
    """One source's fault probabilities; they are exclusive (one draw), so they add up to at most 1."""

    hang: float = 0.0
    server_error: float = 0.0
    too_many: float = 0.0
    malformed: float = 0.0
    accepted: float = 0.0

    @property
    def any(self) -> bool:
        return (self.hang + self.server_error + self.too_many + self.malformed + self.accepted) > 0


@dataclass(frozen=True, slots=True)
class ServerError:
    status: int
    body: bytes
    media_type: str


MAINTENANCE_HTML = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>FMCSA System Maintenance Page</title>
</head>
<body>
<h1>System Maintenance</h1>
<p>This FMCSA system is undergoing scheduled maintenance. Please try again later.</p>
</body>
</html>
"""
"""QCMobile's maintenance page, as recorded (`fmcsa/examples/qcmobile-maintenance.html`)."""

GATEWAY_HTML = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n"
)

SERVER_ERRORS: tuple[ServerError, ...] = (
    ServerError(500, b"{}", "application/json"),
    ServerError(502, b"", "text/plain"),
    ServerError(503, GATEWAY_HTML, "text/html"),
    ServerError(503, b"", "text/plain"),
)
"""The 5xx answers seen from these upstreams and their gateways: JSON `{}`, HTML, or nothing."""


class FaultDice:
    """Draws the fault (if any) for one request. With all odds at zero it draws nothing at all."""

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def roll(self, odds: Odds) -> Fault | None:
        if not odds.any:
            return None
        draw = self._rng.random()
        for fault, p in (
            (Fault.HANG, odds.hang),
            (Fault.SERVER_ERROR, odds.server_error),
            (Fault.TOO_MANY, odds.too_many),
            (Fault.MALFORMED, odds.malformed),
            (Fault.ACCEPTED, odds.accepted),
        ):
            if draw < p:
                return fault
            draw -= p
        return None

    def server_error(self) -> ServerError:
        return self._rng.choice(SERVER_ERRORS)

    def coin(self) -> bool:
        return self._rng.random() < 0.5


class EmptyEveryOtherRead:
    """DOT 99500002's rule: every second read (a first page, `$offset=0`) is answered with a valid empty
    page, as a dataset hiccup would; the reads in between are complete.
    """

    __slots__ = ("_reads",)

    def __init__(self) -> None:
        self._reads = 0

    def empty(self, offset: int) -> bool:
        if offset == 0:
            self._reads += 1
        return self._reads % 2 == 0


class RefusedTwicePerSync:
    """DOT 99200001's rule: the first two calls of each sync are refused. A sync starts with a first page
    (`$offset=0`) after the previous sync completed, and completes with a short page that was served.
    """

    __slots__ = ("_in_sync", "_refused")

    def __init__(self) -> None:
        self._in_sync = False
        self._refused = 0

    def refuse(self, offset: int) -> bool:
        if offset == 0 and not self._in_sync:
            self._in_sync, self._refused = True, 0
        if self._in_sync and self._refused < 2:
            self._refused += 1
            return True
        return False

    def served(self, *, last_page: bool) -> None:
        if last_page:
            self._in_sync = False


class RefusedTwicePerCarrierSync:
    """DOT 99200003's rule (the authority source): the first two calls of each sync are refused, whichever
    paths they ask for. A sync starts with a call to the carrier record (`/carriers/{dot}`, which every
    sync of that source begins with) once a call of the previous sync has been served.
    """

    __slots__ = ("_refused", "_served")

    def __init__(self) -> None:
        self._refused = 0
        self._served = 0

    def refuse(self, *, carrier_record: bool) -> bool:
        if carrier_record and self._served:
            self._refused = self._served = 0
        if self._refused < 2:
            self._refused += 1
            return True
        self._served += 1
        return False


def truncate(body: bytes) -> bytes:
    """A body cut short, as a dropped connection leaves it: the first half (never valid JSON)."""
    return body[: max(1, len(body) // 2)] if len(body) > 1 else b"["


class Counters:
    """One source's counters, cheap enough for thousands of requests per second: plain integer adds, and a
    per-second tally that only touches a dict when the second changes.
    """

    __slots__ = (
        "_current",
        "_current_count",
        "_keep_s",
        "admitted",
        "faults",
        "magic",
        "max_per_s",
        "per_second",
        "requests",
        "served_429",
    )

    def __init__(self, *, keep_s: int = 600) -> None:
        self._keep_s = keep_s
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.admitted = 0
        self.served_429 = 0
        self.faults: dict[str, int] = {fault.value: 0 for fault in Fault}
        self.magic = 0
        self.max_per_s = 0
        self.per_second: dict[int, int] = {}
        self._current = -1
        self._current_count = 0

    def admit(self, now: float) -> None:
        """Count a request the rate limiter let through, in the wall-clock second `now` falls in."""
        self.admitted += 1
        second = int(now)
        if second != self._current:
            self._roll(second)
        self._current_count += 1
        if self._current_count > self.max_per_s:
            self.max_per_s = self._current_count

    def _roll(self, second: int) -> None:
        if self._current_count:
            self.per_second[self._current] = self._current_count
            if len(self.per_second) > self._keep_s:
                for old in sorted(self.per_second)[: len(self.per_second) - self._keep_s]:
                    del self.per_second[old]
        self._current = second
        self._current_count = 0

    def seconds(self) -> dict[str, int]:
        """Admitted requests per wall-clock second (epoch seconds as keys), the current one included."""
        tally = {str(second): count for second, count in sorted(self.per_second.items())}
        if self._current_count:
            tally[str(self._current)] = self._current_count
        return tally
