"""R7 security, against the deployed processes (gateway, sources, sandbox as `up` runs them):

- the role matrix: no token 401, a lower role 403, the route's role and above 2xx. Every mutating
  route x every role is covered in process by `services/gateway/tests/integration/test_auth.py`; here
  one route per role level is checked on the running gateway process;
- DOT fields filled with SoQL, SQL and path injection strings get 422 wherever they enter (bodies,
  forms, queries; paths 404 or 422; a CSV import reports the row invalid and imports nothing), nothing
  reaches the bus, and the sandbox sees no request at all (its counters and request log);
  `test_validation.py` covers the same strings in process;
- no configured secret (the JWT secret, the three upstream credentials, the bus passwords) and no bearer
  token appears in any process's log after everything the suite did;
- the bus, with every service running: each service's NATS user is refused events it does not author
  (forged outcomes, change facts, company and rule events), none of them reaches the stream, every service
  user is refused deleting or purging a stream, deleting a consumer or a bucket, and a connection without
  a password is refused. `libs/events/tests/integration/test_bus_permissions.py` covers every event type
  x every user on a server of its own;
- control characters (NUL, tab, line breaks, ESC, DEL) in free text get 422 wherever a person types
  them (a company name by POST, the page's form, a JSON or CSV import row, a cron, a webhook URL) and
  publish nothing; on the bus, where an old or forged event may carry one, the projector dead-letters
  it (`invalid`) and goes on folding, and an event whose value the database refuses (an attempts count
  beyond 64 bits) is dead-lettered as `store_refused` by bisecting its batch: the events after both
  are folded and the position moves past them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from reliability_support import SOURCES, Projection, System, manual_request, wait_settled

from fmcsa_cli.launcher import bus_passwords
from fmcsa_events.bus import Bus
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    AlertRuleChanged,
    CarrierDataChanged,
    ChangeKind,
    CompanyRegistered,
    CompanyRemoved,
    Counts,
    Event,
    ScheduleChanged,
    SourceSynced,
    SyncRequested,
    Trigger,
    WebhookDestination,
)
from fmcsa_events.permissions import SERVICE_USERS
from fmcsa_events.subjects import subject_for
from fmcsa_events.topology import DLQ_STREAM, EVENTS_STREAM, INFLIGHT_BUCKET, source_durable
from fmcsa_runtime.tokens import Role

pytestmark = pytest.mark.reliability

INJECTIONS = [
    "1' OR '1'='1",
    "123 OR 1=1",
    "123) OR (dot_number > 0",
    "123'; DROP TABLE status_company; --",
    "1 UNION SELECT request_id FROM status_sync_log",
    "123&$where=1=1",
    "123&$limit=50000",
    "$select=*",
    "dot_number > 0",
    "../../etc/passwd",
    "..%2F..%2F_sandbox%2Freset",
    "123/../../_sandbox/reset",
    "123;ls -la",
    "123%00",
    "123\r\nX-Injected: 1",
    "fmcsa.evt.>",
    "*",
]
ROLE_CASES = [  # (method, path, body, the lowest role allowed)
    ("GET", "/api/companies", None, Role.VIEWER),
    ("POST", "/api/sync/trigger", {"dot_numbers": ["{dot}"], "sources": ["csa"]}, Role.OPERATOR),
    ("PUT", "/api/schedules/violations", {"interval_minutes": 90, "enabled": False}, Role.ADMIN),
]
ROLE_DOTS_RANGE = range(7_000_001, 7_000_100)
ROLE_DOTS = iter(ROLE_DOTS_RANGE)


def fill(body: Any) -> Any:
    if body is None:
        return None
    dot = str(next(ROLE_DOTS))
    return {k: ([v[0].format(dot=dot)] if k == "dot_numbers" else v) for k, v in body.items()}


async def role_matrix(http: httpx.AsyncClient, system: System) -> tuple[int, int, list[str]]:
    checked = passed = 0
    wrong: list[str] = []
    for method, path, body, needs in ROLE_CASES:
        for role in [None, *Role]:
            headers = system.bearer(role, f"r7-{role}") if role is not None else {}
            request = fill(body)
            if path == "/api/sync/trigger":  # a trigger names registered companies only (issue 20)
                admin = system.bearer(Role.ADMIN, "r7-admin")
                dot = {"dot_number": request["dot_numbers"][0]}
                assert (await http.post("/api/companies", json=dot, headers=admin)).status_code == 201
            answer = await http.request(method, path, json=request, headers=headers)
            want = "401" if role is None else "2xx" if role.allows(needs) else "403"
            got = "2xx" if 200 <= answer.status_code < 300 else str(answer.status_code)
            checked += 1
            if got == want:
                passed += 1
            else:
                wrong.append(f"{method} {path} as {role}: {answer.status_code} (want {want})")
    return checked, passed, wrong


async def injections(http: httpx.AsyncClient, admin: dict[str, str]) -> tuple[int, list[str]]:
    tried = 0
    wrong: list[str] = []

    def expect(answer: httpx.Response, codes: tuple[int, ...], what: str) -> None:
        nonlocal tried
        tried += 1
        if answer.status_code not in codes:
            wrong.append(f"{what}: {answer.status_code} {answer.text[:120]}")

    for value in INJECTIONS:
        quoted = quote(value, safe="")
        expect(await http.post("/api/companies", json={"dot_number": value}, headers=admin), (422,), value)
        expect(
            await http.post("/api/sync/trigger", json={"dot_numbers": [value]}, headers=admin), (422,), value
        )
        expect(await http.get(f"/api/sync/log?dot={quoted}", headers=admin), (422,), f"log?dot={value}")
        expect(await http.post("/ui/companies", data={"dot_number": value}, headers=admin), (422,), value)
        expect(await http.post("/ui/sync/trigger", data={"dot_number": value}, headers=admin), (422,), value)
        for method, path in (
            ("GET", f"/api/companies/{quoted}/status"),
            ("DELETE", f"/api/companies/{quoted}"),
        ):
            expect(await http.request(method, path, headers=admin), (404, 422), f"{method} {path}")
        csv = f"dot_number\n{value.replace(chr(13), '').replace(chr(10), ' ')}\n"
        answer = await http.post(
            "/api/companies/import", content=csv, headers={**admin, "content-type": "text/csv"}
        )
        tried += 1
        if not (answer.status_code == 422 or (answer.status_code == 200 and answer.json()["accepted"] == 0)):
            wrong.append(f"import {value!r}: {answer.status_code} {answer.text[:120]}")
    return tried, wrong


def scan_logs(folder: Path, secrets: dict[str, str]) -> tuple[int, int, list[str]]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    found: list[str] = []
    size = 0
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        size += len(text)
        for name, value in secrets.items():
            if value and value in text:
                found.append(f"{name} in {path.name} ({text.count(value)} times)")
    return len(files), size, found


@pytest.mark.timeout(300)
async def test_r7_roles_injections_and_secrets(
    system: System, nc: Client, report: Callable[[str], None]
) -> None:
    admin = system.bearer(Role.ADMIN, "r7-admin")
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=15) as http:
        checked, passed, wrong_roles = await role_matrix(http, system)
        # the accepted triggers above reach the sandbox: let them end before counting what it sees
        await wait_settled(nc, Projection(system.status_url), ROLE_DOTS_RANGE, SOURCES, within_s=120)
        await system.sandbox_reset()
        before = (await nc.jetstream().stream_info(EVENTS_STREAM)).state.last_seq
        tried, wrong_injections = await injections(http, admin)
    await asyncio.sleep(1)  # anything that slipped through would be on its way to a source by now
    after = (await nc.jetstream().stream_info(EVENTS_STREAM)).state.last_seq
    stats = await system.sandbox_stats()
    upstream_calls = sum(source["requests"] for source in stats["sources"].values())
    seen = "\n".join(stats["requests_seen"])
    leaked = [v for v in INJECTIONS if v in seen or quote(v, safe="") in seen]
    tokens = {f"bearer token {n}": token for n, token in enumerate(sorted(system.tokens_used))}
    bus = {f"NATS password of {user}": p for user, p in bus_passwords(system.launcher.data_dir).items()}
    secrets = system.secret.values() | tokens | bus
    files, size, found = scan_logs(system.logs_dir, secrets)
    report(
        f"R7 roles={passed}/{checked} injections={tried} rejected={tried - len(wrong_injections)} "
        f"published={after - before} sandbox_saw={upstream_calls} injection_strings_upstream={len(leaked)} "
        f"log_files={files} log_bytes={size} secrets_found={len(found)}"
    )
    assert not wrong_roles, wrong_roles
    assert not wrong_injections, wrong_injections[:10]
    assert after == before, "an injection attempt published an event"
    assert upstream_calls == 0, stats["requests_seen"][:10]
    assert not leaked, leaked
    assert not found, found


FORGED_DOT = "7100001"
AUTHORIZATION_VIOLATION = b"-ERR 'Authorization Violation'"


def forged_events() -> list[tuple[str, Event]]:
    """(the service user that tries it, an event that user does not author), on a DOT of R7's own."""
    now = datetime.now(UTC)
    request = uuid4()

    def outcome(source: str) -> SourceSynced:
        return SourceSynced(
            request_id=uuid4(),
            dot=FORGED_DOT,
            source=source,
            counts=Counts(),
            attempts=1,
            started_at=now,
            finished_at=now,
        )

    def change(source: str, kind: ChangeKind) -> CarrierDataChanged:
        return CarrierDataChanged(
            request_id=request, dot=FORGED_DOT, source=source, kind=kind, subject="forged", observed_at=now
        )

    rule = AlertRuleChanged(
        name="r7-forged",
        kinds=(ChangeKind.BASIC_ALERT_STARTED,),
        destinations=(WebhookDestination(url="https://example.invalid/hook", sealed_secret="x"),),
    )
    request_event = SyncRequested(
        request_id=uuid4(),
        dot=FORGED_DOT,
        source="violations",
        trigger=Trigger.MANUAL,
        requested_at=now,
        deadline=now + timedelta(minutes=5),
    )
    return [
        ("gateway", change("csa", ChangeKind.BASIC_ALERT_STARTED)),
        ("gateway", outcome("csa")),
        ("source-csa", outcome("violations")),
        ("source-csa", change("inspections", ChangeKind.CRASHES_ADDED)),
        ("source-csa", CompanyRegistered(dot=FORGED_DOT)),
        ("source-csa", rule),
        ("source-violations", CompanyRemoved(dot=FORGED_DOT)),
        ("source-violations", request_event),
        ("source-inspections", change("csa", ChangeKind.BASIC_ALERT_STARTED)),
        ("scheduler", change("violations", ChangeKind.VIOLATIONS_ADDED)),
        ("scheduler", ScheduleChanged(source="csa", interval_minutes=5)),
        ("status", outcome("inspections")),
        ("status", CompanyRegistered(dot=FORGED_DOT)),
        ("notifier", change("csa", ChangeKind.BASIC_ALERT_STARTED)),
        ("notifier", rule),
    ]


