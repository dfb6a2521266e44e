"""The gateway's configuration: FMCSA_GATEWAY_<FIELD> in the environment, plus the shared FMCSA_ fields."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from fmcsa_runtime.settings import ServiceSettings

JWT_SECRET_MIN_LENGTH = 32


class Settings(ServiceSettings):
    """The gateway serves the REST API and the admin page on `host:port`."""

    model_config = SettingsConfigDict(env_prefix="FMCSA_GATEWAY_", extra="ignore", populate_by_name=True)

    http_host: str = Field(
        "127.0.0.1",
        validation_alias=AliasChoices("FMCSA_GATEWAY_HOST"),
        description="Address of the REST API, the admin page, /health, /ready and /metrics.",
    )
    http_port: int = Field(
        8000,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("FMCSA_GATEWAY_PORT"),
        description="Port of the REST API, the admin page, /health, /ready and /metrics.",
    )
    jwt_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("FMCSA_JWT_SECRET"),
        description="Secret that signs bearer tokens (at least 32 characters); `up` generates one. "
        "Unset: every protected route answers 401.",
    )
    status_database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("FMCSA_GATEWAY_STATUS_DATABASE_URL", "FMCSA_STATUS_DATABASE_URL"),
        description="The status projection, read only (sqlite:/// or postgresql://); unset: "
        "status.sqlite3 in the data folder, as the status service writes it.",
    )
    request_deadline_s: float = Field(
        900.0,
        gt=0,
        le=86_400,
        description="Seconds until a manual sync request is answered as `timeout` if nothing answered it.",
    )
    read_your_writes_s: float = Field(
        2.0,
        ge=0,
        le=30,
        description="Longest a registration, removal or import waits for the status view to show it "
        "before answering (so a GET right after sees it), and a trigger for a DOT the view does not "
        "show yet; 0: no wait.",
    )
    import_max_rows: int = Field(
        100_000, ge=1, description="Most data rows one POST /api/companies/import accepts."
    )
    import_max_bytes: int = Field(
        32 * 1024**2,
        ge=1024,
        description="Largest body of POST /api/companies/import (a CSV or JSON import); larger: 413.",
    )
    request_max_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description="Largest body of every other request (forms, JSON commands); larger: 413.",
    )
    trigger_max_dots: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Most DOT numbers one POST /api/sync/trigger may name (each must be registered).",
    )
    trigger_per_minute: int = Field(
        60,
        ge=1,
        description="Manual triggers (API and page) one token subject may send per minute; more: 429.",
    )
    keep_alive_s: int = Field(
        5, ge=1, le=300, description="Seconds an idle keep-alive connection stays open."
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a connection has to send a request's head; slower (dripping) ones are closed.",
    )
    max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        description="Most bytes of a request head buffered while it is incomplete; more: 400 and closed.",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="Connections and requests served at once (open event streams count); more: 503.",
    )
    publish_in_flight: int = Field(
        256,
        ge=1,
        le=4096,
        description="PubAcks outstanding at once when an import or trigger publishes many.",
    )
    sse_keepalive_s: float = Field(
        15.0, gt=0, description="Seconds between comments on an idle /api/events stream (keeps proxies open)."
    )
    sse_view_wait_s: float = Field(
        5.0,
        ge=0,
        description="Longest an event waits for the status view to apply it; then /api/events sends it.",
    )
    # alert rules and webhooks (routes/alerts.py)
    notifier_database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("FMCSA_GATEWAY_NOTIFIER_DATABASE_URL", "FMCSA_NOTIFIER_DATABASE_URL"),
        description="The notifier's deliveries, read only (sqlite:/// or postgresql://); unset: "
        "notifier.sqlite3 in the data folder, as the notifier writes it.",
    )
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

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < JWT_SECRET_MIN_LENGTH:
            raise ValueError(
                f"FMCSA_JWT_SECRET must be at least {JWT_SECRET_MIN_LENGTH} characters "
                "(`./fmcsa up` generates one of 64); a short secret can be guessed offline from one token"
            )
        return value

    def resolved_status_database_url(self) -> str:
        return self.status_database_url or self.sqlite_url("status")

    def resolved_notifier_database_url(self) -> str:
        return self.notifier_database_url or self.sqlite_url("notifier")
