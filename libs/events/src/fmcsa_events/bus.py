"""The one way events reach the bus: envelope headers, `Nats-Msg-Id`, and an awaited PubAck.

Every event publish in the services goes through `Bus` (`publish`, `publish_many`, and `publish_saved`
for an event stored before and published again exactly as it was).

`publish` returns only after JetStream stored the event (or recognised it as a duplicate of the same
id), so a caller may ack its input after it. `publish_many` keeps a bounded number of publishes in
flight for bulk producers (the scheduler, imports, replays, benchmarks), and publishes again, with the
same envelope, an event whose PubAck did not come in time (`PUBLISH_ATTEMPTS`): the stream stores it
once whichever attempt reached it, so one slow ack among 100,000 does not fail a whole import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import stamina
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import PubAck

from fmcsa_events.decoder import encode
from fmcsa_events.envelope import Envelope, envelope_for
from fmcsa_events.models import Event
from fmcsa_events.subjects import subject_for
from fmcsa_events.topology import EVENTS_STREAM

PUBLISH_ATTEMPTS = 3
RETRY_FIRST_WAIT_S = 0.5
"""Seconds before the second try; the third waits about twice that (stamina's backoff, at most 2 s)."""
"""Tries of one event in `publish_many` when its PubAck does not come within the bus's timeout (a loaded
server that fsyncs every write); each try sends the same `Nats-Msg-Id`, so the stream keeps one copy."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Published:
    envelope: Envelope
    seq: int
    duplicate: bool


class Bus:
    """Publishes events of one producer (a service name) onto the event stream."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        producer: str,
        clock: Callable[[], datetime] = utc_now,
        timeout_s: float = 10.0,
    ) -> None:
        self._js = js
        self._producer = producer
        self._clock = clock
        self._timeout_s = timeout_s

    def envelope(
        self, event: Event, *, cause: Envelope | None = None, event_id: str | None = None
    ) -> Envelope:
        return envelope_for(
            event, producer=self._producer, occurred_at=self._clock(), cause=cause, event_id_override=event_id
        )

    async def publish(
        self,
        event: Event,
        *,
        cause: Envelope | None = None,
        envelope: Envelope | None = None,
    ) -> Published:
        """Publish and await the PubAck. Pass the same `envelope` again when retrying one fact."""
        envelope = envelope or self.envelope(event, cause=cause)
        ack: PubAck = await self._js.publish(
            subject_for(event),
            encode(event),
            timeout=self._timeout_s,
            stream=EVENTS_STREAM,
            headers=envelope.to_headers(),
        )
        return Published(envelope, ack.seq, bool(ack.duplicate))

    async def publish_saved(self, subject: str, payload: bytes, headers: Mapping[str, str]) -> Published:
        """Publish again, byte for byte, an event stored before with its subject and envelope headers (a
        source's saved outcome): the same event id, so JetStream drops the repeat within its window.
        """
        envelope = Envelope.from_headers(headers)
        ack: PubAck = await self._js.publish(
            subject, payload, timeout=self._timeout_s, stream=EVENTS_STREAM, headers=dict(headers)
        )
        return Published(envelope, ack.seq, bool(ack.duplicate))

    async def publish_many(self, events: Iterable[Event], *, in_flight: int = 256) -> list[Published]:
        """Publish many events with at most `in_flight` PubAcks outstanding; results in input order."""
        semaphore = asyncio.Semaphore(in_flight)

        async def one(event: Event) -> Published:
            envelope = self.envelope(event)  # one id for every try: the stream drops a repeat
            async with semaphore:
                try:  # the first try outside stamina: its retry context cost a quarter of a publish's CPU
                    return await self.publish(event, envelope=envelope)
                except (TimeoutError, NatsTimeoutError):
                    await asyncio.sleep(RETRY_FIRST_WAIT_S)
                async for attempt in stamina.retry_context(
                    on=(NatsTimeoutError, asyncio.TimeoutError),
                    attempts=PUBLISH_ATTEMPTS - 1,
                    timeout=None,
                    wait_initial=2 * RETRY_FIRST_WAIT_S,
                    wait_max=2.0,
                ):
                    with attempt:
                        return await self.publish(event, envelope=envelope)
            raise AssertionError("stamina ended without a result")  # pragma: no cover

        return list(await asyncio.gather(*(one(e) for e in events)))
