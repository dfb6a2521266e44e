"""What the reliability tests (R1-R8) share: the scale, a running system of real processes, the ledger
that counts requests against terminal outcomes, and the one-line report.

Scale: CI by default (bounded so the folder runs in a few minutes on a 2-core box);
`FMCSA_RELIABILITY_SCALE=full` runs the issue's figures (2,000 companies x 4 sources, a 30 s database
outage, minutes of kills). The line of each test goes to the terminal and is appended to
`test-artifacts/reliability.txt` (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from nats.aio.client import Client
from nats.js import JetStreamContext

from fmcsa_cli.launcher import Launcher, bus_credential_env, secured_nats_server
from fmcsa_embedded import free_port
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded
from fmcsa_events.envelope import Envelope
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import SourceFailed, SourceSynced, SyncRequested, Trigger
from fmcsa_events.permissions import STATUS
from fmcsa_events.reader import read_stream
from fmcsa_events.topology import EVENTS_STREAM, source_durable
from fmcsa_runtime.tokens import Role, mint
from fmcsa_status_view.database import open_database
from fmcsa_status_view.location import Location

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "test-artifacts" / "reliability.txt"
SOURCES: tuple[SourceKey, ...] = (
    SourceKey.CSA,
    SourceKey.VIOLATIONS,
    SourceKey.INSPECTIONS,
    SourceKey.AUTHORITY,
)
TERMINAL = ("succeeded", "failed")


@dataclass(frozen=True)
class Scale:
    """How big each test runs; `ci` unless FMCSA_RELIABILITY_SCALE says `full`."""

    name: str
    companies: int  # R1: companies, each synced from every source
    clock_scale: float  # R1: the scheduler's clock speed (a 5-minute slot lasts 300/clock_scale s)
    chaos_s: float  # R1: how long processes are killed at random
    broker_requests: int  # R2
    outage_s: float  # R3
    outage_requests: int  # R3
    fault_requests: int  # R4, per source
    hypothesis_examples: int  # R5, per event type
    settle_s: float  # the longest wait for every request to end once the faults stop
    client_rate_per_s: float  # each source client's ceiling (calls/s); R4 sets the sandbox's limit to it

    @classmethod
    def from_env(cls) -> Scale:
        if os.environ.get("FMCSA_RELIABILITY_SCALE", "ci").strip().lower() == "full":
            # slots start at multiples of the interval (a 5-minute slot is 300/3 = 100 s here), so 240 s
            # of kills hold at least two whole rounds of 6,000 requests (as far as the sources keep up)
            return cls("full", 2000, 3.0, 240.0, 3000, 30.0, 1500, 1000, 1000, 900.0, 50.0)
        # CI: the suite shares a 20-minute budget; these sizes keep tests/reliability near 3 minutes
        return cls("ci", 150, 15.0, 30.0, 200, 8.0, 100, 50, 100, 240.0, 40.0)


SCALE = Scale.from_env()

CLIENT_RATE_PER_S = SCALE.client_rate_per_s
MAX_ATTEMPTS = 3
"""Deliveries before a retryable failure is final (R4's bound on attempts)."""


@dataclass(frozen=True)
class Secrets:
    """Fresh secret values, so a scan of the logs for them finds only real leaks."""

    jwt: str = field(default_factory=lambda: "jwt-" + secrets.token_hex(24))
    web_key: str = field(default_factory=lambda: "wk-" + secrets.token_hex(12))
    app_token: str = field(default_factory=lambda: "at-" + secrets.token_hex(12))
    api_key: str = field(default_factory=lambda: "ak-" + secrets.token_hex(12))

    def values(self) -> dict[str, str]:
        return {
            "FMCSA_JWT_SECRET": self.jwt,
            "webKey": self.web_key,
            "X-App-Token": self.app_token,
            "x-api-key": self.api_key,
        }


def service_env(secret: Secrets, **extra: str) -> dict[str, str]:
    """The environment of every process of a reliability system."""
    rate = str(CLIENT_RATE_PER_S)
    env = {
        "FMCSA_LOG_JSON": "true",
        "FMCSA_SOURCE_ACK_WAIT_S": "3",  # a killed source's messages come back after 3 s, not 60
        "FMCSA_JWT_SECRET": secret.jwt,
        "FMCSA_GATEWAY_TRIGGER_PER_MINUTE": "100000",  # R1 triggers every 0.5 s throughout its chaos
        "FMCSA_SANDBOX_QCMOBILE_WEB_KEY": secret.web_key,
        "FMCSA_SANDBOX_SOCRATA_APP_TOKEN": secret.app_token,
        "FMCSA_SANDBOX_SAFERWEB_API_KEY": secret.api_key,
        "FMCSA_CSA_WEB_KEY": secret.web_key,
        "FMCSA_VIOLATIONS_APP_TOKEN": secret.app_token,
        "FMCSA_INSPECTIONS_API_KEY": secret.api_key,
        "FMCSA_AUTHORITY_WEB_KEY": secret.web_key,
        "FMCSA_AUTHORITY_APP_TOKEN": secret.app_token,
        "FMCSA_SCHEDULER_CLOCK_SCALE": str(SCALE.clock_scale),
        "FMCSA_SCHEDULER_CLOCK_ANCHOR_S": repr(time.time()),  # shared by every restart
        "FMCSA_SCHEDULER_TICK_S": "0.2",
        "FMCSA_SCHEDULER_STATUS_INTERVAL_S": "1",
        "FMCSA_STATUS_BATCH_WAIT_MS": "20",
        # R4's 429s without Retry-After: inspections waits 60 s by default (the polite production
        # choice), which would make R4 a minute-long wait on one request; the test checks the kind
        "FMCSA_INSPECTIONS_RATE_LIMIT_WAIT_S": "3",
    }
    for source in ("CSA", "VIOLATIONS", "INSPECTIONS", "AUTHORITY"):
        env |= {
            f"FMCSA_{source}_RATE_PER_S": rate,
            f"FMCSA_{source}_CONCURRENCY": "16",
            f"FMCSA_{source}_READ_TIMEOUT_S": "2",
            f"FMCSA_{source}_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        }
    # the sandbox counts authority's QCMobile and DataHub calls against one limit: a sync is 4 + 1 calls
    env["FMCSA_AUTHORITY_RATE_PER_S"] = str(CLIENT_RATE_PER_S * 4 / 5)
    env["FMCSA_AUTHORITY_DATAHUB_RATE_PER_S"] = str(CLIENT_RATE_PER_S / 5)
    return env | extra


class System:
    """Real processes on one data folder: nats-server, the sandbox and the chosen services.

    `kill` is SIGKILL of a service's process group; `restart` starts it again with the same settings;
    `kill_broker` / `restart_broker` do the same to nats-server (same port, same store).
    """

    def __init__(self, data_dir: Path, services: Sequence[str], env: dict[str, str], secret: Secrets) -> None:
        self.secret = secret
        self.launcher = Launcher(
            data_dir=data_dir,
            gateway_port=free_port(),
            services=list(services),
            extra_env=env,
            nats_sync_always=False,  # processes and the broker are killed, never the OS
        )
        self.kills: Counter[str] = Counter()
        self.tokens_used: set[str] = set()  # every bearer token handed out, for the log scan (R7)

    def start(self) -> System:
        self.launcher.start()
        return self

    def stop(self) -> None:
        self.launcher.stop(grace_s=10)

    @property
    def nats_url(self) -> str:
        assert self.launcher.nats is not None, "the broker is down"
        return self.launcher.nats.url

    @property
    def logs_dir(self) -> Path:
        return self.launcher.logs_dir

    @property
    def sandbox_url(self) -> str:
        assert self.launcher.sandbox_url is not None
        return self.launcher.sandbox_url

    @property
    def gateway_url(self) -> str:
        return self.launcher.gateway_url

    @property
    def status_url(self) -> str:
        return (
            self.env.get("FMCSA_STATUS_DATABASE_URL") or f"sqlite:///{self.launcher.data_dir}/status.sqlite3"
        )

    @property
    def env(self) -> dict[str, str]:
        return dict(self.launcher._env)  # the environment the launcher gave every service

    @property
    def names(self) -> list[str]:
        return list(self.launcher.children)

    def alive(self) -> dict[str, bool]:
        return {name: child.alive for name, child in self.launcher.children.items()}

    def kill(self, name: str) -> None:
        self.launcher.children[name].kill()
        self.kills[name] += 1

    def restart(self, name: str) -> None:
        child = self.launcher.children[name]
        if not child.alive:
            child.start()

    def restart_dead(self) -> list[str]:
        dead = [name for name, alive in self.alive().items() if not alive]
        for name in dead:
            self.restart(name)
        return dead

    def kill_broker(self) -> None:
        assert self.launcher.nats is not None
        self.launcher.nats.kill()
        self.kills["nats-server"] += 1

    def restart_broker(self) -> None:
        old = self.launcher.nats
        assert old is not None
        self.launcher.nats = secured_nats_server(
            self.launcher.data_dir, port=old.port, sync_always=False
        ).start()

    def token(self, role: Role, subject: str = "reliability") -> str:
        token = mint(self.secret.jwt, role=role, subject=subject)
        self.tokens_used.add(token)
        return token

    def bearer(self, role: Role, subject: str = "reliability") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, subject)}"}

    async def sandbox_stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.sandbox_url, timeout=10) as http:
            answer = await http.get("/_sandbox/stats")
            answer.raise_for_status()
            stats: dict[str, Any] = answer.json()
            return stats

    async def sandbox_faults(self, **knobs: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.sandbox_url, timeout=10) as http:
            answer = await http.put("/_sandbox/faults", json=knobs)
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            return result

    async def sandbox_reset(self) -> None:
        async with httpx.AsyncClient(base_url=self.sandbox_url, timeout=10) as http:
            (await http.post("/_sandbox/reset")).raise_for_status()

    def verify_rebuild(self, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """`python -m fmcsa_status.rebuild --verify --from-scratch` against this system's stream and status
        store: the live store against a replay (never a snapshot plus its tail)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FMCSA_")}
        env |= {
            "FMCSA_NATS_URL": self.nats_url,
            **bus_credential_env(self.launcher.data_dir, STATUS),
            "FMCSA_DATA_DIR": str(self.launcher.data_dir),
            "FMCSA_STATUS_DATABASE_URL": self.status_url,
            "FMCSA_LOG_JSON": "true",
        }
        return subprocess.run(
            [sys.executable, "-m", "fmcsa_status.rebuild", "--verify", "--from-scratch"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


@contextlib.contextmanager
def busy_cores(seconds: float, *, processes: int = 2) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Keep `processes` cores busy for at most `seconds` (each a bounded spin loop in its own
    process), killed on leaving the block: the box as loaded as when other work shares it.
    """
    spin = f"import time\nt = time.time() + {seconds:.1f}\nwhile time.time() < t:\n    pass\n"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(processes)]
    try:
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait(timeout=10)


