"""Who may do what on the bus: one NATS user per service, its publish and subscribe permissions, and the
nats-server `authorization` block rendered from them. `./fmcsa up`, docker-compose and the cluster
configuration (deploy/nats/authorization.conf) all come from `render_authorization`; nothing else lists
permissions.

What it guarantees (libs/events/tests/integration/test_bus_permissions.py checks each on a real
nats-server; R7 on the running system):

- Facts have one author: only the gateway publishes company, schedule and alert-rule events; requests
  come from the scheduler and the gateway (manual triggers); a source publishes only its own outcomes
  progress and change facts (`fmcsa.evt.{source_synced,source_failed,sync_attempt_failed,
  carrier_data_changed}.<its source>.*`), and the violations source its pages of violation rows
  (`fmcsa.evt.violations_listed.violations.*`);
  resend requests come from the gateway and the notifier; each service dead-letters only under its own
  name (`fmcsa.dlq.<service>.>`); the status service publishes change facts only
  (`fmcsa.evt.carrier_data_changed.*.*`: its derived `risk_changed`, under the source whose success
  moved the carrier's record; nats-server checks subjects, not kinds, so it could spell any kind).
- Only `admin` may delete or purge a stream or a message, delete a consumer, snapshot or restore a
  stream, or use the server and account APIs: every service user has them in its `deny` list, and its
  `allow` list names only the JetStream API calls the services make (traced from a full run): create,
  update and info of our own streams and buckets (`topology.declare` runs at every service start),
  consumer create and info, reads, acks and flow control of our own consumers.
- Only the status service writes the status snapshots' object store (`$O.fmcsa_status_snapshots.>`);
  it retires an old snapshot with a rollup message, never a purge.
- Every service user may subscribe only to replies (`_INBOX.>`); none may publish to an inbox, so none
  can forge another's reply (a PubAck, a JetStream API answer).

Not covered: reading. Any service user may create a consumer on the event stream and so read every
event (the stream holds no secret: webhook secrets are sealed before they become events), and may
subscribe to other services' reply inboxes. A service user may also update our streams' limits and any
consumer of our streams, another service's durable included (`declare` creates and reconciles all of
them, and any service may start first); nats-server cannot tell such an edit from a legitimate one by
subject.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    AlertRuleChanged,
    AlertRuleRemoved,
    CarrierDataChanged,
    CompanyRegistered,
    CompanyRemoved,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    ViolationsListed,
    WebhookResendRequested,
)
from fmcsa_events.subjects import DLQ_PREFIX, EVENTS_PREFIX
from fmcsa_events.topology import (
    DLQ_STREAM,
    EVENTS_STREAM,
    INFLIGHT_BUCKET,
    LEASES_BUCKET,
    NOTIFIER_DURABLE,
    PACE_BUCKET,
    PACE_REPLICAS_BUCKET,
    STATE_BUCKET,
    STATUS_SNAPSHOTS_BUCKET,
    source_durable,
)

ADMIN = "admin"
"""The operator's user: everything, including deleting and purging. Tests, `bench` and the nats CLI."""

GATEWAY = "gateway"
SCHEDULER = "scheduler"
STATUS = "status"
NOTIFIER = "notifier"


def source_user(source: SourceKey) -> str:
    """The NATS user of a source service: its service name, `source-<source>`."""
    return f"source-{SourceKey(source)}"


def password_variable(user: str) -> str:
    """The environment variable holding a user's password in deploy/ (e.g. `NATS_PASSWORD_SOURCE_CSA`)."""
    return "NATS_PASSWORD_" + user.upper().replace("-", "_")


ADMIN_ONLY: tuple[str, ...] = (
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.STREAM.SNAPSHOT.>",
    "$JS.API.STREAM.RESTORE.>",
    "$JS.API.STREAM.PEER.>",
    "$JS.API.STREAM.LEADER.>",
    "$JS.API.CONSUMER.DELETE.>",
    "$JS.API.CONSUMER.PAUSE.>",
    "$JS.API.CONSUMER.LEADER.>",
    "$JS.API.CONSUMER.UNPIN.>",
    "$JS.API.META.>",
    "$JS.API.SERVER.>",
    "$JS.API.ACCOUNT.>",
    "$SYS.>",
    "_INBOX.>",
)
"""Denied to every service user (a deny wins over any allow): destruction, cluster and server
administration, and publishing to reply inboxes (forged replies)."""

