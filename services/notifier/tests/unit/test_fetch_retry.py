"""The notifier's pull: the bus away is retried (stamina), an empty wait is no error."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, cast

import nats.errors
import stamina
from nats.js import JetStreamContext

from fmcsa_notifier.handlers import Notifier


class ScriptedSub:
    """Each fetch takes the next item of the script: an exception to raise, or what to return."""

    def __init__(self, *script: BaseException | list[str]) -> None:
        self.script = list(script)
        self.fetches = 0

    async def fetch(self, batch: int = 1, timeout: float | None = 5) -> list[str]:  # noqa: ASYNC109  # nats-py's signature
        self.fetches += 1
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


def a_notifier() -> Notifier:
    unused = cast(Any, None)  # the pull touches neither the store, the sender nor the bus
    return Notifier(
        unused,
        unused,
        unused,
        unused,
        box=None,
        api_url="http://localhost",
        schedule=(60.0,),
        jitter=0.0,
        batch_size=10,
        max_in_flight=1,
        heartbeat_s=60.0,
        clock=lambda: datetime.now(UTC),
        rng=random.Random(1),
    )


async def test_a_fetch_that_fails_is_retried_until_the_bus_answers() -> None:
    sub = ScriptedSub(nats.errors.ConnectionClosedError(), nats.errors.NoServersError(), ["a", "b"])
    with stamina.set_testing(True, attempts=100, cap=True):  # keep the retries, drop the pauses
        got = await a_notifier()._fetch(cast(JetStreamContext.PullSubscription, sub))
    assert got == ["a", "b"]
    assert sub.fetches == 3


async def test_an_empty_wait_is_no_failure_and_no_retry() -> None:
    for timeout in (nats.errors.TimeoutError(), TimeoutError()):
        sub = ScriptedSub(timeout, ["never read"])
        assert await a_notifier()._fetch(cast(JetStreamContext.PullSubscription, sub)) == []
        assert sub.fetches == 1
