"""`./fmcsa doctor` against the sandbox and loopback stand-ins, each failure injected.

Every host here is loopback: the sandbox (conftest `run_sandbox`), closed ports, and small TLS servers
with certificates made in the test (a CA the doctor is told to trust through `SSL_CERT_FILE`, as httpx
reads it, and a self-signed one it is not). Keys are random sentinels; the output never holds them.
"""

from __future__ import annotations

import datetime as dt
import http.server
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fmcsa_embedded import free_port, sandbox_process

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]


def doctor(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FMCSA_", "SSL_CERT"))}
    base |= {"FMCSA_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "fmcsa_cli", "doctor"],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def rows(output: str) -> dict[str, tuple[str, str]]:
    """`check -> (result, rest of the line)` from the printed table."""
    found = {}
    for line in output.splitlines()[1:]:
        name, _, rest = line.partition("  ")
        result, _, detail = rest.strip().partition("  ")
        found[name.strip()] = (result.strip(), detail.strip())
    return found


@pytest.fixture
def keys() -> dict[str, str]:
    return {name: f"{name}-{uuid4().hex}" for name in ("webkey", "token", "apikey")}


@pytest.fixture
def sandbox(tmp_path: Path, keys: dict[str, str]) -> Iterator[str]:
    """A sandbox that accepts only this test's sentinel keys."""
    with sandbox_process(
        tmp_path / "sandbox",
        {
            "FMCSA_SANDBOX_QCMOBILE_WEB_KEY": keys["webkey"],
            "FMCSA_SANDBOX_SOCRATA_APP_TOKEN": keys["token"],
            "FMCSA_SANDBOX_SAFERWEB_API_KEY": keys["apikey"],
        },
    ) as url:
        yield url


def assert_no_secret(output: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in output


@pytest.mark.timeout(300)
def test_doctor_passes_on_a_healthy_sandbox(
    tmp_path: Path, sandbox: str, keys: dict[str, str], fresh_nats_url: str
) -> None:
    done = doctor(
        tmp_path,
        {
            "FMCSA_CSA_BASE_URL": f"{sandbox}/qc/services",
            "FMCSA_CSA_WEB_KEY": keys["webkey"],
            "FMCSA_VIOLATIONS_BASE_URL": sandbox,
            "FMCSA_VIOLATIONS_APP_TOKEN": keys["token"],
            "FMCSA_INSPECTIONS_BASE_URL": sandbox,
            "FMCSA_INSPECTIONS_API_KEY": keys["apikey"],
            "FMCSA_INSPECTIONS_DATAHUB_BASE_URL": sandbox,
            "FMCSA_INSPECTIONS_APP_TOKEN": keys["token"],
            "FMCSA_AUTHORITY_BASE_URL": f"{sandbox}/qc/services",
            "FMCSA_AUTHORITY_WEB_KEY": keys["webkey"],
            "FMCSA_AUTHORITY_DATAHUB_BASE_URL": sandbox,
            "FMCSA_AUTHORITY_APP_TOKEN": keys["token"],
            "FMCSA_NATS_URL": fresh_nats_url,
        },
    )
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    found = rows(done.stdout)
    # the change gates (on by default): every dataset they watch answers, and authority's daily
    # differences were published within four days (the sandbox publishes them at its start)
    assert found["inspections: change gate"][0] == "ok"
    assert "fx4q-ay7w published" in found["inspections: change gate"][1]
    assert found["authority: change gate"][0] == "ok"
    for dataset in ("dm5j-zc6c", "x96h-evps", "nakq-58th", "e67p-xyd5"):
        assert f"{dataset} published" in found["authority: change gate"][1]
    for source in ("csa", "violations", "inspections", "authority"):
        for check in ("host", "connect", "key", "answer", "rate limit", "clock", "store"):
            assert found[f"{source}: {check}"][0] == "ok", (source, check, found)
        assert found[f"{source}: key"][1] == "accepted"
        assert "DOT 2847193" in found[f"{source}: answer"][1]
    assert "carrier and 5 BASICs parsed" in found["csa: answer"][1]
    assert found["nats"][0] == "ok"
    for service in ("status: store", "notifier: store", "gateway: status store", "gateway: notifier store"):
        assert found[service][0] == "ok"
    assert "FAIL" not in done.stdout
    assert_no_secret(done.stdout + done.stderr, *keys.values())


@pytest.mark.timeout(300)
def test_doctor_fails_each_broken_part_with_a_remedy_and_prints_no_key(
    tmp_path: Path, sandbox: str, keys: dict[str, str]
) -> None:
    """csa: a wrong webKey; violations: the sandbox's malformed-answer fault; inspections: a closed
    port; NATS and the status store: closed ports. Every failure says what to do; exit 1.
    """
    faults = httpx.put(f"{sandbox}/_sandbox/faults", json={"violations_p_malformed": 1.0}, timeout=10)
    assert faults.status_code == 200, faults.text
    wrong_key = f"wrong-{uuid4().hex}"
    done = doctor(
        tmp_path,
        {
            "FMCSA_CSA_BASE_URL": f"{sandbox}/qc/services",
            "FMCSA_CSA_WEB_KEY": wrong_key,
            "FMCSA_VIOLATIONS_BASE_URL": sandbox,
            "FMCSA_VIOLATIONS_APP_TOKEN": keys["token"],
            "FMCSA_INSPECTIONS_BASE_URL": f"http://127.0.0.1:{free_port()}",
            "FMCSA_INSPECTIONS_API_KEY": keys["apikey"],
            "FMCSA_INSPECTIONS_DATAHUB_BASE_URL": f"http://127.0.0.1:{free_port()}",
            "FMCSA_NATS_URL": f"nats://127.0.0.1:{free_port()}",
            "FMCSA_STATUS_DATABASE_URL": f"postgresql://doctor:pw-{keys['token']}@127.0.0.1:{free_port()}/x",
        },
    )
    print(done.stdout, done.stderr)
    assert done.returncode == 1
    found = rows(done.stdout)
    assert found["csa: key"][0] == "FAIL"
    assert "Webkey not found" in found["csa: key"][1]
    assert "QCDevsite" in found["csa: key"][1]
    assert found["csa: connect"][0] == "ok"
    assert found["violations: answer"][0] == "FAIL"
    assert "invalid_response" in found["violations: answer"][1]
    assert "API root" in found["violations: answer"][1]
    assert found["inspections: connect"][0] == "FAIL"
    assert "cannot connect" in found["inspections: connect"][1]
    assert "FMCSA_INSPECTIONS_BASE_URL" in found["inspections: connect"][1]
    assert "inspections: answer" not in found  # nothing is sent to a host that is not there
    assert found["inspections: change gate"][0] == "FAIL"  # its DataHub host is not there either
    assert "fx4q-ay7w" in found["inspections: change gate"][1]
    assert "FMCSA_INSPECTIONS_CHANGE_GATE=false" in found["inspections: change gate"][1]
    assert found["nats"][0] == "FAIL"
    assert "FMCSA_NATS_URL" in found["nats"][1]
    assert found["status: store"][0] == "FAIL"
    assert "FMCSA_STATUS_DATABASE_URL" in found["status: store"][1]
    assert found["notifier: store"][0] == "ok"
    assert_no_secret(done.stdout + done.stderr, wrong_key, *keys.values())


# --- TLS ----------------------------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(tmp: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class GarbageTLSServer:
    """A loopback HTTPS server with a given certificate that answers every GET with 200 and non-JSON."""

    def __init__(self, cert: Path, key: Path) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"<html>garbage, not JSON"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-RateLimit-Limit", "1000")
                self.send_header("X-RateLimit-Remaining", "999")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_servers(tmp_path: Path) -> Iterator[tuple[Path, dict[str, GarbageTLSServer]]]:
    """A CA (its file is what SSL_CERT_FILE names), servers with a CA-signed cert for `localhost`, a
    CA-signed cert for another name, and a self-signed cert for `localhost` that no CA vouches for.
    """
    ca_key = _key()
    ca = _cert("fmcsa doctor test CA", ca_key, None)
    ca_file, _ = _pem(tmp_path, "ca", ca, ca_key)
    servers = {}
    for label, subject, issuer in (
        ("right_name", "localhost", (ca.subject, ca_key)),
        ("wrong_name", "wrong.example", (ca.subject, ca_key)),
        ("self_signed", "localhost", None),
    ):
        key = _key()
        servers[label] = GarbageTLSServer(*_pem(tmp_path, label, _cert(subject, key, issuer), key))
    yield ca_file, servers
    for server in servers.values():
        server.close()


@pytest.mark.timeout(300)
def test_doctor_verifies_tls_and_reads_a_garbage_answer_as_malformed(
    tmp_path: Path, keys: dict[str, str], tls_servers: tuple[Path, dict[str, GarbageTLSServer]]
) -> None:
    """csa: a certificate for another name (from a trusted CA); inspections: a self-signed certificate;
    violations: a valid certificate, then an answer that is not JSON. TLS is verified as the clients
    verify it (SSL_CERT_FILE here): no verification is switched off to make a check pass.
    """
    ca_file, servers = tls_servers
    done = doctor(
        tmp_path,
        {
            "SSL_CERT_FILE": str(ca_file),
            "FMCSA_CSA_BASE_URL": f"https://localhost:{servers['wrong_name'].port}/qc/services",
            "FMCSA_CSA_WEB_KEY": keys["webkey"],
            "FMCSA_VIOLATIONS_BASE_URL": f"https://localhost:{servers['right_name'].port}",
            "FMCSA_VIOLATIONS_APP_TOKEN": keys["token"],
            "FMCSA_INSPECTIONS_BASE_URL": f"https://localhost:{servers['self_signed'].port}",
            "FMCSA_INSPECTIONS_API_KEY": keys["apikey"],
            "FMCSA_INSPECTIONS_DATAHUB_BASE_URL": f"https://localhost:{servers['self_signed'].port}",
        },
    )
    print(done.stdout, done.stderr)
    assert done.returncode == 1
    found = rows(done.stdout)
    assert found["csa: tls"][0] == "FAIL"
    assert "Hostname mismatch" in found["csa: tls"][1]
    assert "never turn verification off" in found["csa: tls"][1]
    assert "csa: answer" not in found  # the key is never sent to a host that failed TLS
    assert found["inspections: tls"][0] == "FAIL"
    assert "certificate" in found["inspections: tls"][1]
    assert found["inspections: change gate"][0] == "FAIL"  # its DataHub host's certificate likewise
    assert found["violations: tls"][0] == "ok"
    assert "name verified" in found["violations: tls"][1]
    assert found["violations: answer"][0] == "FAIL"
    assert "invalid_response" in found["violations: answer"][1]
    assert "X-RateLimit-Limit: 1000" in found["violations: rate limit"][1]
    assert found["nats"][0] == "skip"
    assert_no_secret(done.stdout + done.stderr, *keys.values())