ADMIN_OPERATIONS: dict[str, Callable[[JetStreamContext], Awaitable[object]]] = {
    "delete FMCSA_EVENTS": lambda js: js.delete_stream(EVENTS_STREAM),
    "purge FMCSA_EVENTS": lambda js: js.purge_stream(EVENTS_STREAM),
    "purge FMCSA_DLQ": lambda js: js.purge_stream(DLQ_STREAM),
    "delete source-csa's consumer": lambda js: js.delete_consumer(EVENTS_STREAM, source_durable("csa")),
    "delete the in-flight bucket": lambda js: js.delete_key_value(INFLIGHT_BUCKET),
}


class Violations:
    """The server's `-ERR 'Permissions Violation ...'` lines on one connection (its error callback)."""

    def __init__(self) -> None:
        self.seen = asyncio.Event()
        self.count = 0

    async def error_cb(self, error: Exception) -> None:
        if "permissions violation" in str(error).lower():
            self.count += 1
            self.seen.set()


async def refused(attempt: Awaitable[object], violations: Violations) -> bool:
    """True when the server refused the request: it said so (a permissions violation, usually within
    milliseconds), or the request got no answer within its timeout (the server dropped it)."""
    violations.seen.clear()
    request = asyncio.ensure_future(attempt)
    said = asyncio.ensure_future(violations.seen.wait())
    done, _ = await asyncio.wait({request, said}, return_when=asyncio.FIRST_COMPLETED)
    if said in done:
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
        return True
    said.cancel()
    try:
        request.result()
    except nats.errors.TimeoutError:
        return True
    return False


