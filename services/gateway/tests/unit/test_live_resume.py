"""A page that reconnects with `Last-Event-ID` resumes: the changes it missed, or one `resync` when some of
them are no longer kept (`fmcsa_gateway.live.resume_from`, `LiveFeed.subscribe`). Pure: no broker."""

from __future__ import annotations

from collections import deque
from typing import Any

from fmcsa_gateway.live import RESYNC, Change, LiveFeed, resume_from
from fmcsa_gateway.routes.events import last_event_id


def change(seq: int) -> Change:
    return Change("source_synced", seq, "1", "csa")


def test_resume_from_answers_what_was_missed_or_none_when_it_may_be_gone() -> None:
    recent = deque([change(5), change(7), change(9)])
    assert resume_from(recent, 4, 7) == [change(9)]
    assert resume_from(recent, 4, 4) == [change(5), change(7), change(9)]
    assert resume_from(recent, 4, 9) == []
    assert resume_from(recent, 4, 3) is None  # 4 itself may have been dropped
    assert resume_from(deque(), None, 3) is None  # nothing released yet: before this feed, unknown


def feed(replay_size: int) -> LiveFeed:
    broker: Any = None  # never started: the fan-out alone
    return LiveFeed(broker, applied=None, view_wait_s=1.0, replay_size=replay_size)


async def test_a_reconnecting_page_gets_the_changes_it_missed_first() -> None:
    live = feed(replay_size=3)
    for seq in (11, 12, 13):
        live._broadcast(change(seq))
    async with live.subscribe(12) as subscription:
        live._broadcast(change(14))
        assert [await subscription.next(0.01) for _ in range(3)] == [change(13), change(14), None]


async def test_a_page_older_than_what_is_kept_gets_one_resync() -> None:
    live = feed(replay_size=3)
    for seq in (11, 12, 13, 14):  # 11 dropped: kept are 12, 13, 14
        live._broadcast(change(seq))
    async with live.subscribe(11) as subscription:
        assert [await subscription.next(0.01) for _ in range(4)] == [
            change(12),
            change(13),
            change(14),
            None,
        ]
    async with live.subscribe(10) as subscription:  # 11 is gone
        assert await subscription.next(0.01) is RESYNC
        live._broadcast(change(15))
        assert await subscription.next(0.01) == change(15)
    async with live.subscribe() as subscription:  # a first connection: from now on
        assert await subscription.next(0.01) is None


def test_last_event_id_is_a_sequence_or_ignored() -> None:
    assert last_event_id("42") == 42
    assert last_event_id(" 42 ") == 42
    for value in (None, "", "-1", "4.2", "abc", "\uff11\uff12", "9" * 21):
        assert last_event_id(value) is None
