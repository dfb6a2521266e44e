"""The shape of every source client's rate limiter: a leaky bucket a little inside the upstream's.

The upstreams publish no rate limit; the sandbox (our model of them) counts calls in a leaky bucket of
one second's worth, capacity `rate`, draining at `rate` per second: aiolimiter's `AsyncLimiter(rate,
1.0)`. A client with exactly that bucket fills the upstream's to the brim, and then any call that
reaches the upstream sooner after its predecessor than it left the client is refused: a fresh
connection is slower than a kept one, and on a loaded machine either process can be descheduled and
then handle its queue at once. Measured against the sandbox with the plain model: 1 call in 120 got a
429 at 20/s, 1-4 in 600 at 50/s; with 50 ms of headroom, a 429 at 10/s on a 2-core box at load 5.

So every client keeps headroom, in one shape for all three sources (`client_bucket`):
- the burst is held back by `burst_s` seconds' worth of calls (capacity `rate * (1 - burst_s)`): a call
  may then arrive up to `burst_s` late against the one before without a 429. This costs nothing in the
  long run, only the first second after an idle spell is smaller;
- the bucket drains `DRAIN_HEADROOM` slower than the rate, so the slack grows while the client is busy
  (99% of the rate in the long run);
- where the held-back bucket would hold less than one call (rates up to `1 / (1 - burst_s)`), it holds
  exactly one and calls are spaced `1 / rate + SPACING_S` apart: there the headroom is paid in rate,
  so it stays small (at 1/s, 0.95 calls/s).
"""

from __future__ import annotations

BURST_S = 0.25
"""Seconds' worth of calls held back from the one-second burst: the arrival jitter absorbed."""
DRAIN_HEADROOM = 0.01
"""Share of the rate held back in the long run: the bucket drains at 99% of the rate."""
SPACING_S = 0.05
"""Extra seconds between calls where the bucket holds one call (rates near 1/s)."""


def client_bucket(rate_per_s: float, *, burst_s: float = BURST_S) -> tuple[float, float]:
    """`(max_rate, time_period)` of the client's `AsyncLimiter` for an upstream limited to `rate_per_s`
    in a bucket of one second's worth. aiolimiter grants whole calls only from a bucket of at least one.
    """
    if rate_per_s <= 0:
        raise ValueError(f"a rate limit must be positive, got {rate_per_s}")
    if not 0 <= burst_s < 1:
        raise ValueError(f"burst_s is a share of one second, got {burst_s}")
    capacity = rate_per_s * (1.0 - burst_s)
    if capacity >= 1.0:
        return capacity, capacity / (rate_per_s * (1.0 - DRAIN_HEADROOM))
    return 1.0, 1.0 / rate_per_s + SPACING_S
