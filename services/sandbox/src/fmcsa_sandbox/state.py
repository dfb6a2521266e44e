"""The running sandbox's mutable state: data version, run-time knobs, limiters, counters, magic-DOT state.

One `SandboxState` per app, built in `create_app`. Every source request passes `admit` first, in the order
a real edge would apply it: count it, rate-limit it (429), wait the base latency, roll the fault dice.
Only then does the route look at credentials and data.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import deque
from collections.abc import Mapping
from itertools import count
from typing import Any

from litestar import Response

from fmcsa_runtime.redaction import redact
from fmcsa_sandbox.faults import (
    Clock,
    Counters,
    EmptyEveryOtherRead,
    Fault,
    FaultDice,
    LeakyBucket,
    Odds,
    RefusedTwicePerCarrierSync,
    RefusedTwicePerSync,
    retry_after_header,
    truncate,
)
from fmcsa_sandbox.settings import RUNTIME_KNOBS, SOURCES, Settings, fault_names

JSON = "application/json"
REQUESTS_SEEN = 1000

Gate = Response[bytes] | Fault | None
"""What `admit` decides: answer this now, serve but cut the body (`Fault.MALFORMED`), or serve (None)."""


class SourceState:
    __slots__ = ("bucket", "counters", "latency_s", "name", "odds")

    def __init__(self, name: str, *, monotonic: Clock) -> None:
        self.name = name
        self.bucket = LeakyBucket(0.0, clock=monotonic)
        self.counters = Counters()
        self.latency_s = 0.0
        self.odds = Odds()


def too_many_requests(retry_after: str | None) -> Response[bytes]:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Response(b"Too Many Requests", status_code=429, media_type="text/plain", headers=headers)


def json_response(
    body: object, status: int = 200, *, headers: Mapping[str, str] | None = None, media_type: str = JSON
) -> Response[bytes]:
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=status,
        media_type=media_type,
        headers=dict(headers or {}),
    )


class SandboxState:
    """Mutated only from the event loop's thread (handlers and admin calls), so no locks are needed."""

    def __init__(self, settings: Settings, *, clock: Clock, monotonic: Clock, rng: random.Random) -> None:
        self.clock = clock
        self.version = settings.data_version
        self.ahead: frozenset[int] = frozenset()  # DOTs a partial bump serves one version ahead
        # the daily difference datasets (`socrata.DAILY_DIFFERENCES`): the carriers the latest bump changed,
        # and when it was published (epoch seconds, their `rowsUpdatedAt`); the sandbox's start publishes none
        self.difference_dots: frozenset[int] = frozenset()
        self.difference_published = int(clock())
        self.served_dots: set[int] = set()  # carriers QCMobile served a record of: what a full bump lists
        self.web_key = settings.qcmobile_web_key.get_secret_value()
        self.app_token = settings.socrata_app_token.get_secret_value()
        self.api_key = settings.saferweb_api_key.get_secret_value()
        self.lapsed_keys = settings.lapsed_keys()
        self.knobs: dict[str, Any] = {}
        self.sources = {name: SourceState(name, monotonic=monotonic) for name in SOURCES}
        self.dice = FaultDice(rng)
        self.seen: deque[tuple[str, bytes]] = deque(maxlen=REQUESTS_SEEN)
        self.refused_twice = RefusedTwicePerSync()
        self.empty_every_other = EmptyEveryOtherRead()
        self.authority_refused_twice = RefusedTwicePerCarrierSync()
        self._request_ids = count(1)
        self._request_prefix = os.urandom(4).hex()
        self.update(settings.runtime_knobs())

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply run-time knob changes (names of `RUNTIME_KNOBS`, already validated); returns all knobs."""
        unknown = set(changes) - set(RUNTIME_KNOBS)
        if unknown:
            raise ValueError(f"unknown knobs: {', '.join(sorted(unknown))}")
        merged = {**self.knobs, **changes}
        for source_name in SOURCES:
            total = sum(float(merged[name]) for name in fault_names(source_name))
            if total > 1.0 + 1e-9:
                raise ValueError(f"{source_name} fault probabilities add up to {total:g} (more than 1)")
        self.knobs = merged
        for name, source in self.sources.items():
            rate = float(merged[f"{name}_rate_per_s"])
            if rate != source.bucket.rate:
                source.bucket.set_rate(rate)
            source.latency_s = float(merged[f"{name}_latency_ms"]) / 1000
            source.odds = Odds(
                hang=merged[f"{name}_p_hang"],
                server_error=merged[f"{name}_p_5xx"],
                too_many=merged[f"{name}_p_429"],
                malformed=merged[f"{name}_p_malformed"],
                accepted=merged.get(f"{name}_p_202", 0.0),
            )
        return dict(self.knobs)

    async def admit(self, name: str, scope: Mapping[str, Any]) -> Gate:
        """Count, rate-limit, delay and maybe break one request to source `name`."""
        source = self.sources[name]
        counters = source.counters
        counters.requests += 1
        self.seen.append((scope["path"], scope["query_string"]))
        wait = source.bucket.admit()
        if wait is not None:
            counters.served_429 += 1
            return too_many_requests(retry_after_header(wait) if self.knobs["retry_after"] else None)
        counters.admit(self.clock())
        if source.latency_s:
            await asyncio.sleep(source.latency_s)
        fault = self.dice.roll(source.odds)
        if fault is None:
            return None
        counters.faults[fault.value] += 1
        match fault:
            case Fault.HANG:
                await asyncio.sleep(float(self.knobs["hang_s"]))
                return None
            case Fault.SERVER_ERROR:
                error = self.dice.server_error()
                return Response(error.body, status_code=error.status, media_type=error.media_type)
            case Fault.TOO_MANY:
                with_header = self.knobs["retry_after"] and self.dice.coin()
                return too_many_requests("1" if with_header else None)
            case Fault.ACCEPTED:
                return Response(b"", status_code=202, media_type=JSON)
            case _:
                return Fault.MALFORMED

    def count_magic(self, name: str) -> None:
        self.sources[name].counters.magic += 1

    async def hang(self) -> None:
        await asyncio.sleep(float(self.knobs["hang_s"]))

    def request_id(self) -> str:
        return f"{self._request_prefix}{next(self._request_ids):016x}"

    def bump(self, dots: frozenset[int] | None = None) -> int:
        """The next data version for every carrier; or, given `dots`, a partial publication: those carriers
        are served one version ahead (their rows' `:updated_at` and the datasets' `rowsUpdatedAt` move),
        the rest as before. A later full bump brings everyone level again.
        """
        if dots is None:
            self.version += 1
            self.ahead = frozenset()
        else:
            self.ahead |= dots
        # the daily differences list what this bump changed (a full bump: every carrier the sandbox has
        # served, as it cannot list a population it generates on demand), one second or more later
        self.difference_dots = frozenset(self.served_dots if dots is None else dots)
        self.difference_published = max(int(self.clock()), self.difference_published + 1)
        return self.version

    def version_of(self, dot: int | None) -> int:
        """The data version `dot` is served at (one ahead after a partial bump that named it)."""
        return self.version + 1 if dot is not None and dot in self.ahead else self.version

    @property
    def published_version(self) -> int:
        """The version whose publication the datasets' metadata shows (the newest any carrier is at)."""
        return self.version + 1 if self.ahead else self.version

    def reset(self) -> None:
        for source in self.sources.values():
            source.counters.reset()
        self.seen.clear()

    def stats(self) -> dict[str, Any]:
        """The counters, with every request path and query scrubbed of secrets."""
        return {
            "data_version": self.version,
            "carriers_ahead": len(self.ahead),
            "daily_difference": {
                "published": self.difference_published,
                "carriers": len(self.difference_dots),
            },
            "sources": {
                name: {
                    "requests": c.requests,
                    "admitted": c.admitted,
                    "served_429": c.served_429,
                    "faults": dict(c.faults),
                    "magic": c.magic,
                    "max_per_s": c.max_per_s,
                    "per_second": c.seconds(),
                }
                for name, c in ((name, source.counters) for name, source in self.sources.items())
            },
            "requests_seen": [self._scrub(path, query) for path, query in self.seen],
        }

    def _scrub(self, path: str, query: bytes) -> str:
        text = f"{path}?{query.decode('latin-1')}" if query else path
        for secret in (self.web_key, self.app_token, self.api_key):
            if secret:
                text = text.replace(secret, "***")
        return redact(text)


def respond(
    gate: Gate,
    body: bytes,
    *,
    status: int = 200,
    media_type: str = JSON,
    headers: Mapping[str, str] | None = None,
) -> Response[bytes]:
    """The answer to an admitted request: its body cut short when the dice said malformed."""
    if gate is Fault.MALFORMED:
        body = truncate(body)
    return Response(body, status_code=status, media_type=media_type, headers=dict(headers or {}))
