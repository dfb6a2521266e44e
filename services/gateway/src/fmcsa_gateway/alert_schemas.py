"""The API models of alert rules, backtests, deliveries and destinations. A webhook secret is accepted
on the way in and never given back: answers say only that a destination has one.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, SecretStr, field_validator

from fmcsa_events.identifiers import DotNumber
from fmcsa_events.models import AlertConditions, ChangeKind
from fmcsa_events.text import SAFE_TEXT_PATTERN, SafeText, refuse_control_characters


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class DestinationIn(Request):
    url: SafeText = Field(
        min_length=8,
        max_length=2000,
        description="http(s) URL. A host that does not resolve, or resolves to a loopback, private, "
        "link-local or special-use address, is refused (422) unless FMCSA_WEBHOOK_ALLOW_HOSTS allows it.",
        examples=["https://hooks.acme-logistics.com/fmcsa"],
        json_schema_extra={"pattern": "^https?://[^\\x00-\\x1f\\x7f]+$"},
    )
    secret: SecretStr | None = Field(
        None,
        min_length=16,
        max_length=200,
        description="The signing secret (write-only, at least 16 characters). Required for a new URL; "
        "leave it out to keep the secret a URL of the rule already has.",
        json_schema_extra={"pattern": SAFE_TEXT_PATTERN},
    )

    @field_validator("secret")
    @classmethod
    def _secret_is_text(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None:  # the reason names the character, never the secret
            refuse_control_characters(secret.get_secret_value())
        return secret


class PutAlertRule(Request):
    kinds: list[ChangeKind] = Field(min_length=1, description="The change kinds that fire the rule.")
    dots: list[DotNumber] | None = Field(
        None, max_length=10_000, description="Only these companies; null or absent: every company."
    )
    conditions: AlertConditions = Field(default_factory=AlertConditions)
    destinations: list[DestinationIn] = Field(min_length=1, max_length=5)
    enabled: bool = True


class DestinationOut(_Answer):
    id: str
    url: str
    secret_set: bool = Field(True, description="A secret is set; it is never shown.")


class AlertRule(_Answer):
    name: str
    kinds: list[ChangeKind]
    dots: list[str] | None
    conditions: AlertConditions
    destinations: list[DestinationOut]
    enabled: bool
    changed_by: str
    changed_at: AwareDatetime
    seq: int = Field(description="Stream sequence of the AlertRuleChanged in force.")


class AlertRules(_Answer):
    limit: int = Field(description="Most rules in this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
    items: list[AlertRule]


class BacktestIn(Request):
    since: AwareDatetime = Field(description="Changes observed at or after this moment.")
    until: AwareDatetime | None = Field(None, description="...and before this one; absent: until now.")


class FiredChange(_Answer):
    event_id: str
    seq: int
    dot: str
    source: str
    kind: ChangeKind
    subject: str
    observed_at: AwareDatetime
    before: JsonValue
    after: JsonValue


class Backtest(_Answer):
    rule: str
    since: AwareDatetime
    until: AwareDatetime | None
    scanned: int = Field(description="Changes read from the stream for the period.")
    fired: list[FiredChange] = Field(description="What the rule, as it is now, fires on. Nothing was sent.")
    live_fired: list[str] = Field(
        description="Change event ids the notifier fired on live for this rule over the same period."
    )
    equal: bool = Field(description="The backtest fired exactly what live evaluation fired.")


class AttemptOut(_Answer):
    number: int
    at: AwareDatetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(_Answer):
    id: str = Field(description="The webhook's X-Fmcsa-Event-Id: the same on every attempt and resend.")
    rule: str
    url: str
    destination_id: str
    change_event_id: str
    dot: str
    kind: str
    subject: str
    observed_at: AwareDatetime
    status: str = Field(description="pending, delivered, failed or held (its destination is failing).")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: AwareDatetime | None
    created_at: AwareDatetime
    delivered_at: AwareDatetime | None
    history: list[AttemptOut]


class DeliveryPage(_Answer):
    items: list[DeliveryOut]
    next_before: str | None = Field(description="Pass as `before` for the next (older) page.")


class ResendAccepted(_Answer):
    delivery_id: str
    event_id: str = Field(description="Id of the WebhookResendRequested event.")


class DestinationState(_Answer):
    id: str
    url: str
    failing: bool
    failing_since: AwareDatetime | None
    last_error: str | None
    held: int = Field(description="Deliveries waiting for this destination to answer again.")


class DestinationStates(_Answer):
    items: list[DestinationState]


def delivery_out(delivery: Any) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        rule=delivery.rule,
        url=delivery.url,
        destination_id=delivery.destination_id,
        change_event_id=delivery.change_event_id,
        dot=delivery.dot,
        kind=delivery.kind,
        subject=delivery.subject,
        observed_at=delivery.observed_at,
        status=delivery.status.value,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        history=[
            AttemptOut(
                number=a.number, at=a.at, status_code=a.status_code, error=a.error, duration_ms=a.duration_ms
            )
            for a in delivery.history
        ],
    )