async def last_on(js: JetStreamContext, subject: str) -> int:
    """The stream sequence of the last message on `subject`; 0 when there is none."""
    try:
        return int((await js.get_last_msg(EVENTS_STREAM, subject)).seq or 0)
    except nats.js.errors.NotFoundError:
        return 0


async def unauthenticated_answer(url: str) -> bytes:
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        await asyncio.wait_for(reader.readline(), 5)
        writer.write(b'CONNECT {"verbose":false}\r\nPING\r\n')
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 5)).strip()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.timeout(180)
async def test_r7_the_bus_refuses_forged_events_and_destruction(
    system: System, nc: Client, report: Callable[[str], None]
) -> None:
    passwords = bus_passwords(system.launcher.data_dir)
    admin = nc.jetstream()
    # at least one event in the stream, so that a purge or a delete that got through would show
    await Bus(admin, producer="reliability").publish(CompanyRegistered(dot=FORGED_DOT))
    kept_before = (await admin.stream_info(EVENTS_STREAM)).state.messages
    forged = forged_events()
    subjects = sorted({subject_for(e) for _, e in forged})
    before = {subject: await last_on(admin, subject) for subject in subjects}  # schedules exist already
    published: list[str] = []
    said_so = 0  # refusals the server announced, not only timed out
    for user, event in forged:
        violations = Violations()
        client = await nats.connect(
            system.nats_url,
            user=user,
            password=passwords[user],
            allow_reconnect=False,
            error_cb=violations.error_cb,
        )
        try:
            bus = Bus(client.jetstream(), producer=user, timeout_s=2)
            if not await refused(bus.publish(event), violations):
                published.append(f"{user}: {type(event).__name__}")
        finally:
            said_so += violations.count
            await client.close()
    stored = [subject for subject in subjects if await last_on(admin, subject) != before[subject]]

    operations = 0
    allowed: list[str] = []
    for user in SERVICE_USERS:
        violations = Violations()
        client = await nats.connect(
            system.nats_url,
            user=user,
            password=passwords[user],
            allow_reconnect=False,
            error_cb=violations.error_cb,
        )
        try:
            js = client.jetstream(timeout=2)
            for what, operation in ADMIN_OPERATIONS.items():
                operations += 1
                if not await refused(operation(js), violations):
                    allowed.append(f"{user}: {what}")
        finally:
            said_so += violations.count
            await client.close()
    events = await admin.stream_info(EVENTS_STREAM)
    consumer = await admin.consumer_info(EVENTS_STREAM, source_durable("csa"))
    await admin.key_value(INFLIGHT_BUCKET)  # raises if it was deleted
    answer = await unauthenticated_answer(system.nats_url)
    verdict = "refused" if answer == AUTHORIZATION_VIOLATION else answer.decode()
    report(
        f"R7 bus forged={len(forged)} refused={len(forged) - len(published)} stored={len(stored)} "
        f"admin_ops={operations} refused={operations - len(allowed)} "
        f"users={len(SERVICE_USERS)} said_so={said_so} events_kept={events.state.messages} "
        f"no_password={verdict}"
    )
    assert published == [], published
    assert stored == [], stored
    assert allowed == [], allowed
    assert events.state.messages >= kept_before > 0
    assert consumer.name == source_durable("csa")
    assert answer == AUTHORIZATION_VIOLATION


