"""Who may do what: every mutating route answers 401 without a token, 403 to a lower role, 2xx to its
role and above, and publishes nothing when it refuses. Reads need a viewer. Bad tokens are 401."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from litestar.routes import HTTPRoute

from fmcsa_events.identifiers import SourceKey
from fmcsa_runtime.tokens import ISSUER, Role, mint

SECRET = "gateway-integration-tests-secret-0123456789"  # the conftest's
_dots = itertools.count(7_000_001)


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    needs: Role
    json: Any = None
    form: dict[str, str] | None = None
    csv: str | None = None
    upload: str | None = None  # a multipart `file` holding this CSV (the page's import)
    registered: bool = False  # the DOT must be registered (and seen by the view) first
    headers: dict[str, str] = field(default_factory=dict)
    prepare: str | None = None  # "rule": alert rule matrix-<dot> exists; "delivery": delivery <dot> exists

    def path_for(self, dot: str) -> str:
        return self.path.format(dot=dot, delivery=f"{int(dot):032x}", type="csa_scores")

    def render(self, dot: str) -> dict[str, Any]:
        request: dict[str, Any] = {}
        if self.json is not None:
            request["json"] = _fill(self.json, dot)
        if self.form is not None:
            request["data"] = _fill(self.form, dot)
        if self.csv is not None:
            request["content"] = self.csv.format(dot=dot)
            request["headers"] = {"content-type": "text/csv"}
        if self.upload is not None:
            request["files"] = {"file": ("companies.csv", self.upload.format(dot=dot).encode(), "text/csv")}
        return request


def _fill(value: Any, dot: str) -> Any:
    if isinstance(value, str):
        return value.format(dot=dot)
    if isinstance(value, list):
        return [_fill(v, dot) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, dot) for k, v in value.items()}
    return value


ALERT_RULE = {
    "kinds": ["basic_alert_started"],
    "destinations": [{"url": "http://127.0.0.1:9/hook", "secret": "matrix-secret-0123456789"}],
}
ALERT_FORM = {
    "kinds": "basic_alert_started",
    "urls": "http://127.0.0.1:9/hook",
    "secret": "matrix-secret-0123456789",
}
SINCE = {"since": "2026-01-01T00:00:00+00:00"}
SINCE_FORM = {"since": "2026-01-01T00:00"}

MUTATING = [
    Case("POST", "/api/companies", Role.ADMIN, json={"dot_number": "{dot}", "name": "Matrix"}),
    Case("POST", "/api/companies/import", Role.ADMIN, csv="dot_number\n{dot}\n"),
    Case("DELETE", "/api/companies/{dot}", Role.ADMIN, registered=True),
    Case(
        "POST",
        "/api/sync/trigger",
        Role.OPERATOR,
        json={"dot_numbers": ["{dot}"], "sources": ["csa"]},
        registered=True,  # a trigger names registered companies only
    ),
    Case("PUT", "/api/schedules/violations", Role.ADMIN, json={"interval_minutes": 90, "enabled": True}),
    Case("POST", "/api/sync/intervals/{type}", Role.ADMIN, json={"intervalMinutes": 90}),
    Case("POST", "/ui/companies", Role.ADMIN, form={"dot_number": "{dot}"}),
    Case("POST", "/ui/companies/import", Role.ADMIN, form={"mode": "register"}, upload="dot_number\n{dot}\n"),
    Case("POST", "/ui/sync/trigger", Role.OPERATOR, form={"dot_number": "{dot}"}, registered=True),
    Case("POST", "/ui/session", Role.VIEWER),
    Case("DELETE", "/ui/session", Role.VIEWER),
    Case("PUT", "/api/alert-rules/matrix-{dot}", Role.ADMIN, json=ALERT_RULE),
    Case("DELETE", "/api/alert-rules/matrix-{dot}", Role.ADMIN, prepare="rule"),
    Case("POST", "/api/alert-rules/matrix-{dot}/backtest", Role.OPERATOR, json=SINCE, prepare="rule"),
    Case("POST", "/api/deliveries/{delivery}/resend", Role.OPERATOR, prepare="delivery"),
    Case("PUT", "/ui/alerts/matrix-{dot}", Role.ADMIN, form=ALERT_FORM),
    Case("POST", "/ui/alerts/matrix-{dot}/backtest", Role.OPERATOR, form=SINCE_FORM, prepare="rule"),
    Case("POST", "/ui/deliveries/{delivery}/resend", Role.OPERATOR, prepare="delivery"),
    Case(
        "PUT",
        "/ui/schedules/inspections",
        Role.ADMIN,
        form={"mode": "cron", "cron": "0 */2 * * *", "enabled": "on"},
    ),
]

READS = [
    "/api/companies",
    "/api/companies/123/status",
    "/api/companies/123/history",
    "/api/changes",
    "/api/sync/log",
    "/api/sync/summary",
    "/api/sync/status",
    "/api/sync/worker-status",
    "/api/sync/intervals",
    "/api/carriers",
    "/api/carriers/123",
    "/api/schedules",
    "/api/scheduler/status",
    "/api/events",
    "/ui/whoami",
    "/ui/summary",
    "/ui/companies",
    "/ui/companies/123",
    "/ui/companies/123/row",
    "/ui/carriers/123",
    "/ui/carriers/123/violations",
    "/ui/schedules",
    "/ui/scheduler",
    "/api/alert-rules",
    "/api/deliveries",
    "/api/webhook-destinations",
    "/ui/alerts",
    "/ui/deliveries",
]


def _template(path: str) -> str:
    path = path.replace("{dot:str}", "{dot}").replace("{source:str}", "{source}")
    path = path.replace("{name:str}", "matrix-{dot}").replace("{delivery_id:str}", "{delivery}")
    return path.replace("{sync_type:str}", "{type}")


async def _prepare(gateway: Any, case: Case, dot: str, bearer: Any) -> None:
    """What a route acts on: an alert rule, or a delivery in the notifier's store (written directly)."""
    if case.prepare == "rule":
        answer = await gateway.client.put(
            f"/api/alert-rules/matrix-{dot}", json=ALERT_RULE, headers=bearer(Role.ADMIN)
        )
        assert answer.status_code == 200, answer.text
    elif case.prepare == "delivery":
        from fmcsa_alerts.deliveries import deliveries, metadata
        from fmcsa_runtime.database import create_engine

        engine = create_engine(gateway.app.state.ports.settings.resolved_notifier_database_url())
        now = datetime.now(UTC)
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(
                deliveries.insert().values(
                    id=f"{int(dot):032x}",
                    rule="matrix",
                    url="http://127.0.0.1:9/hook",
                    destination_id="0" * 16,
                    change_event_id="change:x",
                    change_seq=1,
                    dot=dot,
                    kind="basic_alert_started",
                    subject="unsafe_driving",
                    observed_at=now,
                    body="{}",
                    sealed_secret="x",
                    status="delivered",
                    attempts=1,
                    round_attempts=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        await engine.dispose()


def test_the_matrix_covers_every_mutating_route(lone_gateway: Any) -> None:
    routes = set()
    for route in lone_gateway.app.routes:
        if isinstance(route, HTTPRoute):
            routes |= {
                (m, _template(route.path)) for m in route.methods if m not in ("GET", "HEAD", "OPTIONS")
            }
    covered = {
        (
            c.method,
            c.path.replace("/csa", "/{source}")
            .replace("/violations", "/{source}")
            .replace("/inspections", "/{source}"),
        )
        for c in MUTATING
    }
    assert routes == covered


async def _wait_registered(gateway: Any, dot: str, wait_until: Any, bearer: Any) -> None:
    headers = bearer(Role.ADMIN)
    assert (
        await gateway.client.post("/api/companies", json={"dot_number": dot}, headers=headers)
    ).status_code == 201

    async def seen() -> bool:
        answer = await gateway.client.get(f"/api/companies/{dot}/status", headers=headers)
        return answer.status_code == 200 and answer.json()["active"]

    # a busy box: the projector is a child process that may take more than the default 10 s
    await wait_until(seen, what=f"company {dot} in the status view", within_s=30)


@pytest.mark.parametrize("case", MUTATING, ids=lambda c: f"{c.method} {c.path}")
async def test_a_mutating_route_refuses_missing_and_lower_roles_and_serves_its_own(
    gateway: Any, case: Case, wait_until: Any, bearer: Any
) -> None:
    before = len(await gateway.events())
    dot = str(next(_dots))
    path = case.path_for(dot)
    answer = await gateway.client.request(case.method, path, **case.render(dot))
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == "Bearer"
    for role in Role:
        if role.allows(case.needs):
            continue
        request = case.render(dot)
        request["headers"] = {**request.get("headers", {}), **bearer(role)}
        answer = await gateway.client.request(case.method, path, **request)
        assert answer.status_code == 403, (role, answer.text)
        assert case.needs.value in answer.json()["detail"]
    assert len(await gateway.events()) == before, "a refused request published something"
    for role in Role:
        if not role.allows(case.needs):
            continue
        dot = str(next(_dots))
        if case.registered:
            await _wait_registered(gateway, dot, wait_until, bearer)
        await _prepare(gateway, case, dot, bearer)
        request = case.render(dot)
        request["headers"] = {**request.get("headers", {}), **bearer(role)}
        answer = await gateway.client.request(case.method, case.path_for(dot), **request)
        assert 200 <= answer.status_code < 300, (role, answer.status_code, answer.text)


@pytest.mark.parametrize("path", READS)
async def test_reads_need_a_token_and_a_viewer_may_read(lone_gateway: Any, path: str, bearer: Any) -> None:
    answer = await lone_gateway.client.get(path)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    if path == "/api/events":
        return  # a stream: read by the SSE test
    answer = await lone_gateway.client.get(path, headers=bearer(Role.VIEWER))
    assert answer.status_code in (200, 404), answer.text  # 404: company 123 is not known


def _forged(**claims: Any) -> str:
    now = datetime.now(UTC)
    base = {
        "sub": "x",
        "role": "admin",
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer " + mint("another-secret-of-at-least-32-characters", role=Role.ADMIN, subject="mallory"),
        "Bearer " + mint(SECRET, role=Role.ADMIN, subject="late", now=datetime.now(UTC) - timedelta(days=40)),
        "Bearer " + _forged(role="root"),
        "Bearer " + _forged(iss="elsewhere"),
        "Bearer "
        + jwt.encode({"sub": "x", "role": "admin", "iss": ISSUER, "exp": 4102444800}, None, algorithm="none"),
        "Basic " + mint(SECRET, role=Role.ADMIN, subject="basic"),
        "Bearer ",
        "Bearer not.a.token",
    ],
)
async def test_bad_tokens_are_refused_with_401(lone_gateway: Any, authorization: str) -> None:
    answer = await lone_gateway.client.get("/api/companies", headers={"Authorization": authorization})
    assert answer.status_code == 401, answer.text
    answer = await lone_gateway.client.post(
        "/api/companies", json={"dot_number": "1"}, headers={"Authorization": authorization}
    )
    assert answer.status_code == 401


async def test_the_cookie_authenticates_the_live_stream_only_never_a_mutation(lone_gateway: Any) -> None:
    """The stream's own path is the one the cookie opens (test_events_stream reads it over HTTP)."""
    token = mint(SECRET, role=Role.ADMIN, subject="cookie")
    lone_gateway.client.cookies.set("fmcsa_token", token)
    try:
        assert (await lone_gateway.client.get("/api/schedules")).status_code == 401
        assert (await lone_gateway.client.get("/ui/whoami")).status_code == 401
        answer = await lone_gateway.client.post("/api/companies", json={"dot_number": "5"})
        assert answer.status_code == 401
        answer = await lone_gateway.client.put("/api/schedules/csa", json={"interval_minutes": 60})
        assert answer.status_code == 401
    finally:
        lone_gateway.client.cookies.clear()
    assert await lone_gateway.events("fmcsa.evt.company_registered") == []


async def test_events_carry_the_token_subject_as_who_asked(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    lone_gateway = gateway  # the projector runs: a trigger names companies the view has
    headers = bearer(Role.ADMIN, subject="dana@example.com")
    assert (
        await lone_gateway.client.post("/api/companies", json={"dot_number": "77"}, headers=headers)
    ).status_code == 201

    async def shown() -> bool:  # the projector may still be starting
        return (await gateway.client.get("/api/companies/77/status", headers=headers)).status_code == 200

    await wait_until(shown, what="company 77 in the status view", within_s=30)
    answer = await lone_gateway.client.post(
        "/api/sync/trigger", json={"dot_numbers": ["77"]}, headers=headers
    )
    assert answer.status_code == 202
    answer = await lone_gateway.client.put("/api/schedules/csa", json={"cron": "0 * * * *"}, headers=headers)
    assert answer.status_code == 200
    events = [event for _, event, _ in await lone_gateway.events()]
    assert [type(e).__name__ for e in events] == [
        "CompanyRegistered",
        *["SyncRequested"] * len(SourceKey),  # one per source
        "ScheduleChanged",
    ]
    assert {
        getattr(e, "registered_by", None)
        or getattr(e, "requested_by", None)
        or getattr(e, "changed_by", None)
        for e in events
    } == {"dana@example.com"}
