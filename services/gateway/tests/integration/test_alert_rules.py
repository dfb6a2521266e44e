"""Alert rules, backtests and deliveries through the gateway, on a real nats-server of the test's own.
No webhook is sent here: PUT only resolves names, and the private addresses are refused before any
connection (the notifier's own tests deliver to the sandbox)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import nats
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from fmcsa_alerts.sealing import SecretBox, generate_key
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded, decode
from fmcsa_events.models import AlertRuleChanged, CarrierDataChanged, ChangeKind, Event
from fmcsa_events.topology import EVENTS_STREAM, Topology, declare
from fmcsa_gateway.app import create_app
from fmcsa_gateway.settings import Settings
from fmcsa_runtime.tokens import Role

KEY = generate_key()
SECRET = "whsec_this-is-the-plaintext-0001"


@dataclass
class Gateway:
    client: AsyncTestClient[Litestar]
    nats_url: str

    async def events(self, subject_prefix: str) -> list[tuple[str, Event]]:
        """Every event whose subject starts with `subject_prefix`, in stream order."""
        nc = await nats.connect(self.nats_url)
        try:
            js = nc.jetstream()
            info = await js.stream_info(EVENTS_STREAM)
            found: list[tuple[str, Event]] = []
            for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
                msg = await js.get_msg(EVENTS_STREAM, seq)
                if msg.subject.startswith(subject_prefix):
                    decoded = decode(msg.headers, msg.data or b"")
                    assert isinstance(decoded, Decoded)
                    found.append((msg.subject, decoded.event))
            return found
        finally:
            await nc.close()


@contextlib.asynccontextmanager
async def running_gateway(
    nats_url: str, tmp_path: Path, jwt_secret: str, allow: str
) -> AsyncIterator[Gateway]:
    settings = Settings(
        nats_url=nats_url,
        data_dir=tmp_path,
        status_database_url=f"sqlite:///{tmp_path / 'status.sqlite3'}",
        jwt_secret=jwt_secret,
        webhook_secret_key=KEY,
        webhook_allow_hosts=allow,
        notifier_database_url=f"sqlite:///{tmp_path / 'notifier.sqlite3'}",
    )
    async with AsyncTestClient(create_app(settings), timeout=60) as client:
        yield Gateway(client, nats_url)


@pytest.fixture
async def gw(fresh_nats_url: str, tmp_path: Path, jwt_secret: str) -> AsyncIterator[Gateway]:
    """A gateway whose allow-list holds 127.0.0.1 (where the tests' receivers would listen)."""
    async with running_gateway(fresh_nats_url, tmp_path, jwt_secret, "127.0.0.1") as gateway:
        yield gateway


@pytest.fixture
async def strict_gw(fresh_nats_url: str, tmp_path: Path, jwt_secret: str) -> AsyncIterator[Gateway]:
    """A gateway without an allow-list, as in production by default."""
    async with running_gateway(fresh_nats_url, tmp_path, jwt_secret, "") as gateway:
        yield gateway


def body(url: str = "http://127.0.0.1:9/hook", secret: str | None = SECRET, **extra: Any) -> dict[str, Any]:
    destination: dict[str, Any] = {"url": url}
    if secret is not None:
        destination["secret"] = secret
    return {
        "kinds": ["basic_alert_started", "basic_percentile_changed"],
        "destinations": [destination],
        **extra,
    }


async def test_rules_are_events_and_secrets_never_come_back(
    gw: Gateway, bearer: Callable[..., dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = bearer(Role.ADMIN, "alice")
    put = await gw.client.put("/api/alert-rules/csa-alerts", json=body(dots=["99700001"]), headers=admin)
    assert put.status_code == 200, put.text
    rule = put.json()
    assert rule["destinations"] == [
        {"id": rule["destinations"][0]["id"], "url": "http://127.0.0.1:9/hook", "secret_set": True}
    ]
    assert rule["changed_by"] == "alice"
    listed = await gw.client.get("/api/alert-rules", headers=bearer(Role.VIEWER))
    assert [r["name"] for r in listed.json()["items"]] == ["csa-alerts"]
    events = await gw.events("fmcsa.evt.alert_rule_changed.")
    [(subject, event)] = events
    assert subject == "fmcsa.evt.alert_rule_changed.csa-alerts"
    assert isinstance(event, AlertRuleChanged)
    sealed = event.destinations[0].sealed_secret
    assert SecretBox(KEY).open(sealed) == SECRET
    for text in (put.text, listed.text, event.model_dump_json(), caplog.text):
        assert SECRET not in text
    # an update without a secret keeps the URL's secret
    again = await gw.client.put("/api/alert-rules/csa-alerts", json=body(secret=None), headers=admin)
    assert again.status_code == 200, again.text
    latest = (await gw.events("fmcsa.evt.alert_rule_changed."))[-1][1]
    assert isinstance(latest, AlertRuleChanged)
    assert latest.destinations[0].sealed_secret == sealed
    assert latest.dots is None
    # delete
    assert (await gw.client.delete("/api/alert-rules/csa-alerts", headers=admin)).status_code == 204
    assert (await gw.client.get("/api/alert-rules/csa-alerts", headers=admin)).status_code == 404
    assert (await gw.client.get("/api/alert-rules", headers=admin)).json()["items"] == []
    assert (await gw.client.delete("/api/alert-rules/csa-alerts", headers=admin)).status_code == 404


async def test_writes_need_an_admin(gw: Gateway, bearer: Callable[..., dict[str, str]]) -> None:
    for role in (Role.VIEWER, Role.OPERATOR):
        answer = await gw.client.put("/api/alert-rules/x", json=body(), headers=bearer(role))
        assert answer.status_code == 403
    assert (await gw.client.put("/api/alert-rules/x", json=body())).status_code == 401


SSRF_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://127.0.0.2:8080/hook",
    "http://10.0.0.1/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]:8080/hook",
    "http://localhost:8080/hook",  # a name that resolves to 127.0.0.1
    "ftp://example.com/hook",
    "http://user:pass@127.0.0.1/hook",
]


@pytest.mark.parametrize("url", SSRF_URLS)
async def test_private_addresses_are_refused_with_422_without_the_allow_list(
    strict_gw: Gateway, bearer: Callable[..., dict[str, str]], url: str
) -> None:
    gw = strict_gw
    answer = await gw.client.put("/api/alert-rules/ssrf", json=body(url=url), headers=bearer(Role.ADMIN))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "body.destinations.0.url"
    assert await gw.events("fmcsa.evt.alert_rule_changed.") == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/ho\tok",
        "http://127.0.0.1:9/hook\n",
        "http://127.0.0.1:9/a b",
        "http://127.0.0.1:9/\x7f",
    ],
)
async def test_a_url_with_whitespace_or_a_control_character_is_refused_although_its_host_is_allowed(
    gw: Gateway, bearer: Callable[..., dict[str, str]], url: str
) -> None:
    answer = await gw.client.put("/api/alert-rules/ctl", json=body(url=url), headers=bearer(Role.ADMIN))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "body.destinations.0.url"
    assert await gw.events("fmcsa.evt.alert_rule_changed.") == []


