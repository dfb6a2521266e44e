"""`DurableWorker`'s pull loop against a scripted subscription: slots, errors, hand-back at a stop."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import nats.errors
import stamina
from nats.js.client import JetStreamContext

from fmcsa_events.consume import DurableWorker, Pulled


class FakeMsg:
    def __init__(self, name: str) -> None:
        self.name = name
        self._ackd = False
        self.settled_with: str | None = None

    async def ack(self) -> None:
        self._settle("ack")

    async def nak(self, delay: float | None = None) -> None:
        self._settle("nak")

    async def term(self) -> None:
        self._settle("term")

    async def in_progress(self) -> None:
        return None

    def _settle(self, how: str) -> None:
        assert not self._ackd, f"{self.name} settled twice"
        self._ackd, self.settled_with = True, how


class ScriptedSub:
    """Each fetch takes the next item: an exception to raise or the messages to return (at most `batch`)."""

    def __init__(self) -> None:
        self.script: asyncio.Queue[BaseException | list[FakeMsg]] = asyncio.Queue()
        self.asked: list[int] = []
        self.unsubscribed = False

    async def fetch(self, batch: int = 1, timeout: float | None = 5) -> list[FakeMsg]:  # noqa: ASYNC109  # nats-py's signature
        self.asked.append(batch)
        try:
            item = await asyncio.wait_for(self.script.get(), timeout)
        except TimeoutError:
            raise nats.errors.TimeoutError from None
        if isinstance(item, BaseException):
            raise item
        assert len(item) <= batch, "the script never delivers more than asked"
        return item

    async def unsubscribe(self) -> None:
        self.unsubscribed = True


class FakeJetStream:
    def __init__(self, sub: ScriptedSub) -> None:
        self.sub = sub

    async def pull_subscribe_bind(self, *, durable: str, stream: str) -> ScriptedSub:
        return self.sub


class Worker:
    """A handler whose deliveries finish when the test says so."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    async def handle(self, delivery: Pulled) -> None:
        msg = cast(FakeMsg, delivery.raw_message)
        self.started.append(msg.name)
        await self.release.setdefault(msg.name, asyncio.Event()).wait()
        await delivery.ack()


def runner_for(sub: ScriptedSub, worker: Worker, concurrency: int) -> DurableWorker:
    return DurableWorker(
        js=cast(JetStreamContext, FakeJetStream(sub)),
        stream="S",
        durable="d",
        handle=worker.handle,
        concurrency=concurrency,
        fetch_wait_s=0.05,
    )


async def test_fetches_only_free_slots_and_a_slow_delivery_holds_only_its_own(wait_until: Any) -> None:
    sub, worker = ScriptedSub(), Worker()
    runner = runner_for(sub, worker, concurrency=3)
    msgs = {name: FakeMsg(name) for name in "abcde"}
    await runner.start()
    await sub.script.put([msgs["a"], msgs["b"], msgs["c"]])

    async def three_running() -> bool:
        return worker.started == ["a", "b", "c"]

    await wait_until(three_running, what="three deliveries started")
    assert runner.in_flight == 3
    worker.release["b"].set()  # one slot frees while "a" and "c" stay slow

    async def one_slot_asked() -> bool:
        return sub.asked[-1] == 1

    await wait_until(one_slot_asked, what="a fetch for the one free slot")
    await sub.script.put([msgs["d"]])

    async def d_running() -> bool:
        return worker.started == ["a", "b", "c", "d"]

    await wait_until(d_running, what="d started beside the slow a and c")
    assert max(sub.asked) == 3
    for name in "acd":
        worker.release[name].set()

    async def all_free() -> bool:
        return runner.in_flight == 0 and sub.asked[-1] == 3

    await wait_until(all_free, what="all three slots free again")
    await runner.stop(budget_s=1.0)
    assert [m.settled_with for m in msgs.values()] == ["ack", "ack", "ack", "ack", None]
    assert sub.unsubscribed


async def test_pull_errors_and_both_timeouts_do_not_end_the_loop(wait_until: Any) -> None:
    sub, worker = ScriptedSub(), Worker()
    runner = runner_for(sub, worker, concurrency=2)
    await runner.start()
    for error in (
        TimeoutError(),  # nats-py raises asyncio's own TimeoutError in a race at the end of its wait
        nats.errors.TimeoutError(),
        nats.errors.ConnectionClosedError(),
        RuntimeError("anything else"),
    ):
        await sub.script.put(error)
    msg = FakeMsg("after")
    await sub.script.put([msg])
    worker.release["after"] = asyncio.Event()
    worker.release["after"].set()

    async def delivered() -> bool:
        return msg.settled_with == "ack"

    await wait_until(delivered, what="a delivery after the errors")
    assert runner.running
    await runner.stop(budget_s=1.0)
    assert not runner.running


async def test_stop_waits_for_what_finishes_and_hands_back_the_rest(wait_until: Any) -> None:
    sub, worker = ScriptedSub(), Worker()
    runner = runner_for(sub, worker, concurrency=4)
    quick, stuck = FakeMsg("quick"), FakeMsg("stuck")
    await runner.start()
    await sub.script.put([quick, stuck])

    async def both_running() -> bool:
        return worker.started == ["quick", "stuck"]

    await wait_until(both_running, what="both deliveries started")
    stopping = asyncio.create_task(runner.stop(budget_s=0.5))
    worker.release["quick"].set()  # finishes within the budget; "stuck" never does
    await stopping
    assert (quick.settled_with, stuck.settled_with) == ("ack", "nak")
    assert runner.in_flight == 0
    assert sub.unsubscribed


class OneShotSub:
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


async def test_a_fetch_that_fails_is_retried_until_the_bus_answers() -> None:
    sub = OneShotSub(nats.errors.ConnectionClosedError(), nats.errors.NoServersError(), ["a", "b"])
    with stamina.set_testing(True, attempts=100, cap=True):  # keep the retries, drop the pauses
        got = await runner_for(ScriptedSub(), Worker(), 2)._fetch(
            cast(JetStreamContext.PullSubscription, sub), 2
        )
    assert got == ["a", "b"]
    assert sub.fetches == 3


async def test_an_empty_wait_is_no_failure_and_no_retry() -> None:
    for timeout in (nats.errors.TimeoutError(), TimeoutError()):
        sub = OneShotSub(timeout, ["never read"])
        worker = runner_for(ScriptedSub(), Worker(), 2)
        assert await worker._fetch(cast(JetStreamContext.PullSubscription, sub), 2) == []
        assert sub.fetches == 1
