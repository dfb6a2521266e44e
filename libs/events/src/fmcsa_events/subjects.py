"""Subject names of the bus. Builders refuse a bad DOT number or source, so nothing unvalidated
becomes a subject (a `.` or `*` in a DOT would otherwise address other subjects).

Layout: `fmcsa.evt.<event_type>[.<source>][.<dot>]`; dead letters `fmcsa.dlq.<service>.<reason>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fmcsa_events.identifiers import parse_dot, parse_source
from fmcsa_events.models import (
    RULE_NAME_PATTERN,
    AlertRuleChanged,
    AlertRuleRemoved,
    CarrierDataChanged,
    CompanyRegistered,
    CompanyRemoved,
    Event,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    ViolationsListed,
    WebhookResendRequested,
)

EVENTS_PREFIX = "fmcsa.evt"
EVENTS_WILDCARD = f"{EVENTS_PREFIX}.>"
DLQ_PREFIX = "fmcsa.dlq"
DLQ_WILDCARD = f"{DLQ_PREFIX}.>"

_TOKEN = re.compile(r"[a-z0-9_-]{1,64}")


def sync_requested(source: str, dot: str) -> str:
    return f"{EVENTS_PREFIX}.{SyncRequested.TYPE}.{parse_source(source)}.{parse_dot(dot)}"


def sync_requested_filter(source: str) -> str:
    """Every request for one source: a source service's consumer filter."""
    return f"{EVENTS_PREFIX}.{SyncRequested.TYPE}.{parse_source(source)}.*"


def source_synced(source: str, dot: str) -> str:
    return f"{EVENTS_PREFIX}.{SourceSynced.TYPE}.{parse_source(source)}.{parse_dot(dot)}"


def source_failed(source: str, dot: str) -> str:
    return f"{EVENTS_PREFIX}.{SourceFailed.TYPE}.{parse_source(source)}.{parse_dot(dot)}"


def sync_attempt_failed(source: str, dot: str) -> str:
    return f"{EVENTS_PREFIX}.{SyncAttemptFailed.TYPE}.{parse_source(source)}.{parse_dot(dot)}"


def carrier_data_changed(source: str, dot: str) -> str:
    return f"{EVENTS_PREFIX}.{CarrierDataChanged.TYPE}.{parse_source(source)}.{parse_dot(dot)}"


def company_registered(dot: str) -> str:
    return f"{EVENTS_PREFIX}.{CompanyRegistered.TYPE}.{parse_dot(dot)}"


def company_removed(dot: str) -> str:
    return f"{EVENTS_PREFIX}.{CompanyRemoved.TYPE}.{parse_dot(dot)}"


def schedule_changed(source: str) -> str:
    return f"{EVENTS_PREFIX}.{ScheduleChanged.TYPE}.{parse_source(source)}"


def alert_rule_changed(name: str) -> str:
    return f"{EVENTS_PREFIX}.{AlertRuleChanged.TYPE}.{_rule_name(name)}"


def alert_rule_removed(name: str) -> str:
    return f"{EVENTS_PREFIX}.{AlertRuleRemoved.TYPE}.{_rule_name(name)}"


def webhook_resend_requested() -> str:
    return f"{EVENTS_PREFIX}.{WebhookResendRequested.TYPE}"


def _rule_name(name: str) -> str:
    if re.fullmatch(RULE_NAME_PATTERN, name) is None:
        raise ValueError(f"an alert rule name must match {RULE_NAME_PATTERN}, got {name[:70]!r}")
    return name


def dead_letter(service: str, reason: str) -> str:
    """Subject of a dead letter; service and reason are short lower-case tokens."""
    for token in (service, reason):
        if _TOKEN.fullmatch(token) is None:
            raise ValueError(f"dead-letter subject token must match {_TOKEN.pattern}, got {token!r}")
    return f"{DLQ_PREFIX}.{service}.{reason}"


SUBJECT_TOKENS: dict[str, tuple[str, ...]] = {
    CompanyRegistered.TYPE: ("dot",),
    CompanyRemoved.TYPE: ("dot",),
    ScheduleChanged.TYPE: ("source",),
    SyncRequested.TYPE: ("source", "dot"),
    SourceSynced.TYPE: ("source", "dot"),
    SourceFailed.TYPE: ("source", "dot"),
    SyncAttemptFailed.TYPE: ("source", "dot"),
    CarrierDataChanged.TYPE: ("source", "dot"),
    ViolationsListed.TYPE: ("source", "dot"),
    AlertRuleChanged.TYPE: ("name",),
    AlertRuleRemoved.TYPE: ("name",),
    WebhookResendRequested.TYPE: (),
}
"""Per event type, the fields whose values follow `fmcsa.evt.<type>` in its subject, in order: what
`subject_for` publishes on, and the channel parameters of the AsyncAPI document (`{source}`, `{dot}`)."""

_TOKEN_CHECKS: dict[str, Callable[[object], str]] = {
    "source": lambda value: parse_source(value).value,
    "dot": parse_dot,
    "name": lambda value: _rule_name(str(value)),
}
"""How each subject token is checked: nothing unvalidated becomes a subject token."""


def subject_template(event_type: str) -> str:
    """An event type's subject with its tokens as `{field}`: `fmcsa.evt.sync_requested.{source}.{dot}`."""
    return ".".join((EVENTS_PREFIX, event_type, *(f"{{{name}}}" for name in SUBJECT_TOKENS[event_type])))


def subject_for(event: Event) -> str:
    """The subject an event is published on: its type, then its `SUBJECT_TOKENS` fields, each checked."""
    tokens = SUBJECT_TOKENS.get(event.TYPE)
    if tokens is None:
        raise TypeError(f"no subject for {type(event).__name__}")
    return ".".join(
        (EVENTS_PREFIX, event.TYPE, *(_TOKEN_CHECKS[name](getattr(event, name)) for name in tokens))
    )