async def test_a_new_destination_needs_a_secret_and_names_are_checked(
    gw: Gateway, bearer: Callable[..., dict[str, str]]
) -> None:
    admin = bearer(Role.ADMIN)
    missing = await gw.client.put("/api/alert-rules/r1", json=body(secret=None), headers=admin)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "body.destinations.0.secret"
    short = await gw.client.put("/api/alert-rules/r1", json=body(secret="short"), headers=admin)
    assert short.status_code == 422
    assert SECRET not in short.text
    bad_name = await gw.client.put("/api/alert-rules/Bad.Name", json=body(), headers=admin)
    assert bad_name.status_code == 422
    bad_kind = await gw.client.put("/api/alert-rules/r1", json=body(kinds=["nope"]), headers=admin)
    assert bad_kind.status_code == 422


async def test_the_backtest_runs_past_changes_through_the_rule_and_sends_nothing(
    gw: Gateway, bearer: Callable[..., dict[str, str]]
) -> None:
    admin = bearer(Role.ADMIN)
    start = datetime.now(UTC) - timedelta(seconds=1)
    nc = await nats.connect(gw.nats_url)
    try:
        await declare(nc.jetstream(), Topology())
        bus = Bus(nc.jetstream(), producer="test")

        def change(
            dot: str, before: str, after: str, kind: ChangeKind = ChangeKind.BASIC_PERCENTILE_CHANGED
        ) -> CarrierDataChanged:
            return CarrierDataChanged(
                request_id=uuid4(), dot=dot, source="csa", kind=kind, subject="unsafe_driving",
                before={"percentile": before}, after={"percentile": after}, observed_at=datetime.now(UTC),
            )  # fmt: skip

        fires = await bus.publish(change("99700001", "45", "58"))
        await bus.publish(change("99700001", "58", "59"))  # moves by 1 only
        await bus.publish(change("5", "45", "58", ChangeKind.BASIC_ALERT_CLEARED))  # another kind
    finally:
        await nc.close()
    rule = body(conditions={"delta_at_least": 5})
    assert (await gw.client.put("/api/alert-rules/moves", json=rule, headers=admin)).status_code == 200
    answer = await gw.client.post(
        "/api/alert-rules/moves/backtest", json={"since": start.isoformat()}, headers=bearer(Role.OPERATOR)
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["scanned"] == 3
    assert [f["event_id"] for f in result["fired"]] == [fires.envelope.event_id]
    assert result["live_fired"] == []  # no notifier here: nothing fired live
    assert result["equal"] is False
    empty = await gw.client.post(
        "/api/alert-rules/moves/backtest",
        json={"since": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        headers=bearer(Role.OPERATOR),
    )
    assert empty.json()["fired"] == []
    assert (
        await gw.client.post(
            "/api/alert-rules/none/backtest", json={"since": start.isoformat()}, headers=admin
        )
    ).status_code == 404
    viewer = await gw.client.post(
        "/api/alert-rules/moves/backtest", json={"since": start.isoformat()}, headers=bearer(Role.VIEWER)
    )
    assert viewer.status_code == 403


async def test_deliveries_read_empty_before_the_notifier_and_resend_needs_a_known_delivery(
    gw: Gateway, bearer: Callable[..., dict[str, str]]
) -> None:
    listed = await gw.client.get("/api/deliveries", headers=bearer(Role.VIEWER))
    assert listed.status_code == 200
    assert listed.json() == {"items": [], "next_before": None}
    assert (await gw.client.get("/api/webhook-destinations", headers=bearer(Role.VIEWER))).json() == {
        "items": []
    }
    resend = await gw.client.post(f"/api/deliveries/{'0' * 32}/resend", headers=bearer(Role.OPERATOR))
    assert resend.status_code == 404
    assert (
        await gw.client.post(f"/api/deliveries/{'0' * 32}/resend", headers=bearer(Role.VIEWER))
    ).status_code == 403
    assert (await gw.client.get("/api/deliveries?dot=abc", headers=bearer(Role.VIEWER))).status_code == 422


async def test_the_page_fragments_render(gw: Gateway, bearer: Callable[..., dict[str, str]]) -> None:
    admin = bearer(Role.ADMIN)
    form = {
        "kinds": ["safety_rating_changed"],
        "urls": "http://127.0.0.1:9/hook",
        "secret": SECRET,
        "enabled": "on",
        "dots": "99700003",
    }
    saved = await gw.client.put("/ui/alerts/from-page", data=form, headers=admin)
    assert saved.status_code == 200, saved.text
    page = await gw.client.get("/ui/alerts", headers=admin)
    assert 'data-rule="from-page"' in page.text
    assert SECRET not in page.text
    refused = await gw.client.put("/ui/alerts/bad", data={**form, "urls": "http://10.0.0.1/"}, headers=admin)
    assert refused.status_code == 422
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    result = await gw.client.post("/ui/alerts/from-page/backtest", data={"since": since}, headers=admin)
    assert result.status_code == 200
    assert 'data-fired="0"' in result.text
    deliveries = await gw.client.get("/ui/deliveries", headers=admin)
    assert deliveries.status_code == 200
    assert "No deliveries yet" in deliveries.text


async def test_the_rule_list_is_paged_in_the_api_and_on_the_page(
    gw: Gateway, bearer: Callable[..., dict[str, str]]
) -> None:
    admin = bearer(Role.ADMIN)
    names = [f"paged-{n:02d}" for n in range(27)]
    for name in names:
        assert (
            await gw.client.put(f"/api/alert-rules/{name}", json=body(), headers=admin)
        ).status_code == 200
    assert (await gw.client.delete("/api/alert-rules/paged-04", headers=admin)).status_code == 204
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = (await gw.client.get("/api/alert-rules", params=params, headers=admin)).json()
        assert page["limit"] == 5
        assert len(page["items"]) <= 5
        seen += [rule["name"] for rule in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [name for name in names if name != "paged-04"]
    bad = await gw.client.get("/api/alert-rules", params={"cursor": "../x"}, headers=admin)
    assert bad.status_code == 422
    first = (await gw.client.get("/ui/alerts", headers=admin)).text
    assert first.count('class="rule"') == 24  # a page of 25 names, one of them removed
    assert 'id="alerts-next"' in first
    assert "cursor=paged-24" in first  # the last name of the page
    second = (await gw.client.get("/ui/alerts", params={"cursor": "paged-24"}, headers=admin)).text
    assert second.count('class="rule"') == 2
    assert 'data-rule="paged-25"' in second
    assert 'data-rule="paged-26"' in second
    assert 'id="alerts-next"' not in second