_OUR_STREAMS = (
    EVENTS_STREAM,
    DLQ_STREAM,
    *(f"KV_{b}" for b in (INFLIGHT_BUCKET, LEASES_BUCKET, STATE_BUCKET, PACE_BUCKET, PACE_REPLICAS_BUCKET)),
    f"OBJ_{STATUS_SNAPSHOTS_BUCKET}",
)

_DECLARE_AND_READ: tuple[str, ...] = (
    "$JS.API.INFO",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    *(f"$JS.API.STREAM.{verb}.{stream}" for stream in _OUR_STREAMS for verb in ("CREATE", "UPDATE", "INFO")),
    *(f"$JS.API.STREAM.MSG.GET.{stream}" for stream in _OUR_STREAMS),
    *(f"$JS.API.DIRECT.GET.{stream}.>" for stream in _OUR_STREAMS),
    *(f"$JS.API.DIRECT.GET.{stream}" for stream in _OUR_STREAMS),
    *(f"$JS.API.CONSUMER.{verb}.{stream}.>" for stream in _OUR_STREAMS for verb in ("CREATE", "INFO")),
    *(f"$JS.API.CONSUMER.CREATE.{stream}" for stream in _OUR_STREAMS),
    f"$JS.API.CONSUMER.DURABLE.CREATE.{EVENTS_STREAM}.*",
    *(f"$JS.API.CONSUMER.NAMES.{stream}" for stream in _OUR_STREAMS),
    *(f"$JS.API.CONSUMER.LIST.{stream}" for stream in _OUR_STREAMS),
    "$JS.FC.>",  # flow-control answers of ordered consumers (the live feed, the status reader, KV watches)
)
"""What every service's start (`topology.declare`, which creates whatever is missing: any service may be
the first) and its readers need: our streams, buckets and consumers created, updated and read."""


def _event(event_type: str, tail: str = ">") -> str:
    return f"{EVENTS_PREFIX}.{event_type}.{tail}" if tail else f"{EVENTS_PREFIX}.{event_type}"


def _dead_letters(service: str) -> str:
    return f"{DLQ_PREFIX}.{service}.>"


_FOLLOW = f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.*"
"""Fetch from the ack-less ephemeral pull consumers (generated names) of
`fmcsa_events.consume.OrderedFollower` and `read_stream`. A service holding it could also fetch from
another's durable but never acknowledge it (`$JS.ACK` stays per durable): that message comes back
after its ack wait."""


def _kv(bucket: str, keys: str = ">") -> str:
    return f"$KV.{bucket}.{keys}"


def _objects(bucket: str) -> str:
    """Write an object store: its chunks (`$O.<bucket>.C.<nuid>`), its metadata (`$O.<bucket>.M.<name>`)."""
    return f"$O.{bucket}.>"


