"""The settings every service shares, read from the environment with the `FMCSA_` prefix.

Each service subclasses `ServiceSettings` with its own prefix (`FMCSA_CSA_`, `FMCSA_STATUS_`...);
the shared fields below keep their `FMCSA_` names in every subclass through explicit aliases.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fmcsa_events.topology import Topology


def _shared(name: str) -> AliasChoices:
    return AliasChoices(f"FMCSA_{name}")


class ServiceSettings(BaseSettings):
    """Shared fields: `FMCSA_NATS_URL` and the bus credential (`FMCSA_NATS_USER`, `FMCSA_NATS_PASSWORD` or
    `FMCSA_NATS_PASSWORD_FILE`, `FMCSA_NATS_TLS_CA_FILE`), `FMCSA_DATA_DIR`, `FMCSA_LOG_LEVEL`,
    `FMCSA_LOG_JSON`, `FMCSA_REPLICAS`, `FMCSA_STREAM_MAX_BYTES`. Per-service fields use the subclass's
    prefix.
    """

    # hide_input_in_errors: a refused setting never prints the environment it was read from (secrets)
    model_config = SettingsConfigDict(
        env_prefix="FMCSA_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    nats_url: str = Field(
        "nats://127.0.0.1:4222",
        validation_alias=_shared("NATS_URL"),
        description="NATS server URL(s), comma-separated for a cluster.",
    )
    nats_user: str | None = Field(
        None,
        validation_alias=_shared("NATS_USER"),
        description="NATS user of this service (its name: `gateway`, `source-csa`...); unset: no "
        "authentication (a server without users). `./fmcsa up` always sets it.",
    )
    nats_password: SecretStr | None = Field(
        None,
        validation_alias=_shared("NATS_PASSWORD"),
        description="Password of `FMCSA_NATS_USER` (or `FMCSA_NATS_PASSWORD_FILE`); never logged.",
    )
    nats_password_file: Path | None = Field(
        None,
        validation_alias=_shared("NATS_PASSWORD_FILE"),
        description="A file holding the password of `FMCSA_NATS_USER` (what `./fmcsa up` passes; "
        "a Docker secret).",
    )
    nats_tls_ca_file: Path | None = Field(
        None,
        validation_alias=_shared("NATS_TLS_CA_FILE"),
        description="CA certificate (PEM) the NATS servers' certificates are checked against; set: "
        "TLS to NATS (the cluster profile, `tls://` URLs).",
    )
    data_dir: Path = Field(
        Path(".fmcsa-data"),
        validation_alias=_shared("DATA_DIR"),
        description="Folder for the embedded NATS store and the SQLite databases.",
    )
    log_level: str = Field("INFO", validation_alias=_shared("LOG_LEVEL"), description="Log level.")
    log_json: bool | None = Field(
        None,
        validation_alias=_shared("LOG_JSON"),
        description="JSON log lines; unset means JSON unless stderr is a terminal.",
    )
    replicas: int = Field(
        1,
        ge=1,
        le=5,
        validation_alias=_shared("REPLICAS"),
        description="Replicas of streams, consumers and buckets: 1 on one node, 3 on a cluster.",
    )
    stream_max_bytes: int = Field(
        8 * 1024**3,
        gt=0,
        validation_alias=_shared("STREAM_MAX_BYTES"),
        description="Byte limit of the event stream (discard-new beyond it).",
    )
    source_ack_wait_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        validation_alias=_shared("SOURCE_ACK_WAIT_S"),
        description="Seconds a source's delivery may go unacked before JetStream redelivers it "
        "(in-progress acks every third of it keep a long call alive).",
    )
    http_host: str = Field("127.0.0.1", description="Address of the health, readiness and metrics endpoint.")
    http_port: int = Field(0, ge=0, le=65535, description="Port of health/metrics; 0 picks a free one.")
    grace_s: float = Field(10.0, gt=0, description="Seconds to finish in-flight work on SIGTERM.")

    @model_validator(mode="after")
    def _one_password(self) -> ServiceSettings:
        if self.nats_password is not None and self.nats_password_file is not None:
            raise ValueError("set FMCSA_NATS_PASSWORD or FMCSA_NATS_PASSWORD_FILE, not both")
        has_password = self.nats_password is not None or self.nats_password_file is not None
        if has_password and not self.nats_user:
            raise ValueError("a NATS password needs FMCSA_NATS_USER")
        return self

    def nats_options(self) -> dict[str, Any]:
        """The credential and TLS arguments of `nats.connect` (and FastStream's NatsBroker); empty
        when no user is set. Reads the password file here, so a rotated file needs only a restart.
        """
        options: dict[str, Any] = {}
        if self.nats_user:
            options["user"] = self.nats_user
            if self.nats_password_file is not None:
                options["password"] = self.nats_password_file.read_text().strip()
            elif self.nats_password is not None:
                options["password"] = self.nats_password.get_secret_value()
        if self.nats_tls_ca_file is not None:
            options["tls"] = ssl.create_default_context(cafile=str(self.nats_tls_ca_file))
        return options

    def topology(self) -> Topology:
        return Topology(
            replicas=self.replicas,
            stream_max_bytes=self.stream_max_bytes,
            source_ack_wait_s=self.source_ack_wait_s,
        )

    def sqlite_url(self, name: str) -> str:
        """Default database URL of a service: a SQLite file under the data folder."""
        return f"sqlite:///{(self.data_dir / f'{name}.sqlite3').resolve()}"
