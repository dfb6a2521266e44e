"""One webhook attempt against receivers the test runs itself, on loopback only: a receiver that answers
50 MB, one that drips its answer, a URL httpx cannot send, a name that resolves differently the second
time (DNS rebinding), HTTPS to the checked address with the name's certificate. Names are resolved by a
stub installed on the running loop (the resolver both the check and httpx's connection use), so no
traffic leaves 127.0.0.0/8; a check that refuses proves it before any connection (the transport would
fail the test)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fmcsa_alerts.addresses import parse_allow_list
from fmcsa_alerts.signing import verify
from fmcsa_notifier.sender import ANSWER_READ_BYTES, ANSWER_SHOWN_CHARS, Sender

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SECRET = "whsec_sender-test-secret"
BODY = b'{"id":"0123456789abcdef0123456789abcdef"}'
EVENT_ID = "0123456789abcdef0123456789abcdef"
NAME = "hooks.rebind-test.net"
FIFTY_MB = 50 * 1024 * 1024
EMPTY_200 = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@dataclass
class Receiver:
    """A loopback HTTP/1.1 receiver whose answer is a coroutine of the test's (given the writer)."""

    answer: Callable[[asyncio.StreamWriter], Awaitable[None]]
    requests: list[dict[str, str]] = field(default_factory=list)
    sent: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append({**headers, "_line": lines[0], "_body": body.decode()})
            await self.answer(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: what we sent until then is counted
        finally:
            writer.close()
            self.done.set()

    async def write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.sent += len(data)


@asynccontextmanager
async def serving(
    receiver: Receiver, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    server = await asyncio.start_server(receiver.handle, host, port, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def sender(allow: str, *, timeout_s: float = 10.0, http: httpx.AsyncClient | None = None) -> Sender:
    built = Sender.build(
        allow=parse_allow_list(allow), connect_timeout_s=2.0, timeout_s=timeout_s, retry_after_max_s=60
    )
    if http is None:
        return built
    return Sender(http, allow=parse_allow_list(allow), timeout_s=timeout_s, retry_after_max_s=60)


async def post(s: Sender, url: str) -> Any:
    try:
        return await s.post(url, BODY, event_id=EVENT_ID, secret=SECRET, now=NOW)
    finally:
        await s.aclose()


@dataclass
class Resolver:
    """Answers for NAME in turn (the last one again when they run out; an answer may list several
    addresses, comma-separated); other names resolve as usual."""

    answers: list[str]
    calls: int = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo

        async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else host
            if name != NAME:
                return await real(host, port, *args, **kwargs)
            answer = self.answers[min(self.calls, len(self.answers) - 1)]
            self.calls += 1
            found = []
            for address in answer.split(","):
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                number = int(port or 0)
                sockaddr = (address, number, 0, 0) if family == socket.AF_INET6 else (address, number)
                found.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
            return found

        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


async def test_a_50_mb_answer_is_read_only_up_to_the_bound_and_shown_bounded() -> None:
    async def huge(writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        await receiver.write(writer, f"HTTP/1.1 503 Busy\r\nContent-Length: {FIFTY_MB}\r\n\r\n".encode())
        chunk = b"x" * 65536
        for _ in range(FIFTY_MB // len(chunk)):
            await receiver.write(writer, chunk)

    receiver = Receiver(huge)
    async with serving(receiver) as port:
        answer = await post(sender(f"127.0.0.1:{port}", timeout_s=30), f"http://127.0.0.1:{port}/hook")
        await asyncio.wait_for(receiver.done.wait(), 30)
    assert answer.status == 503
    assert answer.body_bytes <= ANSWER_READ_BYTES + 65536  # one network read past the bound at most
    assert receiver.sent < FIFTY_MB // 2  # what the socket buffers took (about 4 MB here), not the 50 MB
    assert answer.error == "answer: " + "x" * ANSWER_SHOWN_CHARS


@pytest.mark.parametrize("where", ["body", "headers"])
async def test_a_receiver_dripping_a_byte_a_second_cannot_stretch_the_deadline(where: str) -> None:
    drip = 30

    async def dripping(writer: asyncio.StreamWriter) -> None:
        if where == "body":
            await receiver.write(writer, f"HTTP/1.1 200 OK\r\nContent-Length: {drip}\r\n\r\n".encode())
        else:
            await receiver.write(writer, b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(drip):
            await asyncio.sleep(1.0)  # the drip itself: one byte a second, what a trickling receiver does
            await receiver.write(writer, b"a")

    receiver = Receiver(dripping)
    async with serving(receiver) as port:
        started = time.monotonic()
        answer = await post(sender(f"127.0.0.1:{port}", timeout_s=2.0), f"http://127.0.0.1:{port}/hook")
        elapsed = time.monotonic() - started
        await asyncio.wait_for(receiver.done.wait(), drip + 5)
    assert answer.status is None
    assert answer.error == "timeout"
    assert elapsed < 15  # the 2 s deadline, generously; dripping would hold it 30 s
    assert receiver.sent < 60 + drip  # the client left before the drip ended


async def test_a_url_httpx_cannot_send_is_refused_not_raised() -> None:
    receiver = Receiver(
        lambda writer: receiver.write(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    )
    async with serving(receiver) as port:
        answer = await post(sender(f"127.0.0.1:{port}"), f"http://127.0.0.1:{port}/a\tb")
    assert answer.status is None
    assert answer.error is not None
    assert answer.error.startswith("refused_address: ")  # permanent: not retried
    assert receiver.requests == []


async def test_the_connection_goes_to_the_checked_address_even_if_the_name_then_resolves_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = Receiver(lambda writer: good.write(writer, b"HTTP/1.1 204 No Content\r\n\r\n"))
    evil = Receiver(lambda writer: evil.write(writer, b"HTTP/1.1 204 No Content\r\n\r\n"))
    async with serving(good, "127.0.0.1") as port, serving(evil, "127.0.0.2", port):
        resolver = Resolver(["127.0.0.1", "127.0.0.2"])  # checked, then (a rebinding) the other address
        resolver.install(monkeypatch)
        answer = await post(sender(f"127.0.0.1:{port}"), f"http://{NAME}:{port}/hook")
    assert answer.status == 204
    assert answer.address == "127.0.0.1"
    assert resolver.calls == 1  # resolved once, for the check; the connection used that answer
    assert evil.requests == []
    [request] = good.requests
    assert request["host"] == f"{NAME}:{port}"  # the name travels in Host
    assert request["_line"] == "POST /hook HTTP/1.1"
    assert verify(request["x-fmcsa-signature"], SECRET, BODY, now=NOW.timestamp(), event_id=EVENT_ID)


async def test_when_a_checked_address_refuses_the_connection_the_next_checked_one_is_tried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = Receiver(lambda writer: good.write(writer, b"HTTP/1.1 204 No Content\r\n\r\n"))
    async with serving(good, "127.0.0.1") as port:
        resolver = Resolver(["127.0.0.3,127.0.0.1"])  # one answer, two addresses; nothing on 127.0.0.3
        resolver.install(monkeypatch)
        answer = await post(sender(f"127.0.0.0/8:{port}"), f"http://{NAME}:{port}/hook")
    assert answer.status == 204
    assert answer.address == "127.0.0.1"
    assert resolver.calls == 1
    assert len(good.requests) == 1


async def test_a_public_first_answer_is_the_only_address_used_and_nothing_is_resolved_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[httpx.Request] = []

    class Streamed(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"ok"

    def record(request: httpx.Request) -> httpx.Response:  # in place of a connection: no traffic at all
        seen.append(request)
        return httpx.Response(200, stream=Streamed())

    resolver = Resolver(["93.184.215.14", "127.0.0.1"])
    resolver.install(monkeypatch)
    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    answer = await post(sender("", http=http), f"https://{NAME}/hook?x=1")
    assert answer.status == 200
    assert resolver.calls == 1
    [request] = seen
    assert request.url.host == "93.184.215.14"  # the checked address, never the name
    assert str(request.url) == "https://93.184.215.14/hook?x=1"
    assert request.headers["host"] == NAME
    assert request.extensions["sni_hostname"] == NAME  # TLS verifies the certificate for the name


@pytest.mark.parametrize(
    "address", ["2002:7f00:1::1", "64:ff9b::a00:1", "2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"]
)
async def test_a_name_resolving_to_a_refused_address_is_refused_before_any_connection(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"a connection was attempted to {request.url}")

    Resolver([address]).install(monkeypatch)
    answer = await post(
        sender("", http=httpx.AsyncClient(transport=httpx.MockTransport(refuse))), f"http://{NAME}/"
    )
    assert answer.error is not None
    assert answer.error.startswith("refused_address: ")


def certificate_for(name: str, tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize(("served", "delivered"), [(NAME, True), ("other.rebind-test.net", False)])
async def test_https_to_the_checked_address_verifies_the_certificate_for_the_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, served: str, delivered: bool
) -> None:
    cert, key = certificate_for(served, tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    receiver = Receiver(
        lambda writer: receiver.write(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    )
    async with serving(receiver, ssl_context=server_tls) as port:
        Resolver(["127.0.0.1"]).install(monkeypatch)
        http = httpx.AsyncClient(verify=client_tls, limits=httpx.Limits(max_keepalive_connections=0))
        answer = await post(sender(f"127.0.0.1:{port}", http=http), f"https://{NAME}:{port}/hook")
    if delivered:
        assert answer.status == 200
        assert receiver.requests[0]["host"] == f"{NAME}:{port}"
    else:  # a certificate for another name: refused by TLS, nothing sent
        assert answer.status is None
        assert receiver.requests == []