def _pull(durable: str) -> tuple[str, ...]:
    """Fetch from, and acknowledge, one durable pull consumer of the event stream."""
    return (f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{durable}", f"$JS.ACK.{EVENTS_STREAM}.{durable}.>")


def _source(source: SourceKey) -> tuple[str, ...]:
    return (
        *(
            _event(t, f"{source}.*")
            for t in (SourceSynced.TYPE, SourceFailed.TYPE, SyncAttemptFailed.TYPE, CarrierDataChanged.TYPE)
        ),
        *((_event(ViolationsListed.TYPE, f"{source}.*"),) if source is SourceKey.VIOLATIONS else ()),
        _dead_letters(source_user(source)),
        *_pull(source_durable(source)),
        _kv(PACE_BUCKET),  # the shared adaptive pace of its upstream hosts (fmcsa_source_kit.pacing)
        _kv(PACE_REPLICAS_BUCKET),  # its replicas' heartbeats, which split that pace
    )


@dataclass(frozen=True)
class Permissions:
    """One user's rights: what it may publish (beyond `ADMIN_ONLY`, which it may not) and subscribe to."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...] = ("_INBOX.>",)
    deny_publish: tuple[str, ...] = ADMIN_ONLY


USERS: Mapping[str, Permissions] = {
    ADMIN: Permissions(publish=(">",), subscribe=(">",), deny_publish=()),
    GATEWAY: Permissions(
        publish=(
            *(
                _event(t)
                for t in (
                    CompanyRegistered.TYPE,
                    CompanyRemoved.TYPE,
                    ScheduleChanged.TYPE,
                    AlertRuleChanged.TYPE,
                    AlertRuleRemoved.TYPE,
                    SyncRequested.TYPE,  # manual triggers
                )
            ),
            _event(WebhookResendRequested.TYPE, ""),
            _kv(INFLIGHT_BUCKET),  # takes a pair's in-flight marker before a manual request
            _FOLLOW,  # a backtest reads past changes (read_stream)
            *_DECLARE_AND_READ,
        )
    ),
    SCHEDULER: Permissions(
        publish=(
            _event(SyncRequested.TYPE),
            _kv(INFLIGHT_BUCKET),
            _kv(STATE_BUCKET, "scheduler.>"),  # checkpoint, back-offs, the status the gateway shows
            _FOLLOW,  # its two folds
            *_DECLARE_AND_READ,
        )
    ),
    STATUS: Permissions(
        publish=(
            _event(CarrierDataChanged.TYPE, "*.*"),  # risk_changed (fmcsa_status.publisher), any source
            _dead_letters(STATUS),
            _FOLLOW,
            # its snapshots: put, and retire old ones with a rollup (no purge: fmcsa_status.snapshot)
            _objects(STATUS_SNAPSHOTS_BUCKET),
            *_DECLARE_AND_READ,
        )
    ),
    NOTIFIER: Permissions(
        publish=(
            _event(WebhookResendRequested.TYPE, ""),  # a destination that answers again releases held ones
            _dead_letters(NOTIFIER),
            *_pull(NOTIFIER_DURABLE),
            _FOLLOW,  # the rule history read at start (read_stream)
            *_DECLARE_AND_READ,
        )
    ),
    **{source_user(s): Permissions(publish=(*_source(s), *_DECLARE_AND_READ)) for s in SourceKey},
}
"""Every user of the bus. A service connects as the user named after it (`source-csa`, `gateway`...)."""

SERVICE_USERS: tuple[str, ...] = tuple(user for user in USERS if user != ADMIN)

_PASSWORD = re.compile(r"[A-Za-z0-9_-]{16,128}")


def render_authorization(passwords: Mapping[str, str] | None = None) -> str:
    """The nats-server `authorization { users = [...] }` block for `USERS`.

    `passwords` (user -> password; 16-128 URL-safe characters, as `./fmcsa up` makes them) are written
    in; without them each password is the environment variable `password_variable(user)`, which
    nats-server reads at start (deploy/nats/authorization.conf). Deterministic: the same input, the same
    text, so the deploy file can be compared with it.
    """
    lines = [
        "# Generated from libs/events/src/fmcsa_events/permissions.py (render_authorization): edit there.",
        "authorization {",
        "  users = [",
    ]
    for user, rights in USERS.items():
        if passwords is None:
            password = f"${password_variable(user)}"
        else:
            given = passwords[user]
            if _PASSWORD.fullmatch(given) is None:
                raise ValueError(f"the password of {user} must be 16-128 URL-safe characters")
            password = json.dumps(given)
        publish: dict[str, list[str]] = {"allow": list(rights.publish)}
        if rights.deny_publish:
            publish["deny"] = list(rights.deny_publish)
        permissions = {"publish": publish, "subscribe": {"allow": list(rights.subscribe)}}
        lines += [
            "    {",
            f"      user: {json.dumps(user)}",
            f"      password: {password}",
            f"      permissions: {json.dumps(permissions, indent=2)}".replace("\n", "\n      "),
            "    }",
        ]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # regenerates deploy/nats/authorization.conf: python -m fmcsa_events.permissions
    print(render_authorization(), end="")
