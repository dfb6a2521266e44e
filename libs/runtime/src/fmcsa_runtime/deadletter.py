"""Dead letters: a message no code can handle goes to `fmcsa.dlq.<service>.<reason>` with its reason.

The original payload (cut to the stream's size limit), subject, stream sequence and headers travel with
it, so an operator can inspect, fix and republish. The dead letter's own `Nats-Msg-Id` is derived from
the original stream sequence, so a redelivered poison message is dead-lettered once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from nats.js import JetStreamContext
from prometheus_client import Counter

from fmcsa_events.subjects import dead_letter as dead_letter_subject
from fmcsa_events.topology import DLQ_STREAM

MAX_KEPT_BYTES = 900 * 1024

DEAD_LETTERS = Counter(
    "fmcsa_dead_letters_total", "Messages sent to the dead-letter stream", ["service", "reason"]
)


async def dead_letter(
    js: JetStreamContext,
    *,
    service: str,
    reason: str,
    detail: str,
    subject: str,
    data: bytes,
    headers: Mapping[str, str] | None,
    stream_seq: int | None,
) -> int:
    """Store one dead letter and count it; returns its sequence in the DLQ stream. Awaits the PubAck."""
    original = {k: v for k, v in (headers or {}).items() if isinstance(k, str) and isinstance(v, str)}
    dlq_headers = {
        "Fmcsa-Dlq-Service": service,
        "Fmcsa-Dlq-Reason": reason,
        "Fmcsa-Dlq-Detail": " ".join(detail.split())[:500],
        "Fmcsa-Dlq-Subject": subject[:300],
        "Fmcsa-Dlq-Original-Headers": json.dumps(original)[:2000],
    }
    if stream_seq is not None:
        dlq_headers["Fmcsa-Dlq-Seq"] = str(stream_seq)
        dlq_headers["Nats-Msg-Id"] = f"dlq:{service}:{stream_seq}"
    ack = await js.publish(
        dead_letter_subject(service, reason), data[:MAX_KEPT_BYTES], stream=DLQ_STREAM, headers=dlq_headers
    )
    if not ack.duplicate:
        DEAD_LETTERS.labels(service=service, reason=reason).inc()
    return int(ack.seq)
