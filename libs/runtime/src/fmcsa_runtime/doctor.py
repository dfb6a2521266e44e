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
import math
import os
import re
import socket
import sqlite3
import ssl
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pydantic
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.database import create_engine
from fmcsa_runtime.failures import Failure
from fmcsa_runtime.redaction import redact, register_secret

SANDBOX_DOT = "2847193"
"""The sandbox's example carrier (tests/fixtures/fmcsa: the same small carrier in all three sources)."""
REAL_DOT = "21800"
"""United Parcel Service Inc.: a carrier every real upstream knows, with data in all three sources."""
CLOCK_TOLERANCE_S = 30.0
"""Largest offset from an upstream's `Date` accepted: tokens, webhook signatures (5 min tolerance) and
the schedule all read this clock; `Date` has one-second resolution, so smaller offsets are noise."""
RATE_LIMIT_HEADER = re.compile(r"^(x-)?(rate-?limit|ratelimit)[-a-z]*$|^retry-after$", re.IGNORECASE)


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


def default_dot(base_url: str) -> str:
    """The DOT to ask for: the sandbox's example carrier on a loopback host, else a real, well-known one."""
    return SANDBOX_DOT if is_loopback(urlsplit(base_url).hostname or "") else REAL_DOT


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


@dataclass(frozen=True)
class KeyAdvice:
    """How to talk about one source's credential."""

    setting: str
    rejected: str
    """Remedy when the upstream refuses the key."""


@dataclass(frozen=True)
class Outcome:
    """One cheap call's result: `failure` None means it parsed; `parsed` says what came back."""

    failure: Failure | None
    parsed: str
    headers: httpx.Headers | None
    anonymous: bool = False


def answer_checks(
    source: str, dot: str, outcome: Outcome, key: KeyAdvice, *, base_setting: str
) -> list[Check]:
    """The key, answer, rate-limit and clock rows of one cheap call."""
    rows: list[Check] = []
    failure = outcome.failure
    if failure is None:
        accepted = "anonymous: no token sent (shared per-IP pool)" if outcome.anonymous else "accepted"
        rows.append(Check(f"{source}: key", Status.OK, accepted))
        rows.append(Check(f"{source}: answer", Status.OK, f"DOT {dot}: {outcome.parsed}"))
    else:
        said = f"{failure.kind.value}: {failure.message}" + (f" ({failure.detail})" if failure.detail else "")
        if failure.kind is ErrorKind.NOT_CONFIGURED:
            rows.append(Check(f"{source}: key", Status.FAIL, said, key.rejected))
            rows.append(Check(f"{source}: answer", Status.SKIP, "the key was refused: nothing to parse"))
        else:
            verdict = "accepted" if failure.kind is ErrorKind.NOT_FOUND else "no verdict (see the answer)"
            rows.append(Check(f"{source}: key", Status.OK if verdict == "accepted" else Status.SKIP, verdict))
            rows.append(
                Check(f"{source}: answer", Status.FAIL, said, _answer_remedy(failure.kind, base_setting))
            )
    rows.append(rate_limit_check(source, outcome.headers))
    rows.append(clock_check(source, outcome.headers, datetime.now(UTC)))
    return rows


def _answer_remedy(kind: ErrorKind, base_setting: str) -> str:
    match kind:
        case ErrorKind.NOT_FOUND:
            return (
                f"the upstream does not know this carrier: check that {base_setting} is the API root "
                "(a wrong path looks like an unknown carrier), or pass --dot with a DOT it knows"
            )
        case ErrorKind.INVALID_RESPONSE:
            return (
                f"the answer is not what the parser reads: check that {base_setting} is the API root; "
                "if it is, the upstream served an error page or changed its format (retry, then "
                "docs/upstreams.md)"
            )
        case ErrorKind.RATE_LIMITED:
            return "the upstream is rate-limiting this machine: wait and retry; lower the source's RATE_PER_S"
        case ErrorKind.TIMEOUT:
            return "the host accepted the connection but did not answer in time: retry; check proxies between"
        case ErrorKind.UPSTREAM_ERROR:
            return "the upstream answered an error or dropped the connection: retry later (docs/upstreams.md)"
        case _:
            return "a bug in fmcsa-sync: report it with this detail"


