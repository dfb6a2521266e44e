"""The checks behind `./fmcsa doctor`, shared by every service's `python -m <package>.doctor`.

Each service's doctor module builds its own `Settings()` from the environment (exactly what the
service would use), runs the checks that apply to it and prints them with `main`: one JSON object per
line, `{"name", "status", "detail", "remedy"}`. The CLI starts those modules as processes (it imports
no service: the import contracts forbid it), adds the NATS check and prints the table.

Nothing here prints a secret: every detail and remedy passes through `redact` (the clients register
their keys with it when built), and no check reports a header or query value it sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import ipaddress
import json
import os
import socket
import sqlite3
import ssl
import sys
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pydantic
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fmcsa_runtime.database import create_engine
from fmcsa_runtime.redaction import redact, register_secret


class Status(enum.StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table; `remedy` says what to do when it is not ok."""

    name: str
    status: Status
    detail: str
    remedy: str = ""

    def to_json(self) -> str:
        row = asdict(self) | {"status": self.status.value}
        return json.dumps({key: redact(str(value)) for key, value in row.items()})

    @classmethod
    def from_json(cls, line: str) -> Check:
        row = json.loads(line)
        return cls(str(row["name"]), Status(row["status"]), str(row["detail"]), str(row.get("remedy", "")))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def probe_host(
    source: str, base_url: str, setting: str, *, timeout_s: float
) -> tuple[list[Check], bool]:
    """Resolve the base URL's host and open a connection to it (TLS verified as httpx verifies it:
    certifi's CAs, or `SSL_CERT_FILE`). Returns the rows and whether the host can be talked to.
    """
    url = urlsplit(base_url)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s
        )
    except (OSError, TimeoutError) as error:
        return [
            Check(
                f"{source}: host",
                Status.FAIL,
                f"{host} does not resolve ({type(error).__name__}: {error})",
                f"check the host name in {setting} and this machine's DNS",
            )
        ], False
    addresses = sorted({str(info[4][0]) for info in infos})
    rows = [Check(f"{source}: host", Status.OK, f"{host} resolves to {', '.join(addresses[:3])}")]
    context: ssl.SSLContext | None = httpx.create_ssl_context() if url.scheme == "https" else None
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host if context else None),
            timeout_s,
        )
    except ssl.SSLCertVerificationError as error:
        rows.append(
            Check(
                f"{source}: tls",
                Status.FAIL,
                f"{host}:{port}: certificate not accepted ({error.verify_message})",
                f"the certificate must name the host in {setting} and chain to a trusted CA: check "
                "that host name; behind a TLS-inspecting proxy, put its CA in SSL_CERT_FILE (never turn "
                "verification off)",
            )
        )
        return rows, False
    except ssl.SSLError as error:
        rows.append(
            Check(
                f"{source}: tls",
                Status.FAIL,
                f"{host}:{port}: TLS handshake failed ({error.reason or error})",
                f"check that {setting} names an https:// host that speaks TLS on that port",
            )
        )
        return rows, False
    except (OSError, TimeoutError) as error:
        what = "timed out" if isinstance(error, TimeoutError) else (error.strerror or type(error).__name__)
        rows.append(
            Check(
                f"{source}: {'tls' if context else 'connect'}",
                Status.FAIL,
                f"{host}:{port}: cannot connect ({what})",
                f"check the port in {setting}, that the host is up, and any firewall or proxy between",
            )
        )
        return rows, False
    try:
        if context is None:
            plain = "loopback" if is_loopback(host) else "not loopback: fine for a private sandbox only"
            rows.append(
                Check(f"{source}: connect", Status.OK, f"{host}:{port} answers, plain http ({plain})")
            )
        else:
            tls = writer.get_extra_info("ssl_object")
            cert = writer.get_extra_info("peercert") or {}
            until = cert.get("notAfter")
            expires = ""
            if until:
                days = (datetime.fromtimestamp(ssl.cert_time_to_seconds(until), UTC) - datetime.now(UTC)).days
                expires = f", certificate valid {days} more days"
            version = tls.version() if tls is not None else "TLS"
            rows.append(
                Check(f"{source}: tls", Status.OK, f"{host}:{port} {version}, name verified{expires}")
            )
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    return rows, True


