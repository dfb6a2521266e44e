"""The notifier's handler: one durable pull consumer (`notifier`) over changes, rule events and resend
requests, read by a `fmcsa_events.consume.DurableWorker` (at most `max_in_flight` messages at once, each
its own task, fetched only into free slots, so nothing waits fetched with its ack wait running, and
in-progress acks while a message is worked on); steps only, every decision in `domain` and
`fmcsa_alerts`.

- At start it folds every rule event already in the stream into its store (the consumer starts at its
  creation, so rules from before it come from this read); repeats are keyed by stream sequence.
- Messages are planned one at a time in the order they were fetched (stream order), so a change is
  matched against exactly the rule events before it: a rule event is stored and acked; a change stores
  its deliveries (idempotent ids); a resend request makes its delivery pending again.
- Deliveries are then driven concurrently (at most `max_in_flight` attempts at once): the deliveries of
  one message to different destinations run side by side, those to the same destination one after the
  other, so one receiver's slowness never delays another's. Each due delivery is attempted and recorded
  with its new state; whatever goes wrong in one attempt (any exception) is recorded as that delivery's
  failure and never aborts the others. The message is acked when none is pending, else handed back with
  a delayed nak until the earliest retry is due (retries live on the bus, never in sleeps).
  A stop hands back (nak) what is not done within the grace, so another replica takes it at once.
  A crash before the ack redelivers the message after the ack wait; deliveries recorded as delivered
  are not sent again, one in flight at the crash is (at least once: same id, same body).
- Undecodable messages go to the dead-letter stream with their reason, then are terminated.
- So does a message that decodes but cannot be planned: the pure planning raised for it (reason
  `unplannable`: the same message would raise again) or the store refused one of its values (reason
  `store_refused`, `fmcsa_runtime.database.is_data_error`). Store trouble (an outage) is not either:
  that message comes back after a pause, as before. A data error never holds up the messages after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import Counter

from fmcsa_alerts.deliveries import DeliveryStatus
from fmcsa_alerts.retry import Delivered, GaveUp, RetryLater, settle_attempt
from fmcsa_alerts.sealing import SealedSecretUnreadable, SealingUnavailable, SecretBox
from fmcsa_events.bus import Bus
from fmcsa_events.consume import DurableWorker, Pulled
from fmcsa_events.decoder import Undecodable, decode
from fmcsa_events.models import (
    AlertRuleChanged,
    AlertRuleRemoved,
    CarrierDataChanged,
    WebhookResendRequested,
)
from fmcsa_events.reader import read_stream
from fmcsa_events.subjects import EVENTS_PREFIX
from fmcsa_events.topology import NOTIFIER_DURABLE
from fmcsa_notifier.domain import Ack, NakFor, due, fate, plan
from fmcsa_notifier.sender import Answer, Sender
from fmcsa_notifier.store import NotifierStore, Work
from fmcsa_runtime.database import data_error_reason, is_data_error
from fmcsa_runtime.deadletter import dead_letter
from fmcsa_runtime.redaction import register_secret

SERVICE = "notifier"

log = structlog.get_logger(__name__)

ATTEMPTS = Counter("fmcsa_notifier_attempts_total", "Webhook attempts by result", ["result"])
PLANNED = Counter("fmcsa_notifier_deliveries_planned_total", "Deliveries made by matching rules")

UNPLANNABLE = "unplannable"
STORE_REFUSED = "store_refused"


class Refused(Exception):
    """One message can never be planned (see the module docstring); `reason` names why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def refusal(error: Exception) -> Refused | None:
    """The `Refused` a planning error amounts to, or None when it is store trouble (try again)."""
    if isinstance(error, Refused):
        return error
    if is_data_error(error):
        return Refused(STORE_REFUSED, data_error_reason(error))
    return None