CONTROLS = ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f"]
CONTROL_DOTS = range(7_100_001, 7_100_100)


async def control_characters_at_the_edge(
    http: httpx.AsyncClient, admin: dict[str, str]
) -> tuple[int, list[str]]:
    """Each control character in each place a person types free text: 422, or an import's invalid row."""
    tried = 0
    wrong: list[str] = []
    dot = str(CONTROL_DOTS.start)

    def expect(ok: bool, what: str, answer: httpx.Response) -> None:
        nonlocal tried
        tried += 1
        if not ok:
            wrong.append(f"{what}: {answer.status_code} {answer.text[:120]}")

    for char in CONTROLS:
        code = f"U+{ord(char):04X}"
        name = f"R7{char}Carrier"
        answer = await http.post("/api/companies", json={"dot_number": dot, "name": name}, headers=admin)
        expect(answer.status_code == 422 and code in answer.text, f"POST name {code}", answer)
        answer = await http.post("/ui/companies", data={"dot_number": dot, "name": name}, headers=admin)
        expect(answer.status_code == 422, f"form name {code}", answer)
        answer = await http.post(
            "/api/companies/import", json=[{"dot_number": dot, "name": name}], headers=admin
        )
        refused_row = answer.status_code == 200 and (answer.json()["accepted"], answer.json()["invalid"]) == (
            0,
            1,
        )
        expect(refused_row, f"JSON import {code}", answer)
        text = io.StringIO()
        csv.writer(text).writerows([["dot_number", "name"], [dot, name]])
        answer = await http.post(
            "/api/companies/import", content=text.getvalue(), headers={**admin, "content-type": "text/csv"}
        )
        refused_row = answer.status_code == 200 and (answer.json()["accepted"], answer.json()["invalid"]) == (
            0,
            1,
        )
        expect(refused_row, f"CSV import {code}", answer)
        answer = await http.put("/api/schedules/csa", json={"cron": f"0 *{char}* * *"}, headers=admin)
        expect(answer.status_code == 422, f"cron {code}", answer)
        rule = {"kinds": ["crashes_added"], "destinations": [{"url": f"https://hooks.example.com/a{char}b"}]}
        answer = await http.put("/api/alert-rules/r7-controls", json=rule, headers=admin)
        expect(answer.status_code == 422, f"webhook URL {code}", answer)
    return tried, wrong


