"""The bus credential of `ServiceSettings`: user and password (or a password file), never shown."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError

from fmcsa_runtime.settings import ServiceSettings

PASSWORD = "a-bus-password-0123456789"


def test_no_user_means_no_credential() -> None:
    assert ServiceSettings().nats_options() == {}


def test_a_password_from_the_environment_is_passed_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMCSA_NATS_USER", "source-csa")
    monkeypatch.setenv("FMCSA_NATS_PASSWORD", PASSWORD)
    settings = ServiceSettings()
    assert settings.nats_options() == {"user": "source-csa", "password": PASSWORD}
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.model_dump())


def test_a_password_file_is_read_when_connecting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "status"
    path.write_text(PASSWORD + "\n")
    monkeypatch.setenv("FMCSA_NATS_USER", "status")
    monkeypatch.setenv("FMCSA_NATS_PASSWORD_FILE", str(path))
    settings = ServiceSettings()
    assert settings.nats_options() == {"user": "status", "password": PASSWORD}
    path.write_text("rotated-password-0123456789")
    assert settings.nats_options()["password"] == "rotated-password-0123456789"


@pytest.mark.parametrize(
    "env",
    [
        {"FMCSA_NATS_PASSWORD": PASSWORD},
        {"FMCSA_NATS_USER": "gateway", "FMCSA_NATS_PASSWORD": PASSWORD, "FMCSA_NATS_PASSWORD_FILE": "/x"},
    ],
    ids=["password-without-user", "password-twice"],
)
def test_a_half_or_doubled_credential_is_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as refused:
        ServiceSettings()
    assert PASSWORD not in str(refused.value)


def test_a_ca_file_turns_tls_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("FMCSA_NATS_TLS_CA_FILE", str(tmp_path / "ca.pem"))
    context = ServiceSettings().nats_options()["tls"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.get_ca_certs()