def manual_request(source: SourceKey, dot: int, *, minutes: float = 60) -> SyncRequested:
    now = datetime.now(UTC)
    return SyncRequested(
        request_id=uuid4(),
        dot=str(dot),
        source=source,
        trigger=Trigger.MANUAL,
        requested_by="reliability",
        requested_at=now,
        deadline=now + timedelta(minutes=minutes),
    )


async def publish_surely(bus: Bus, events: Iterable[SyncRequested], *, within_s: float = 120) -> int:
    """Publish each event until its PubAck arrives (retries reuse its envelope, so its id): a broker
    restart in between may delay an event, never lose or double it. Returns how many were published.
    """
    pending: list[tuple[SyncRequested, Envelope]] = [(e, bus.envelope(e)) for e in events]
    deadline = time.monotonic() + within_s
    semaphore = asyncio.Semaphore(64)

    async def one(event: SyncRequested, envelope: Envelope) -> None:
        async with semaphore:
            while True:
                try:
                    await bus.publish(event, envelope=envelope)
                    return
                except Exception:  # broker gone or reconnecting: the same envelope again
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)

    await asyncio.gather(*(one(e, env) for e, env in pending))
    return len(pending)


@dataclass
class Ledger:
    """Requests in the stream against terminal outcomes in the projection, for a range of DOTs."""

    requests: int = 0
    terminal: int = 0
    doubled: int = 0
    lost: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # "synced" or the failure kind
    max_attempts: int = 0
    examples: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"requests={self.requests} terminal={self.terminal} doubled={self.doubled} lost={self.lost}"


