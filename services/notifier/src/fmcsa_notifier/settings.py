"""The notifier's configuration: `FMCSA_NOTIFIER_<FIELD>`, plus the shared `FMCSA_` fields and the two
webhook settings it shares with the gateway (`FMCSA_WEBHOOK_SECRET_KEY`, `FMCSA_WEBHOOK_ALLOW_HOSTS`).
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from fmcsa_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """Every field has a working default; without `FMCSA_WEBHOOK_SECRET_KEY` no secret opens, so every
    delivery fails (and says why) until the key the gateway sealed with is given.
    """

    model_config = SettingsConfigDict(env_prefix="FMCSA_NOTIFIER_")

    database_url: str | None = Field(
        None,
        description="Rules, deliveries, attempts and destinations (sqlite:/// or postgresql://); unset: "
        "<data_dir>/notifier.sqlite3.",
    )
    api_url: str = Field(
        "http://127.0.0.1:8000",
        description="The gateway's public URL, for the links to the company in each webhook body.",
    )
    retry_schedule_s: str = Field(
        "60,300,1800,7200,43200",
        description="Seconds before each retry of a failed attempt (comma-separated); after the last "
        "the delivery has failed and its destination is marked failing.",
    )
    retry_jitter: float = Field(
        0.2, ge=0, lt=1, description="Each retry delay is spread by up to this fraction either way."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to open a connection to a receiver.")
    timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds one attempt may take in all (resolve, connect, send, read the answer); then it "
        "times out, however the receiver drips its answer.",
    )
    ack_wait_s: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="Seconds a message may go unacked before JetStream redelivers it (a crash mid-delivery); "
        "in-progress acks keep a slow attempt alive.",
    )
    max_deliver: int = Field(
        100, ge=10, description="Deliveries of one message before JetStream gives up (attempts plus crashes)."
    )
    batch_size: int = Field(32, ge=1, le=1000, description="Messages fetched at once.")
    fetch_timeout_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Seconds one pull waits for messages when idle; a stop waits about this long.",
    )
    max_in_flight: int = Field(32, ge=1, le=1000, description="Webhook attempts in flight at once.")
    webhook_secret_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("FMCSA_WEBHOOK_SECRET_KEY"),
        description="Fernet key(s) that seal webhook secrets (comma-separated: the first seals, any opens); "
        "`up` generates one. Gateway and notifier need the same.",
    )
    webhook_allow_hosts: str = Field(
        "",
        validation_alias=AliasChoices("FMCSA_WEBHOOK_ALLOW_HOSTS"),
        description="Hosts, addresses or CIDRs (comma-separated), each optionally with `:port`, webhooks "
        "may reach although they are loopback, private or link-local; `up` allows the sandbox's receiver "
        "(127.0.0.1:<its port>).",
    )

    @field_validator("retry_schedule_s")
    @classmethod
    def _schedule_reads(cls, value: str) -> str:
        steps = [part.strip() for part in value.split(",") if part.strip()]
        if not steps or any(float(step) < 0 for step in steps):
            raise ValueError("the retry schedule is one or more non-negative numbers of seconds")
        return value

    def schedule(self) -> tuple[float, ...]:
        return tuple(float(part) for part in self.retry_schedule_s.split(",") if part.strip())

    def resolved_database_url(self) -> str:
        return self.database_url or self.sqlite_url("notifier")