@pytest.mark.timeout(300)
async def test_r7_control_characters_are_refused_at_the_edge_and_never_stop_the_projector(
    system: System, nc: Client, report: Callable[[str], None], wait_until: Any
) -> None:
    js = nc.jetstream()
    projection = Projection(system.status_url)
    admin = system.bearer(Role.ADMIN, "r7-admin")
    before = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=15) as http:
        tried, wrong = await control_characters_at_the_edge(http, admin)
    published = (await js.stream_info(EVENTS_STREAM)).state.last_seq - before
    rejected_before = await projection.rejected()
    # on the bus: a registration per control character, as raw bytes (old or forged), and an outcome
    # whose attempts no database column holds; each followed by good events
    expected: dict[str, str] = {}  # stream seq -> the projector's dead-letter reason
    dots = iter(CONTROL_DOTS[1:])
    for char in CONTROLS:
        dot = str(next(dots))
        headers = {
            "Nats-Msg-Id": f"r7:{dot}",
            "Fmcsa-Type": CompanyRegistered.TYPE,
            "Fmcsa-Version": "1",
            "Fmcsa-Occurred-At": datetime.now(UTC).isoformat(),
            "Fmcsa-Producer": "r7",
        }
        data = json.dumps({"dot": dot, "name": f"R7{char}Carrier"}).encode()
        ack = await js.publish(
            f"fmcsa.evt.company_registered.{dot}", data, stream=EVENTS_STREAM, headers=headers
        )
        expected[str(ack.seq)] = "invalid"
    bus = Bus(js, producer="reliability")
    request = manual_request(SourceKey.CSA, next(dots))
    now = datetime.now(UTC)
    too_big = SourceSynced(
        request_id=request.request_id, dot=request.dot, source=request.source, counts=Counts(),
        attempts=2**64, started_at=now - timedelta(seconds=1), finished_at=now,
    )  # fmt: skip
    expected[str((await bus.publish(too_big)).seq)] = "store_refused"
    after_dot = next(dots)
    good = await bus.publish(CompanyRegistered(dot=str(after_dot), name="R7 After The Bad Ones"))

    async def past_them() -> bool:
        return await projection.position() >= good.seq

    await wait_until(past_them, what="the projector past every refused event", within_s=60)
    info = (await js.stream_info(DLQ_STREAM)).state
    letters: dict[str, str] = {}  # the projector's dead letters: original stream seq -> reason
    for seq in range(max(info.first_seq, 1), info.last_seq + 1):  # the DLQ holds a few hundred at most
        letter = await js.get_msg(DLQ_STREAM, seq)
        headers = dict(letter.headers or {})
        if headers.get("Fmcsa-Dlq-Service") == "status":
            letters[headers.get("Fmcsa-Dlq-Seq", "")] = headers.get("Fmcsa-Dlq-Reason", "")
    dead_lettered = sum(1 for seq, reason in expected.items() if letters.get(seq) == reason)
    rows = await projection._fetch("SELECT name FROM status_company WHERE dot = ?", (after_dot,))
    folded_after = rows == [("R7 After The Bad Ones",)]
    rejected = await projection.rejected() - rejected_before
    alive = system.alive()
    report(
        f"R7 controls={len(CONTROLS)} edge_trials={tried} edge_rejected={tried - len(wrong)} "
        f"published={published} bus_refused={len(expected)} dead_lettered={dead_lettered} "
        f"reasons=invalid:{list(expected.values()).count('invalid')},store_refused:1 "
        f"status_rejected=+{rejected} folded_after={folded_after} alive={sum(alive.values())}/{len(alive)}"
    )
    assert not wrong, wrong[:10]
    assert published == 0, "a control character reached the bus through the gateway"
    assert dead_lettered == len(expected), (expected, letters)
    assert rejected == len(expected)
    assert folded_after
    assert all(alive.values()), alive