class Notifier:
    def __init__(
        self,
        js: JetStreamContext,
        store: NotifierStore,
        sender: Sender,
        bus: Bus,
        *,
        box: SecretBox | None,
        api_url: str,
        schedule: tuple[float, ...],
        jitter: float,
        batch_size: int,
        max_in_flight: int,
        heartbeat_s: float,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        fetch_timeout_s: float = 1.0,
    ) -> None:
        self._js = js
        self._store = store
        self._sender = sender
        self._bus = bus
        self._box = box
        self._api_url = api_url
        self._schedule = schedule
        self._jitter = jitter
        self._attempt_slots = asyncio.Semaphore(max_in_flight)
        self._clock = clock
        self._rng = rng or random.Random()
        self._locks: dict[str, asyncio.Lock] = {}
        self._planning = asyncio.Lock()  # FIFO: messages are planned in the order they were fetched
        self._worker = DurableWorker(
            js=js,
            durable=NOTIFIER_DURABLE,
            handle=self._handle,
            concurrency=max_in_flight,
            batch=batch_size,
            heartbeat_s=heartbeat_s,
            fetch_wait_s=fetch_timeout_s,
        )

    @property
    def running(self) -> bool:
        return self._worker.running

    async def fold_rule_history(self) -> int:
        """Store every rule event already in the stream; returns how many were read."""
        count = 0
        for subject in (
            f"{EVENTS_PREFIX}.{AlertRuleChanged.TYPE}.>",
            f"{EVENTS_PREFIX}.{AlertRuleRemoved.TYPE}.>",
        ):
            async for item in read_stream(self._js, subject=subject, idle_timeout_s=2.0):
                decoded = item.decoded
                if isinstance(decoded, Undecodable):
                    continue  # the live consumer dead-letters it if it ever sees it
                if isinstance(decoded.event, AlertRuleChanged | AlertRuleRemoved):
                    try:
                        await self._store.record_rule(item.seq, decoded.event)
                    except Exception as error:
                        refused = refusal(error)
                        if refused is None:
                            raise
                        log.warning("notifier_rule_refused", seq=item.seq, reason=refused.detail)
                        continue  # not a rule; the live consumer dead-letters it if it sees it
                    count += 1
        return count

    async def start(self) -> None:
        await self._worker.start()

    async def stop(self, *, grace_s: float) -> None:
        """Stop fetching; what is not done within `grace_s` is handed back (a nak) at once."""
        await self._worker.stop(budget_s=grace_s)

    async def _handle(self, pulled: Pulled) -> None:
        """One message: planned in fetch order (under `_planning`), then its deliveries driven."""
        msg = pulled.raw_message
        async with self._planning:
            try:
                ids = await self._plan(msg)
            except Exception as error:
                refused = refusal(error)
                if refused is None:  # store trouble: the message comes back after a pause
                    log.exception("notifier_plan_failed", seq=msg.metadata.sequence.stream)
                    await msg.nak(delay=5.0)
                else:  # it would fail again: out of the way, with its reason
                    await self._dead_letter(msg, refused.reason, refused.detail)
                return
        if ids is not None:
            await self._drive(msg, ids)

    async def _plan(self, msg: Msg) -> list[str] | None:
        """Apply one message in stream order; the deliveries to drive, or None when it is done."""
        decoded = decode(msg.headers, msg.data)
        seq = msg.metadata.sequence.stream
        if isinstance(decoded, Undecodable):
            await self._dead_letter(msg, decoded.reason.value, decoded.detail)
            return None
        event = decoded.event
        now = self._clock()
        match event:
            case AlertRuleChanged() | AlertRuleRemoved():
                await self._store.record_rule(seq, event)
                await msg.ack()
                log.info(
                    "alert_rule_applied",
                    rule=event.name,
                    seq=seq,
                    removed=isinstance(event, AlertRuleRemoved),
                )
                return None
            case CarrierDataChanged():
                history = await self._store.rule_history()
                try:
                    event_id = decoded.envelope.event_id
                    planned = plan(event, event_id=event_id, seq=seq, history=history, api_url=self._api_url)
                except Exception as error:  # pure: this message raises the same way every time
                    raise Refused(UNPLANNABLE, f"{type(error).__name__}: {error}"[:300]) from None
                await self._store.plan(
                    planned, change=event, event_id=decoded.envelope.event_id, seq=seq, now=now
                )
                PLANNED.inc(len(planned))
                ids = await self._store.ids_for_change(decoded.envelope.event_id)
            case WebhookResendRequested():
                # only the first delivery of the request starts a new round; a redelivery continues it
                if (msg.metadata.num_delivered or 1) == 1:
                    known = await self._store.reset_for_resend(event.delivery_id, now=now)
                    log.info(
                        "webhook_resend", delivery_id=event.delivery_id, known=known, by=event.requested_by
                    )
                ids = [event.delivery_id]
            case _:
                await msg.ack()
                return None
        if not ids:
            await msg.ack()
            return None
        return ids

    async def _dead_letter(self, msg: Msg, reason: str, detail: str) -> None:
        """Store the message in the dead-letter stream with its reason, then terminate it."""
        seq = msg.metadata.sequence.stream
        log.warning("event_dead_lettered", seq=seq, subject=msg.subject, reason=reason, detail=detail)
        await dead_letter(
            self._js,
            service=SERVICE,
            reason=reason,
            detail=detail,
            subject=msg.subject,
            data=msg.data,
            headers=msg.headers,
            stream_seq=seq,
        )
        await msg.term()

    async def _drive(self, msg: Msg, ids: list[str]) -> None:
        try:
            by_destination: dict[str, list[str]] = {}
            for work in await self._store.work(ids):
                by_destination.setdefault(work.destination_id, []).append(work.id)
            await asyncio.gather(*(self._drive_destination(group) for group in by_destination.values()))
            remaining = [
                w.next_attempt_at or self._clock()
                for w in await self._store.work(ids)
                if w.status is DeliveryStatus.PENDING
            ]
            match fate(remaining, now=self._clock()):
                case Ack():
                    await msg.ack()
                case NakFor(delay_s=delay_s):
                    await msg.nak(delay=delay_s)
        except Exception:
            log.exception("notifier_drive_failed", seq=msg.metadata.sequence.stream)
            with contextlib.suppress(Exception):
                await msg.nak(delay=5.0)

    async def _drive_destination(self, ids: list[str]) -> None:
        """The due deliveries of one message to one destination, in order; one's failure is its own."""
        for delivery_id in ids:
            lock = self._locks.setdefault(delivery_id, asyncio.Lock())
            try:
                async with lock:
                    await self._attempt_if_due(delivery_id)
            except Exception:  # the store failed: this delivery stays pending, the others go on
                log.exception("webhook_attempt_not_recorded", delivery_id=delivery_id)

    async def _attempt_if_due(self, delivery_id: str) -> None:
        found = await self._store.work([delivery_id])
        if not found:
            return
        work = found[0]
        now = self._clock()
        if work.status is not DeliveryStatus.PENDING or not due(work.next_attempt_at, now=now):
            return
        try:
            async with self._attempt_slots:
                answer = await self._send(work, now)
        except Exception as error:  # our bug: recorded as this delivery's (retried) failure, no other's
            log.exception("webhook_attempt_raised", delivery_id=work.id)
            answer = Answer(None, f"error: {type(error).__name__}", None, 0)
        settled = settle_attempt(
            attempt=work.round_attempts + 1,
            status=answer.status,
            error=answer.error,
            retry_after_s=answer.retry_after_s,
            schedule=self._schedule,
            jitter=self._jitter,
            unit=self._rng.random(),
        )
        at = self._clock()
        next_at = at + timedelta(seconds=settled.delay_s) if isinstance(settled, RetryLater) else None
        recovered = await self._store.record_attempt(
            work,
            settled=settled,
            status_code=answer.status,
            error=answer.error,
            duration_ms=answer.duration_ms,
            at=at,
            next_attempt_at=next_at,
        )
        result = type(settled).__name__
        ATTEMPTS.labels(result).inc()
        log.info(
            "webhook_attempt",
            delivery_id=work.id,
            attempt=work.attempts + 1,
            status=answer.status,
            error=answer.error,
            result=result,
            retry_in_s=round(settled.delay_s, 1) if isinstance(settled, RetryLater) else None,
        )
        if isinstance(settled, GaveUp) and settled.retryable:
            log.warning("webhook_destination_failing", destination=work.destination_id, reason=settled.reason)
        if isinstance(settled, Delivered) and recovered:
            await self._release_held(work.destination_id)

    async def _send(self, work: Work, now: datetime) -> Answer:
        if self._box is None:
            return Answer(None, "secret_unavailable: FMCSA_WEBHOOK_SECRET_KEY is not set", None, 0)
        try:
            secret = self._box.open(work.sealed_secret)
        except (SealedSecretUnreadable, SealingUnavailable):
            return Answer(None, "secret_unavailable: the secret does not open with this key", None, 0)
        register_secret(secret)  # whatever might print it later is scrubbed
        return await self._sender.post(work.url, work.body, event_id=work.id, secret=secret, now=now)

    async def _release_held(self, destination: str) -> None:
        """The destination answers again: send what waited for it, in change order, as resends."""
        held = await self._store.held_for(destination)
        for delivery_id in held:
            await self._bus.publish(WebhookResendRequested(delivery_id=delivery_id, requested_by=SERVICE))
        log.info("webhook_destination_recovered", destination=destination, released=len(held))