async def store_check(name: str, url: str, setting: str, *, timeout_s: float = 5.0) -> Check:
    """The database a service would open: SQLite (file there, or its folder writable) or PostgreSQL."""
    try:
        parsed = make_url(url)
    except Exception:
        return Check(
            name, Status.FAIL, "not a database URL", f"set {setting} to sqlite:///PATH or postgresql://..."
        )
    register_secret(parsed.password if isinstance(parsed.password, str) else None)
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_check(name, Path(parsed.database or ""), setting)
    if backend not in ("postgresql", "postgres"):
        return Check(
            name,
            Status.FAIL,
            f"{shown}: unsupported database",
            f"use sqlite:/// or postgresql:// in {setting}",
        )
    engine = create_engine(url)
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as connection:
            version = (await connection.execute(text("SHOW server_version"))).scalar()
    except Exception as error:
        return Check(
            name,
            Status.FAIL,
            f"{shown}: {type(error).__name__}: {error}"[:300],
            f"check {setting} (host, port, user, database) and that PostgreSQL accepts this user",
        )
    finally:
        await engine.dispose()
    return Check(name, Status.OK, f"{shown}: PostgreSQL {version} answers")


def _sqlite_check(name: str, path: Path, setting: str) -> Check:
    if path.exists():
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as connection:
                tables = connection.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()
        except sqlite3.Error as error:
            return Check(
                name,
                Status.FAIL,
                f"{path}: {error}",
                f"the file is not a usable SQLite database: fix {setting}",
            )
        return Check(name, Status.OK, f"{path}: SQLite, {tables[0]} tables")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if os.access(folder, os.W_OK):
        return Check(name, Status.OK, f"{path}: not there yet; the service creates it at its first start")
    return Check(
        name, Status.FAIL, f"{path}: {folder} is not writable", f"make {folder} writable or set {setting}"
    )


async def nats_check(url: str, *, timeout_s: float = 3.0) -> Check:
    """NATS answers at `url` with JetStream enabled."""
    import nats

    servers = [part.strip() for part in url.split(",") if part.strip()]
    shown = ", ".join(_without_userinfo(server) for server in servers)
    errors: list[BaseException] = []

    async def remember(error: Exception) -> None:  # instead of nats-py's traceback on stderr
        errors.append(error)

    try:
        client = await asyncio.wait_for(
            nats.connect(
                servers=servers,
                connect_timeout=timeout_s,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=remember,
            ),
            timeout_s * (len(servers) + 1),
        )
    except Exception as error:
        cause = errors[-1] if errors else error
        return Check(
            "nats",
            Status.FAIL,
            f"{shown}: cannot connect ({type(cause).__name__})",
            "start NATS (./fmcsa up starts its own) or fix FMCSA_NATS_URL",
        )
    try:
        info = await asyncio.wait_for(client.jetstream().account_info(), timeout_s)
    except Exception as error:
        return Check(
            "nats",
            Status.FAIL,
            f"{shown}: connected, but JetStream does not answer ({type(error).__name__})",
            "enable JetStream on the server (nats-server -js)",
        )
    finally:
        await client.close()
    return Check("nats", Status.OK, f"{shown}: JetStream, {info.streams} streams")


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return url if parts.username is None else url.replace(parts.netloc, parts.netloc.rsplit("@", 1)[1])


def main(
    checks: Callable[[argparse.Namespace], Coroutine[Any, Any, Iterable[Check]]],
    *,
    service: str,
    env_prefix: str,
) -> None:
    """Run a service's checks and print them, one JSON object a line; exit 0 (the CLI judges the rows).

    Settings that do not validate become one FAIL row naming the fields, never their values.
    """
    parser = argparse.ArgumentParser(prog=f"python -m fmcsa_{service}.doctor")
    parser.add_argument(
        "--dot", help="the carrier to ask the upstream for (default: sandbox or real example)"
    )
    args = parser.parse_args()
    try:
        rows = list(asyncio.run(checks(args)))
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{env_prefix}{'_'.join(str(part) for part in problem['loc']).upper()}: {problem['msg']}"
            for problem in error.errors(include_input=False, include_url=False)
        )
        rows = [
            Check(
                f"{service}: settings",
                Status.FAIL,
                problems,
                "fix the named settings (README: Configuration)",
            )
        ]
    for row in rows:
        sys.stdout.write(row.to_json() + "\n")
    sys.stdout.flush()
