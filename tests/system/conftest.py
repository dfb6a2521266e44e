"""Fixtures of the system tests that run the deploy/ NATS configuration on nats-server from the wheel."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from fmcsa_events.permissions import USERS, password_variable

DEPLOY_NATS = Path(__file__).resolve().parents[2] / "deploy" / "nats"
NODE_NAMES = ("nats", "nats-2", "nats-3")  # the compose services' names: the certificate names them


@dataclass(frozen=True)
class NatsDeployFiles:
    """deploy/nats/*.conf copied into `folder` with `/etc/nats/` pointing at it, the TLS files the
    cluster profile expects there (a test CA's, for the node names and loopback), and a password for
    every bus user in the variables the configuration reads."""

    folder: Path
    ca_file: Path
    passwords: dict[str, str]

    def env(self) -> dict[str, str]:
        return {password_variable(user): password for user, password in self.passwords.items()}

    def config(self, mode: str) -> Path:
        return self.folder / f"{mode}.conf"


@pytest.fixture
def nats_deploy_files(tmp_path: Path) -> NatsDeployFiles:
    folder = tmp_path / "etc-nats"
    (folder / "certs").mkdir(parents=True)
    (folder / "ca").mkdir()
    ca = trustme.CA()
    node = ca.issue_cert(*NODE_NAMES, "localhost", "127.0.0.1")
    node.private_key_pem.write_to_path(str(folder / "certs" / "server-key.pem"))
    node.cert_chain_pems[0].write_to_path(str(folder / "certs" / "server.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca" / "ca.pem"))
    for conf in DEPLOY_NATS.glob("*.conf"):
        (folder / conf.name).write_text(conf.read_text().replace("/etc/nats/", f"{folder}/"))
    # as DEPLOY.md says to make them: a letter first, then hex (nats-server parses a variable's value, and
    # one that starts with digits is read as a number: `Expected a digit but got 'j'`)
    passwords = {user: "p" + secrets.token_hex(24) for user in USERS}
    return NatsDeployFiles(folder, folder / "ca" / "ca.pem", passwords)
