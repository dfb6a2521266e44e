"""Subject names of the bus. Builders refuse a bad DOT number or source, so nothing unvalidated
becomes a subject (a `.` or `*` in a DOT would otherwise address other subjects).

Layout: `fmcsa.evt.<event_type>[.<source>][.<dot>]`; dead letters `fmcsa.dlq.<service>.<reason>`.
"""

from __future__ import annotations

import re

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


def subject_for(event: Event) -> str:
    """The subject an event is published on."""
    match event:
        case SyncRequested() | SourceSynced() | SourceFailed() | SyncAttemptFailed() | CarrierDataChanged():
            return f"{EVENTS_PREFIX}.{event.TYPE}.{event.source}.{event.dot}"
        case CompanyRegistered() | CompanyRemoved():
            return f"{EVENTS_PREFIX}.{event.TYPE}.{event.dot}"
        case ScheduleChanged():
            return schedule_changed(event.source)
        case AlertRuleChanged():
            return alert_rule_changed(event.name)
        case AlertRuleRemoved():
            return alert_rule_removed(event.name)
        case WebhookResendRequested():
            return webhook_resend_requested()
        case _:
            raise TypeError(f"no subject for {type(event).__name__}")