async def stream_requests_and_outcomes(
    js: JetStreamContext, dots: range
) -> tuple[dict[str, SyncRequested], dict[str, list[SourceSynced | SourceFailed]]]:
    requests: dict[str, SyncRequested] = {}
    outcomes: dict[str, list[SourceSynced | SourceFailed]] = {}
    async for delivered in read_stream(js, idle_timeout_s=2.0):
        decoded = delivered.decoded
        if not isinstance(decoded, Decoded):
            continue
        event = decoded.event
        if isinstance(event, SyncRequested) and int(event.dot) in dots:
            requests[str(event.request_id)] = event
        elif isinstance(event, SourceSynced | SourceFailed) and int(event.dot) in dots:
            outcomes.setdefault(str(event.request_id), []).append(event)
    return requests, outcomes


class Projection:
    """Read-only SQL on the live status store (SQLite behind its pointer, or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        db = open_database(Location(self.url).live_url(), writer=False)
        try:
            async with db.transaction() as session:
                return await session.fetch(sql, params)
        finally:
            await db.dispose()

    async def position(self) -> int:
        try:
            rows = await self._fetch("SELECT seq FROM status_position WHERE id = 1")
        except Exception:  # not created yet, or the database is down (R3)
            return -1
        return int(rows[0][0]) if rows else 0

    async def rejected(self) -> int:
        """Messages the projector refused as poison (and dead-lettered), as its position row counts."""
        rows = await self._fetch("SELECT rejected FROM status_position WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    async def open_and_terminal(self, dots: range) -> tuple[int, int]:
        """Requests the projection knows in `dots`, and how many of them have a terminal outcome."""
        rows = await self._fetch(
            "SELECT count(*), sum(CASE WHEN status IN ('succeeded', 'failed') THEN 1 ELSE 0 END) "
            "FROM status_sync_log WHERE dot >= ? AND dot < ? AND requested_at IS NOT NULL",
            (dots.start, dots.stop),
        )
        return int(rows[0][0] or 0), int(rows[0][1] or 0)

    async def log_rows(self, dots: range) -> dict[str, tuple[str, bool]]:
        rows = await self._fetch(
            "SELECT request_id, status, requested_at IS NOT NULL FROM status_sync_log "
            "WHERE dot >= ? AND dot < ?",
            (dots.start, dots.stop),
        )
        return {str(r[0]): (str(r[1]), bool(r[2])) for r in rows}

    async def pair_counters(self, dots: range) -> tuple[int, int]:
        """Sum over (company, source) rows: requests counted, outcomes counted (succeeded + failed)."""
        rows = await self._fetch(
            "SELECT sum(requests), sum(succeeded) + sum(failed) FROM status_source "
            "WHERE dot >= ? AND dot < ?",
            (dots.start, dots.stop),
        )
        return int(rows[0][0] or 0), int(rows[0][1] or 0)


async def ledger(js: JetStreamContext, projection: Projection, dots: range) -> Ledger:
    """Count every request on `dots` in the stream against the projection.

    lost: a request with no terminal row in the sync log (or whose pair counters miss it); doubled: a
    request with more than one outcome message in the stream, or pair counters above the row counts.
    """
    requests, outcomes = await stream_requests_and_outcomes(js, dots)
    rows = await projection.log_rows(dots)
    counted_requests, counted_outcomes = await projection.pair_counters(dots)
    result = Ledger(requests=len(requests))
    terminal_rows = 0
    for request_id in requests:
        status, has_request = rows.get(request_id, ("missing", False))
        if status in TERMINAL and has_request:
            terminal_rows += 1
        elif len(result.examples) < 5:
            result.examples.append(f"{request_id}: {status} in the sync log")
        mine = outcomes.get(request_id, [])
        if len(mine) > 1:
            result.doubled += 1
            if len(result.examples) < 5:
                result.examples.append(f"{request_id}: {len(mine)} outcomes in the stream")
        for outcome in mine[:1]:
            result.outcomes["synced" if isinstance(outcome, SourceSynced) else outcome.kind.value] += 1
            result.max_attempts = max(result.max_attempts, outcome.attempts)
    result.terminal = terminal_rows
    result.lost = result.requests - terminal_rows
    # the pair counters must count each request and each outcome exactly once
    result.doubled += max(0, counted_requests - result.requests) + max(0, counted_outcomes - terminal_rows)
    result.lost += max(0, result.requests - counted_requests) + max(0, terminal_rows - counted_outcomes)
    if counted_requests != result.requests or counted_outcomes != terminal_rows:
        result.examples.append(
            f"pair counters: requests={counted_requests} outcomes={counted_outcomes}, "
            f"stream requests={result.requests} terminal rows={terminal_rows}"
        )
    return result


async def settled(nc: Client, projection: Projection, dots: range, sources: Iterable[SourceKey]) -> bool:
    """True when nothing is left to do: the source consumers are idle, the projector has applied the
    whole stream, and every request it knows on `dots` has its terminal outcome.
    """
    js = nc.jetstream()
    for source in sources:
        try:
            info = await js.consumer_info(EVENTS_STREAM, source_durable(source))
        except Exception:
            return False
        if info.num_pending or info.num_ack_pending or info.num_redelivered:
            return False
    last = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    if await projection.position() < last:
        return False
    known, terminal = await projection.open_and_terminal(dots)
    return known == terminal


async def wait_settled(
    nc: Client, projection: Projection, dots: range, sources: Iterable[SourceKey], *, within_s: float
) -> bool:
    """Poll `settled` until it holds twice in a row or `within_s` passes; False on timeout."""
    deadline = time.monotonic() + within_s
    wanted = list(sources)
    streak = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # a broker or database still coming back
            streak = streak + 1 if await settled(nc, projection, dots, wanted) else 0
        if streak >= 2:
            return True
        await asyncio.sleep(0.5)
    return False


async def chaos(
    system: System, victims: Sequence[str], *, seconds: float, rng: random.Random, stop: asyncio.Event
) -> int:
    """kill -9 a random victim every 1-3 s, restart it after 0-2 s; returns the number of kills.

    Victims are drawn from a shuffled bag refilled when empty, so each one is killed as often as any
    other (give or take one), in a random order.
    """
    kills = 0
    bag: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(1.0, 3.0))
        if stop.is_set():
            break
        if not bag:
            bag = rng.sample(list(victims), len(victims))
        victim = bag.pop()
        system.kill(victim)
        kills += 1
        await asyncio.sleep(rng.uniform(0.0, 2.0))
        system.restart(victim)
    return kills


def record(line: str) -> None:
    """Append a result line to test-artifacts/reliability.txt."""
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with ARTIFACT.open("a") as out:
        out.write(f"{stamp} scale={SCALE.name} {line}\n")
