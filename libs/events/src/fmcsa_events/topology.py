"""Streams, consumers and key-value buckets of the bus, and the one idempotent `declare`.

Every service calls `declare` at start, so any one service can be deployed alone. It creates what is
missing, updates what may be edited (limits, replicas, ack wait, max deliver...), and raises
`TopologyMismatch` when an immutable setting differs (storage, retention, a consumer's ack or deliver
policy): changing those needs a migration, never a silent keep of the old config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import AlertRuleChanged, AlertRuleRemoved, CarrierDataChanged
from fmcsa_events.subjects import (
    DLQ_WILDCARD,
    EVENTS_PREFIX,
    EVENTS_WILDCARD,
    sync_requested_filter,
    webhook_resend_requested,
)

EVENTS_STREAM = "FMCSA_EVENTS"
DLQ_STREAM = "FMCSA_DLQ"
INFLIGHT_BUCKET = "fmcsa_inflight"
LEASES_BUCKET = "fmcsa_leases"
STATE_BUCKET = "fmcsa_state"
PACE_BUCKET = "fmcsa_pace"
PACE_REPLICAS_BUCKET = "fmcsa_pace_replicas"
STATUS_SNAPSHOTS_BUCKET = "fmcsa_status_snapshots"
"""The object store of the status projection's snapshots (`fmcsa_status.snapshot`): only the status
service writes it; its stream is `OBJ_fmcsa_status_snapshots`."""


class TopologyMismatch(RuntimeError):
    """An existing stream or consumer differs from ours in a setting that cannot be edited."""


@dataclass(frozen=True)
class Topology:
    """The knobs of the bus; defaults suit the embedded single node."""

    replicas: int = 1
    stream_max_bytes: int = 8 * 1024**3
    dlq_max_bytes: int = 512 * 1024**2
    duplicate_window_s: float = 300.0
    max_msg_bytes: int = 1024**2
    source_ack_wait_s: float = 60.0
    source_max_deliver: int = 20
    source_max_ack_pending: int = 512
    inflight_ttl_s: float = 3600.0
    lease_ttl_s: float = 15.0
    pace_replicas_ttl_s: float = 10.0
    sources: tuple[SourceKey, ...] = field(default_factory=lambda: tuple(SourceKey))

    def events_stream(self) -> StreamConfig:
        # Limits retention, no max age, discard-new, deny delete and purge: replay needs all history.
        return StreamConfig(
            name=EVENTS_STREAM,
            description="fmcsa-sync event log: the one global order",
            subjects=[EVENTS_WILDCARD],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_age=0,
            max_bytes=self.stream_max_bytes,
            max_msg_size=self.max_msg_bytes,
            duplicate_window=self.duplicate_window_s,
            num_replicas=self.replicas,
            deny_delete=True,
            deny_purge=True,
        )

    def dlq_stream(self) -> StreamConfig:
        return StreamConfig(
            name=DLQ_STREAM,
            description="fmcsa-sync dead letters, each with its reason",
            subjects=[DLQ_WILDCARD],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=0,
            max_bytes=self.dlq_max_bytes,
            max_msg_size=self.max_msg_bytes + 64 * 1024,
            duplicate_window=self.duplicate_window_s,
            num_replicas=self.replicas,
        )

    def source_consumer(self, source: SourceKey) -> ConsumerConfig:
        """The one durable pull consumer of a source service; its replicas share it."""
        return ConsumerConfig(
            durable_name=source_durable(source),
            description=f"requests for the {source} source service",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.source_ack_wait_s,
            max_deliver=self.source_max_deliver,
            max_ack_pending=self.source_max_ack_pending,
            filter_subject=sync_requested_filter(source),
            num_replicas=self.replicas,
        )

    def buckets(self) -> list[KeyValueConfig]:
        return [
            KeyValueConfig(
                bucket=INFLIGHT_BUCKET,
                description="one marker per (company, source) with an open request",
                ttl=self.inflight_ttl_s,
                storage=StorageType.FILE,
                replicas=self.replicas,
            ),
            KeyValueConfig(
                bucket=LEASES_BUCKET,
                description="renewable leases of single-active roles",
                ttl=self.lease_ttl_s,
                storage=StorageType.FILE,
                replicas=self.replicas,
            ),
            KeyValueConfig(
                bucket=STATE_BUCKET,
                description="heartbeats and state that services publish for the gateway",
                storage=StorageType.FILE,
                replicas=self.replicas,
            ),
            KeyValueConfig(
                bucket=PACE_BUCKET,
                description="the shared upstream pace of each (source, upstream host), changed by CAS",
                storage=StorageType.FILE,
                replicas=self.replicas,
            ),
            KeyValueConfig(
                bucket=PACE_REPLICAS_BUCKET,
                description="heartbeats of the source replicas sharing a pace; the TTL drops dead ones",
                ttl=self.pace_replicas_ttl_s,
                storage=StorageType.FILE,
                replicas=self.replicas,
            ),
        ]

    def object_stores(self) -> list[ObjectStoreConfig]:
        return [
            ObjectStoreConfig(
                bucket=STATUS_SNAPSHOTS_BUCKET,
                description="snapshots of the status projection, each with the stream position it reflects",
                storage=StorageType.FILE,
                replicas=self.replicas,
            )
        ]


def source_durable(source: SourceKey) -> str:
    return f"source-{source}"


NOTIFIER_DURABLE = "notifier"


def notifier_consumer(
    *, ack_wait_s: float, max_deliver: int, max_ack_pending: int, replicas: int = 1
) -> ConsumerConfig:
    """The notifier's durable pull consumer: changes, rule events and resend requests, in stream order.

    It starts at its creation (DeliverPolicy.NEW): a new notifier never sends webhooks for history; it
    folds the rule events before it from the stream instead. Delivery retries are delayed naks of the
    change's message, so `max_deliver` bounds attempts plus redeliveries after crashes.
    """
    return ConsumerConfig(
        durable_name=NOTIFIER_DURABLE,
        description="carrier data changes, alert rules and resend requests for the notifier",
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
        max_ack_pending=max_ack_pending,
        filter_subjects=[
            f"{EVENTS_PREFIX}.{CarrierDataChanged.TYPE}.>",
            f"{EVENTS_PREFIX}.{AlertRuleChanged.TYPE}.>",
            f"{EVENTS_PREFIX}.{AlertRuleRemoved.TYPE}.>",
            webhook_resend_requested(),
        ],
        num_replicas=replicas,
    )


_STREAM_IMMUTABLE = ("storage", "retention")
_STREAM_EDITABLE = (
    "subjects",
    "description",
    "discard",
    "max_age",
    "max_bytes",
    "max_msg_size",
    "duplicate_window",
    "num_replicas",
    "deny_delete",
    "deny_purge",
)
_CONSUMER_IMMUTABLE = ("deliver_policy", "ack_policy", "opt_start_seq")
_CONSUMER_EDITABLE = (
    "description",
    "ack_wait",
    "max_deliver",
    "max_ack_pending",
    "filter_subject",
    "filter_subjects",
)


async def declare(js: JetStreamContext, topology: Topology) -> None:
    """Create or reconcile every stream, consumer and bucket. Idempotent; see the module docstring."""
    for wanted in (topology.events_stream(), topology.dlq_stream()):
        await _declare_stream(js, wanted)
    for source in topology.sources:
        await _declare_consumer(js, EVENTS_STREAM, topology.source_consumer(source))
    for bucket in topology.buckets():
        await _declare_bucket(js, bucket)
    for store in topology.object_stores():
        await _declare_object_store(js, store)


async def declare_consumer(
    js: JetStreamContext, config: ConsumerConfig, *, stream: str = EVENTS_STREAM
) -> None:
    """Create or reconcile one durable consumer that only its own service declares (the notifier's,
    whose ack wait comes from that service's settings); the same rules as `declare`.
    """
    await _declare_consumer(js, stream, config)


async def _declare_stream(js: JetStreamContext, wanted: StreamConfig) -> None:
    assert wanted.name is not None
    try:
        info = await js.stream_info(wanted.name)
    except NotFoundError:
        await js.add_stream(config=wanted)
        return
    have = info.config
    _refuse_immutable(f"stream {wanted.name}", have, wanted, _STREAM_IMMUTABLE)
    if _differs(have, wanted, _STREAM_EDITABLE):
        await js.update_stream(config=wanted)


async def _declare_consumer(js: JetStreamContext, stream: str, wanted: ConsumerConfig) -> None:
    assert wanted.durable_name is not None
    try:
        info = await js.consumer_info(stream, wanted.durable_name)
    except NotFoundError:
        await js.add_consumer(stream, config=wanted)
        return
    have = info.config
    _refuse_immutable(f"consumer {stream}/{wanted.durable_name}", have, wanted, _CONSUMER_IMMUTABLE)
    if have.deliver_subject:  # a push consumer of the same name: a pull consumer cannot replace it
        raise TopologyMismatch(f"consumer {stream}/{wanted.durable_name} is a push consumer")
    if _differs(have, wanted, _CONSUMER_EDITABLE):
        # nats-py's add_consumer is create-or-update on the server; editable fields are applied.
        await js.add_consumer(stream, config=wanted)


async def _declare_bucket(js: JetStreamContext, wanted: KeyValueConfig) -> None:
    try:
        kv = await js.key_value(wanted.bucket)
    except BucketNotFoundError:
        await js.create_key_value(config=wanted)
        return
    status = await kv.status()
    have_ttl = status.ttl or 0.0
    if abs(have_ttl - (wanted.ttl or 0.0)) > 0.001:
        # A KV bucket is a stream named KV_<bucket>; its max_age is its TTL and may be edited.
        info = await js.stream_info(f"KV_{wanted.bucket}")
        config = info.config
        config.max_age = wanted.ttl or 0.0
        await js.update_stream(config=config)


async def _declare_object_store(js: JetStreamContext, wanted: ObjectStoreConfig) -> None:
    """Create the object store when missing (its stream `OBJ_<bucket>`); an existing one is kept."""
    assert wanted.bucket is not None
    try:
        await js.object_store(wanted.bucket)
    except BucketNotFoundError:
        await js.create_object_store(wanted.bucket, config=wanted)


def _refuse_immutable(what: str, have: object, wanted: object, fields: tuple[str, ...]) -> None:
    for name in fields:
        want, got = getattr(wanted, name), getattr(have, name)
        if want is not None and got is not None and want != got:
            raise TopologyMismatch(
                f"{what}: {name} is {got!r} but this code needs {want!r}; it cannot be edited in place"
            )


def _differs(have: object, wanted: object, fields: tuple[str, ...]) -> bool:
    for name in fields:
        want, got = getattr(wanted, name), getattr(have, name)
        if want is None:
            continue
        if isinstance(want, float | int) and isinstance(got, float | int):
            if abs(float(want) - float(got)) > 0.001:
                return True
        elif want != got:
            return True
    return False


async def bucket_keys(js: JetStreamContext, bucket: str) -> list[str]:
    """The keys a KV bucket holds now, sorted, from its stream's subjects in one call (no watcher, which
    needs a consumer); none when the bucket does not exist yet. A key deleted or purged may still be
    listed: read each with a direct get and skip the ones gone.
    """
    prefix = f"$KV.{bucket}."
    try:
        info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{prefix}>")
    except NotFoundError:
        return []
    subjects = (info.state.subjects or {}) if info.state is not None else {}
    return sorted(subject[len(prefix) :] for subject in subjects)
