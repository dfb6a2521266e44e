"""How far a reader of the event stream is behind: the events after its position and the age of the
oldest of them. The status projector exports it as metrics; the gateway's page shows it over a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from fmcsa_events.topology import EVENTS_STREAM


@dataclass(frozen=True, slots=True)
class Lag:
    events: int
    """The stream's last sequence minus the reader's position (0: caught up)."""
    oldest_s: float
    """Seconds since the oldest event not yet read was stored (0 when caught up, or when it is gone)."""


async def stream_lag(js: JetStreamContext, position: int, *, now: datetime | None = None) -> Lag:
    """Two JetStream API calls: the stream's state, and the first message after `position`."""
    state = (await js.stream_info(EVENTS_STREAM)).state
    behind = max(0, state.last_seq - position)
    if behind == 0:
        return Lag(0, 0.0)
    try:
        oldest = await js.get_msg(EVENTS_STREAM, seq=max(position + 1, state.first_seq))
    except NotFoundError:  # removed meanwhile (an interior delete): the age is not known
        return Lag(behind, 0.0)
    if oldest.time is None:
        return Lag(behind, 0.0)
    stored = oldest.time if oldest.time.tzinfo else oldest.time.replace(tzinfo=UTC)
    return Lag(behind, max(0.0, ((now or datetime.now(UTC)) - stored).total_seconds()))