def rate_limit_check(source: str, headers: Mapping[str, str] | None) -> Check:
    """Which rate-limit headers the upstream sent (informational: none is normal for FMCSA hosts)."""
    if headers is None:
        return Check(f"{source}: rate limit", Status.SKIP, "no answer to read headers from")
    pairs = (
        [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers.raw]
        if isinstance(headers, httpx.Headers)  # as sent, not lower-cased
        else list(headers.items())
    )
    seen = [f"{name}: {value}" for name, value in pairs if RATE_LIMIT_HEADER.match(name)]
    if not seen:
        return Check(
            f"{source}: rate limit", Status.OK, "no rate-limit headers sent (the source paces itself)"
        )
    return Check(f"{source}: rate limit", Status.OK, "; ".join(seen))


def clock_check(source: str, headers: Mapping[str, str] | None, now: datetime) -> Check:
    """This machine's clock against the upstream's `Date` header."""
    date = headers.get("date") if headers is not None else None
    if date is None:
        return Check(f"{source}: clock", Status.SKIP, "the upstream sent no Date header")
    try:
        theirs = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return Check(f"{source}: clock", Status.SKIP, "the upstream's Date header does not parse")
    if theirs.tzinfo is None:
        theirs = theirs.replace(tzinfo=UTC)
    offset = (now - theirs).total_seconds()
    detail = (
        f"this clock is {abs(offset):.0f} s {'ahead of' if offset >= 0 else 'behind'} the upstream's Date"
    )
    if math.fabs(offset) > CLOCK_TOLERANCE_S:
        return Check(
            f"{source}: clock",
            Status.FAIL,
            detail,
            "synchronize this machine's clock (NTP, e.g. `timedatectl set-ntp true`): tokens, webhook "
            "signatures and schedules depend on it",
        )
    return Check(f"{source}: clock", Status.OK, detail)


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


def capturing_client(captured: list[httpx.Response], **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that keeps every response it receives (for their headers)."""

    async def keep(response: httpx.Response) -> None:
        captured.append(response)

    return httpx.AsyncClient(event_hooks={"response": [keep]}, follow_redirects=False, **kwargs)


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


@dataclass(frozen=True)
class SourceProbe:
    """What one source's doctor needs of its settings: names for the rows and remedies, where to call,
    whether it has a key (`missing_key`: the skip row's detail and remedy when a key is required and
    unset; None when it may call anonymously) and its store.
    """

    source: str
    base_url: str
    key: KeyAdvice
    has_key: bool
    missing_key: tuple[str, str] | None
    database_url: str
    connect_timeout_s: float
    read_timeout_s: float
    client_base_url: str | None = None

    @property
    def prefix(self) -> str:
        return f"FMCSA_{self.source.upper()}_"


Fetched = Failure | str
"""A cheap call's result: the failure, or what came back in a few words (`"snapshot parsed"`)."""


async def source_checks(
    probe: SourceProbe, dot: str | None, fetch: Callable[[httpx.AsyncClient, str], Awaitable[Fetched]]
) -> list[Check]:
    """Every source's doctor: the host (resolves, verified TLS), then one cheap call through the
    service's own client (`fetch`) for the key, answer, rate-limit and clock rows, then the store. A
    source whose key is required and unset sends nothing and says how to get one.
    """
    base_setting = f"{probe.prefix}BASE_URL"
    rows: list[Check] = []
    if not probe.has_key and probe.missing_key is not None:
        rows.append(Check(f"{probe.source}: key", Status.SKIP, *probe.missing_key))
    else:
        probed, reachable = await probe_host(
            probe.source, probe.base_url, base_setting, timeout_s=probe.connect_timeout_s
        )
        rows += probed
        if reachable:
            dot = dot or default_dot(probe.base_url)
            responses: list[httpx.Response] = []
            options: dict[str, Any] = {
                "timeout": httpx.Timeout(probe.read_timeout_s, connect=probe.connect_timeout_s)
            }
            if probe.client_base_url is not None:
                options["base_url"] = probe.client_base_url
            async with capturing_client(responses, **options) as http:
                result = await fetch(http, dot)
            headers = responses[-1].headers if responses else None
            anonymous = not probe.has_key
            if isinstance(result, Failure):
                outcome = Outcome(result, "", headers, anonymous=anonymous)
            else:
                outcome = Outcome(None, result, headers, anonymous=anonymous)
            rows += answer_checks(probe.source, dot, outcome, probe.key, base_setting=base_setting)
    rows.append(
        await store_check(f"{probe.source}: store", probe.database_url, f"{probe.prefix}DATABASE_URL")
    )
    return rows
