"""The envelope: what every event carries besides its facts, travelling as NATS headers.

The event id is sent as `Nats-Msg-Id`, so JetStream drops a republish of the same fact inside the
stream's duplicate window. Ids are deterministic where a fact can be produced twice (style.md 2.7).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fmcsa_events.models import (
    CarrierDataChanged,
    Event,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    Trigger,
    ViolationsListed,
)
from fmcsa_events.text import SafeText

MSG_ID = "Nats-Msg-Id"
TYPE = "Fmcsa-Type"
VERSION = "Fmcsa-Version"
OCCURRED_AT = "Fmcsa-Occurred-At"
CORRELATION_ID = "Fmcsa-Correlation-Id"
CAUSATION_ID = "Fmcsa-Causation-Id"
PRODUCER = "Fmcsa-Producer"
REQUIRED_HEADERS = (MSG_ID, TYPE, VERSION, OCCURRED_AT, PRODUCER)
"""Headers every event carries; the correlation and causation ids only when it has them."""


class MissingHeader(ValueError):
    """A message lacks an envelope header."""


class Envelope(BaseModel):
    """Event id, type, version, occurred-at, correlation id (the request id), causation id, producer."""

    model_config = ConfigDict(frozen=True)
    event_id: SafeText = Field(min_length=1, max_length=200)
    type: SafeText
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    correlation_id: SafeText | None = None
    causation_id: SafeText | None = None
    producer: SafeText

    def to_headers(self) -> dict[str, str]:
        headers = {
            MSG_ID: self.event_id,
            TYPE: self.type,
            VERSION: str(self.version),
            OCCURRED_AT: self.occurred_at.isoformat(),
            PRODUCER: self.producer,
        }
        if self.correlation_id is not None:
            headers[CORRELATION_ID] = self.correlation_id
        if self.causation_id is not None:
            headers[CAUSATION_ID] = self.causation_id
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> Envelope:
        """Read the envelope back; raises `MissingHeader` or pydantic's `ValidationError`."""
        headers = headers or {}
        for required in REQUIRED_HEADERS:
            if required not in headers:
                raise MissingHeader(f"header {required} is missing")
        return cls(
            event_id=headers[MSG_ID],
            type=headers[TYPE],
            version=headers[VERSION],  # pydantic parses the digits (strict=False)
            occurred_at=headers[OCCURRED_AT],  # pydantic parses ISO 8601
            correlation_id=headers.get(CORRELATION_ID),
            causation_id=headers.get(CAUSATION_ID),
            producer=headers[PRODUCER],
        )


def event_id(event: Event) -> str:
    """Give the same fact the same id, so JetStream drops the republish that follows a crash.

    Scheduled and catch-up requests: `<source>:<dot>:<slot>` (replicas and restarts publish a slot
    once). Outcomes: `outcome:<request_id>` (a redelivered request republishes the same outcome); a failed
    attempt that will be retried: `attempt:<request_id>:<attempt>`.
    Manual requests: `request:<request_id>`. Changes: `change:<request_id>:<kind>:<subject>`; pages of
    violation rows: `listed:<request_id>:<offset>`. Anything else: a fresh uuid, made once per fact; a caller
    that retries a publish must reuse the envelope it made.
    """
    match event:
        case SyncRequested(trigger=Trigger.SCHEDULED | Trigger.CATCH_UP, slot=datetime() as slot):
            return f"{event.source}:{event.dot}:{slot.astimezone(UTC):%Y%m%dT%H%MZ}"
        case SyncRequested():
            return f"request:{event.request_id}"
        case SourceSynced() | SourceFailed():
            return f"outcome:{event.request_id}"
        case SyncAttemptFailed():
            return f"attempt:{event.request_id}:{event.attempt}"
        case CarrierDataChanged():
            return f"change:{event.request_id}:{event.kind}:{event.subject}"
        case ViolationsListed():
            return f"listed:{event.request_id}:{event.offset}"
        case _:
            return str(uuid4())


def correlation_of(event: Event) -> str | None:
    """The request id for events that belong to a request."""
    request_id = getattr(event, "request_id", None)
    return str(request_id) if request_id is not None else None


def envelope_for(
    event: Event,
    *,
    producer: str,
    occurred_at: datetime,
    cause: Envelope | None = None,
    event_id_override: str | None = None,
) -> Envelope:
    """Build the envelope of a new event; `cause` is the envelope of the event that led to it."""
    return Envelope(
        event_id=event_id_override or event_id(event),
        type=event.TYPE,
        version=event.VERSION,
        occurred_at=occurred_at,
        correlation_id=correlation_of(event) or (cause.correlation_id if cause else None),
        causation_id=cause.event_id if cause else None,
        producer=producer,
    )


def fresh_id() -> str:
    return str(uuid4())
