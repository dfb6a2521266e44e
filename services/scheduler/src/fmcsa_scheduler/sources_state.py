"""What the scheduler reads about the sources from the bus, for `capacity` and `staleness`.

- `read_paces`: each source's current pace, the documents the sources keep in the KV bucket
  `fmcsa_pace` (key `<source>.<upstream host>`, JSON with `rate` in calls/s, all replicas together; see
  `fmcsa_source_kit.pacing`), and which of them have a live replica in `fmcsa_pace_replicas` (key
  `<pace key>.<replica>`, dropped by the bucket's TTL). Reads only: the keys are listed from the
  bucket stream's info and each read with a direct get, which every service user may do.
- `load_last_synced`: the last `SourceSynced` of every (source, DOT) in the event stream, read once at
  start with an ephemeral ack-less consumer delivering the last message per subject (the subject is
  `fmcsa.evt.source_synced.<source>.<dot>`), timed by its envelope's `Fmcsa-Occurred-At` header (no
  payload is decoded).
"""

from __future__ import annotations

import contextlib
from datetime import datetime

import structlog
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError

from fmcsa_events import subjects
from fmcsa_events.envelope import OCCURRED_AT
from fmcsa_events.identifiers import SourceKey, parse_dot, parse_source
from fmcsa_events.models import SourceSynced
from fmcsa_events.topology import EVENTS_STREAM, PACE_BUCKET, PACE_REPLICAS_BUCKET, bucket_keys
from fmcsa_scheduler.capacity import paces_from
from fmcsa_scheduler.domain import to_ms

log = structlog.get_logger(__name__)

LOAD_BATCH = 1000
LOAD_WAIT_S = 2.0
"""Seconds a fetch of the start-up read waits for messages before it counts the read as done."""


async def read_paces(js: JetStreamContext) -> dict[SourceKey, float]:
    """Each source's pace (calls/s) as `capacity.paces_from` reads it; sources without one are absent."""
    try:
        paces = await js.key_value(PACE_BUCKET)
        replicas = await js.key_value(PACE_REPLICAS_BUCKET)
    except NotFoundError:
        return {}
    documents: dict[str, bytes] = {}
    for key in await bucket_keys(js, PACE_BUCKET):
        with contextlib.suppress(KeyNotFoundError, KeyDeletedError):
            documents[key] = (await paces.get(key)).value or b""
    live: set[str] = set()
    for key in await bucket_keys(js, PACE_REPLICAS_BUCKET):
        pace_key = key.rpartition(".")[0]
        if pace_key in documents and pace_key not in live:
            with contextlib.suppress(KeyNotFoundError, KeyDeletedError):
                await replicas.get(key)  # a stopped replica's key is a delete marker
                live.add(pace_key)
    return paces_from(documents, live)


async def load_last_synced(js: JetStreamContext) -> dict[tuple[SourceKey, str], int]:
    """The time (epoch ms) of the last `SourceSynced` of every (source, DOT) in the stream."""
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=5.0,  # the server drops it by itself (no service may delete a consumer)
        mem_storage=True,
        num_replicas=1,
    )
    subject = f"{subjects.EVENTS_PREFIX}.{SourceSynced.TYPE}.>"
    sub = await js.pull_subscribe(subject, stream=EVENTS_STREAM, config=config)
    found: dict[tuple[SourceKey, str], int] = {}
    try:
        pending = (await sub.consumer_info()).num_pending or 0
        while pending > 0:
            try:
                messages = await sub.fetch(LOAD_BATCH, timeout=LOAD_WAIT_S)
            except TimeoutError:
                break
            for msg in messages:
                pending = msg.metadata.num_pending
                parsed = _parse(msg.subject, (msg.headers or {}).get(OCCURRED_AT))
                if parsed is not None:
                    found[parsed[0]] = parsed[1]
    finally:
        with contextlib.suppress(NatsError):
            await sub.unsubscribe()
    return found


def _parse(subject: str, occurred_at: str | None) -> tuple[tuple[SourceKey, str], int] | None:
    try:
        *_, source_text, dot_text = subject.split(".")
        if occurred_at is None:
            raise ValueError("no occurred-at header")
        return (parse_source(source_text), parse_dot(dot_text)), to_ms(datetime.fromisoformat(occurred_at))
    except ValueError:  # InvalidSource and InvalidDotNumber are ValueErrors
        log.warning("last_synced_unreadable", subject=subject)
        return None
