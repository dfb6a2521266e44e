"""The risk publisher: publishes the risk changes the live projector wrote into its outbox
(`status_risk_outbox`, see `fmcsa_status.store`) as `CarrierDataChanged` events, oldest first, and
deletes each after its PubAck.

Each fact keeps its deterministic event id (`change:<request_id>:risk_changed:<light>`), so a publish
repeated after a crash between the PubAck and the delete is dropped by JetStream (its duplicate
window), and past that window the change feed and the notifier keep one per event id. The projector
folds the published fact into the change feed like a source's, and a rebuild replays it from the
stream (a rebuild's store writes no outbox row: nothing is published twice by a replay).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from nats.js import JetStreamContext
from prometheus_client import Counter

from fmcsa_events.bus import Bus
from fmcsa_status.store import StatusStore

log = structlog.get_logger(__name__)

PUBLISHED = Counter("fmcsa_status_risk_changes_published_total", "Risk changes published from the outbox")
CHECK_EVERY_S = 5.0
"""How often the outbox is read without a commit waking the publisher: rows left by a failed publish,
by a run that stopped before publishing, or carried into a store a rebuild swapped in."""
RETRY_S = 1.0
"""The pause after a failed publish or outbox read (the bus or the store away) before trying again."""


class RiskPublisher:
    """Publishes the outbox of one store until stopped."""

    def __init__(self, js: JetStreamContext, store: StatusStore, *, producer: str) -> None:
        self._bus = Bus(js, producer=producer)
        self._store = store
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="status-risk-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        waiting = self._store.risks_waiting
        while True:
            waiting.clear()
            try:
                await self.publish_pending()
            except Exception as error:  # the bus or the store away: the rows stay, try again
                log.warning("status_risk_publish_failed", error=repr(error))
                await asyncio.sleep(RETRY_S)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting.wait(), CHECK_EVERY_S)

    async def publish_pending(self) -> int:
        """Publish every row of the outbox, oldest first, deleting each after its PubAck; the count."""
        published = 0
        for event_id, change in await self._store.pending_risks():
            await self._bus.publish(change, envelope=self._bus.envelope(change, event_id=event_id))
            await self._store.risk_published(event_id)
            PUBLISHED.inc()
            published += 1
            log.info("risk_change_published", dot=change.dot, light=change.subject, event_id=event_id)
        return published
