"""A carrier data change to its webhook's arrival at the receiver (issue 14).

The `Launcher` behind `./fmcsa up` starts nats-server, the sandbox (its webhook receiver records
`received_at`, its clock, as each call arrives) and the notifier as processes on a scratch folder. An
`AlertRuleChanged` for `safety_rating_changed`, every company, to the receiver is published as the
gateway's `PUT /api/alert-rules/{name}` would (the secret sealed with the deployment's key), and one
warm-up change is delivered. Then N `CarrierDataChanged` are published with the `Bus` one every
`webhook_interval_ms` (not as a burst: each change's latency, not a queue's), each stamped with the
wall clock just before its publish. Receipts are matched on the body's `change_event_id`;
`change_to_webhook_p95_ms` is the p95 of (received - published). The receiver adds no latency (the
sandbox's base latency applies to its upstream routes only, and `received_at` is taken before any
fault), so there is none to subtract.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

import httpx
import nats
from nats.js import JetStreamContext

from bench import report
from fmcsa_alerts.sealing import SecretBox, generate_key
from fmcsa_cli.launcher import Launcher
from fmcsa_embedded import free_port
from fmcsa_events.bus import Bus
from fmcsa_events.models import AlertRuleChanged, CarrierDataChanged, ChangeKind, WebhookDestination
from fmcsa_events.topology import EVENTS_STREAM, NOTIFIER_DURABLE

if TYPE_CHECKING:
    from bench.run import Context

RECEIVER_SECRET = "bench-webhook-secret"
DOTS_FROM = 6_000_001
T = TypeVar("T")


def change(dot: int) -> CarrierDataChanged:
    return CarrierDataChanged(
        request_id=uuid4(),
        dot=str(dot),
        source="inspections",
        kind=ChangeKind.SAFETY_RATING_CHANGED,
        subject="safety_rating",
        before={"rating": "S"},
        after={"rating": "C"},
        observed_at=datetime.now(UTC),
    )


async def run(ctx: Context) -> None:
    scale = ctx.scale
    key = generate_key()
    launcher = Launcher(
        data_dir=ctx.workdir / "webhooks",
        gateway_port=free_port(),  # no gateway runs: only the links in the bodies name it
        services=["sandbox", "notifier"],
        extra_env={
            "FMCSA_WEBHOOK_SECRET_KEY": key,
            "FMCSA_SANDBOX_WEBHOOK_SECRET": RECEIVER_SECRET,
            "FMCSA_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
            "FMCSA_LOG_LEVEL": "WARNING",
            "FMCSA_LOG_JSON": "true",
        },
    )
    started = time.monotonic()
    await asyncio.to_thread(launcher.start)
    try:
        assert launcher.sandbox_url is not None
        assert launcher.nats is not None
        async with httpx.AsyncClient(timeout=10) as http:
            nc = await nats.connect(launcher.nats.url, name="bench-webhooks", **launcher.bus_admin())
            try:
                js = nc.jetstream()
                # the notifier's consumer (and the stream) exist: it starts at its creation, so wait
                await _until(lambda: _consumer(js), what="the notifier's consumer", within_s=60)
                ctx.note("webhooks", startup_s=round(time.monotonic() - started, 1))
                bus = Bus(js, producer="bench")
                destination = WebhookDestination(
                    url=f"{launcher.sandbox_url}/_sandbox/webhooks/bench",
                    sealed_secret=SecretBox(key).seal(RECEIVER_SECRET),
                )
                await bus.publish(
                    AlertRuleChanged(
                        name="bench",
                        kinds=(ChangeKind.SAFETY_RATING_CHANGED,),
                        destinations=(destination,),
                        changed_by="bench",
                    )
                )
                received = f"{launcher.sandbox_url}/_sandbox/webhooks"
                warm = await bus.publish(change(DOTS_FROM - 1))  # the first connection, the first POST
                await _until(
                    lambda: _arrived(http, received, {warm.envelope.event_id}),
                    what="the warm-up webhook",
                    within_s=60,
                )
                (await http.post(f"{received}/reset")).raise_for_status()
                published: dict[str, float] = {}
                acked_ms: list[float] = []
                interval = scale.webhook_interval_ms / 1000
                began = time.monotonic()
                for i in range(scale.webhook_changes):
                    due = began + i * interval
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    event = change(DOTS_FROM + i)
                    envelope = bus.envelope(event)
                    at = time.time()
                    await bus.publish(event, envelope=envelope)
                    acked_ms.append((time.time() - at) * 1000)
                    published[envelope.event_id] = at
                seen = await _until(
                    lambda: _arrived(http, received, set(published)),
                    what=f"{len(published)} webhooks",
                    within_s=120,
                )
            finally:
                await nc.drain()
    finally:
        await asyncio.to_thread(launcher.stop, grace_s=10)
    latencies: list[float] = []
    firsts: set[str] = set()
    duplicates = unsigned = 0
    for record in seen:  # oldest first: the first arrival of each change counts
        body = record["body"]
        event_id = body.get("change_event_id") if isinstance(body, dict) else None
        if event_id is None or event_id not in published:
            continue
        if not record["signature_ok"]:
            unsigned += 1
        if event_id in firsts:
            duplicates += 1
            continue
        firsts.add(event_id)
        latencies.append((record["received_at"] - published[event_id]) * 1000)
    p95 = report.percentile(latencies, 0.95)
    ctx.note(
        "webhooks",
        changes=len(published),
        interval_ms=scale.webhook_interval_ms,
        received=len(latencies),
        duplicates=duplicates,
        signature_failures=unsigned,
        p50_ms=round(report.percentile(latencies, 0.5), 1),
        p95_ms=round(p95, 1),
        max_ms=round(max(latencies), 1),
        publish_ack_p50_ms=round(report.percentile(acked_ms, 0.5), 1),
    )
    print(
        f"  {len(published)} changes, one per {scale.webhook_interval_ms:.0f} ms: webhook p50"
        f" {report.percentile(latencies, 0.5):.0f} ms, p95 {p95:.0f} ms, max {max(latencies):.0f} ms"
    )
    ctx.record("change_to_webhook_p95_ms", p95)


async def _until(check: Callable[[], Awaitable[T | None]], *, what: str, within_s: float) -> T:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if (found := await check()) is not None:
            return found
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{what} not there within {within_s:.0f} s")


async def _consumer(js: JetStreamContext) -> bool | None:
    try:
        await js.consumer_info(EVENTS_STREAM, NOTIFIER_DURABLE)
    except Exception:  # not declared yet
        return None
    return True


async def _arrived(http: httpx.AsyncClient, url: str, wanted: set[str]) -> list[dict[str, Any]] | None:
    """The receiver's records once every change of `wanted` arrived (the body's `change_event_id`)."""
    answer = await http.get(url)
    answer.raise_for_status()
    records: list[dict[str, Any]] = answer.json()["received"]
    got = {r["body"].get("change_event_id") for r in records if isinstance(r["body"], dict)}
    return records if wanted <= got else None
