"""The projector's loop: a failed follow (store or bus trouble) is retried by stamina; `failures` counts
each, and a follow that ends (a resync) starts again without a pause."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
import stamina

from fmcsa_status.handlers import Projector


class ScriptedProjector(Projector):
    """`_follow` raises the script's errors in turn, returns for None, and stops once the script is out."""

    def __init__(self, *script: Exception | None) -> None:
        unused = cast(Any, None)  # the loop itself touches neither the bus nor the store
        super().__init__(unused, unused, batch_size=1, batch_wait_s=0.01)
        self.script = list(script)
        self.follows = 0

    async def _follow(self) -> None:
        self.follows += 1
        item = self.script.pop(0)
        if not self.script:
            self._stopping.set()
        if item is not None:
            raise item


async def test_failed_follows_are_retried_and_counted() -> None:
    projector = ScriptedProjector(
        OSError("store away"), ConnectionError("bus away"), None, OSError("again"), None
    )
    with stamina.set_testing(True, attempts=100, cap=True):  # keep the retries, drop the pauses
        await projector.run()
    assert projector.follows == 5
    assert projector.failures == 3


async def test_a_cancel_is_not_retried() -> None:
    projector = ScriptedProjector(asyncio.CancelledError(), None)
    with stamina.set_testing(True, attempts=100, cap=True), pytest.raises(asyncio.CancelledError):
        await projector.run()
    assert (projector.follows, projector.failures) == (1, 0)
