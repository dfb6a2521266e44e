"""The notifier as deployed: its own process on a real nats-server, delivering to the sandbox's
webhook receiver over HTTP (loopback only)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import nats
import pytest
from nats.js import JetStreamContext

from fmcsa_alerts.deliveries import DeliveriesView, DeliveryStatus
from fmcsa_alerts.sealing import SecretBox, generate_key
from fmcsa_embedded import Child, free_port, wait_for_port
from fmcsa_events.bus import Bus
from fmcsa_events.envelope import envelope_for
from fmcsa_events.models import (
    AlertRuleChanged,
    CarrierDataChanged,
    ChangeKind,
    Event,
    WebhookDestination,
    WebhookResendRequested,
)
from fmcsa_events.subjects import subject_for
from fmcsa_events.topology import DLQ_STREAM, EVENTS_STREAM, Topology, declare

SECRET = "sandbox-webhook-secret"
KEY = generate_key()


class NotifierProcess:
    def __init__(self, tmp: Path, nats_url: str, **env: str) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.env = {
            "FMCSA_NATS_URL": nats_url,
            "FMCSA_DATA_DIR": str(tmp / "data"),
            "FMCSA_NOTIFIER_HTTP_PORT": str(self.port),
            "FMCSA_WEBHOOK_SECRET_KEY": KEY,
            "FMCSA_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
            "FMCSA_NOTIFIER_RETRY_SCHEDULE_S": "0.3,0.3,0.3",
            "FMCSA_NOTIFIER_RETRY_JITTER": "0",
            "FMCSA_NOTIFIER_ACK_WAIT_S": "2",
            "FMCSA_LOG_JSON": "true",
            **env,
        }
        self.child: Child | None = None

    @property
    def database_url(self) -> str:
        return f"sqlite:///{(self.tmp / 'data' / 'notifier.sqlite3').resolve()}"

    def start(self) -> None:
        self.child = Child(
            "notifier", [sys.executable, "-m", "fmcsa_notifier"], self.env, log_path=self.tmp / "notifier.log"
        ).start()
        assert self.child.process is not None
        wait_for_port("127.0.0.1", self.port, within_s=30, process=self.child.process)
        with httpx.Client() as client:
            for _ in range(300):
                if client.get(f"http://127.0.0.1:{self.port}/ready").status_code == 200:
                    return
                wait_for_port("127.0.0.1", self.port, within_s=1)
        raise AssertionError("the notifier never became ready")

    def kill9(self) -> None:
        assert self.child is not None
        assert self.child.process is not None
        os.killpg(self.child.process.pid, signal.SIGKILL)
        self.child.process.wait(timeout=10)
        self.child = None

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(grace_s=10)
            self.child = None


@pytest.fixture
async def bus(fresh_nats_url: str) -> AsyncIterator[Bus]:
    client = await nats.connect(fresh_nats_url)
    await declare(client.jetstream(), Topology())
    yield Bus(client.jetstream(), producer="test")
    await client.close()


@pytest.fixture
def notifier(tmp_path: Path, fresh_nats_url: str) -> Iterator[NotifierProcess]:
    process = NotifierProcess(tmp_path, fresh_nats_url)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def receiver(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        yield client


def rule_for(url: str, name: str = "ratings") -> AlertRuleChanged:
    return AlertRuleChanged(
        name=name,
        kinds=(ChangeKind.SAFETY_RATING_CHANGED,),
        destinations=(WebhookDestination(url=url, sealed_secret=SecretBox(KEY).seal(SECRET)),),
    )


def change(dot: str = "99700003") -> CarrierDataChanged:
    return CarrierDataChanged(
        request_id=uuid4(),
        dot=dot,
        source="inspections",
        kind=ChangeKind.SAFETY_RATING_CHANGED,
        subject="safety_rating",
        before={"rating": "S"},
        after={"rating": "C"},
        observed_at=datetime.now(UTC),
    )


async def delivered(view: DeliveriesView, n: int = 1) -> bool:
    return len(await view.recent(status=DeliveryStatus.DELIVERED)) >= n


async def test_500_twice_then_success_is_delivered_on_the_third_attempt(
    bus: Bus, notifier: NotifierProcess, receiver: httpx.AsyncClient, sandbox_url: str, wait_until: Any
) -> None:
    await bus.publish(rule_for(f"{sandbox_url}/_sandbox/webhooks/ratings"))  # before the notifier: folded
    notifier.start()
    (await receiver.put("/_sandbox/webhooks/faults", json={"fail_next": 2})).raise_for_status()
    published = await bus.publish(change())
    view = DeliveriesView(notifier.database_url)
    try:
        await wait_until(lambda: delivered(view), what="a delivered webhook", within_s=30)
        [delivery] = await view.recent()
        assert delivery.attempts == 3
        assert [a.status_code for a in delivery.history] == [500, 500, 200]
        assert delivery.change_event_id == published.envelope.event_id
    finally:
        await view.close()
    seen = (await receiver.get("/_sandbox/webhooks")).json()
    assert [r["answered"] for r in seen["received"]] == [500, 500, 200]
    assert all(r["signature_ok"] for r in seen["received"])
    assert {r["event_id"] for r in seen["received"]} == {delivery.id}
    body = seen["received"][-1]["body"]
    assert body["rule"] == "ratings"
    assert body["change"]["dot"] == "99700003"
    assert body["links"]["company"].endswith("/api/companies/99700003/status")


async def test_a_rule_on_insurance_cancellation_pending_sends_the_authority_change_as_a_webhook(
    bus: Bus, notifier: NotifierProcess, receiver: httpx.AsyncClient, sandbox_url: str, wait_until: Any
) -> None:
    notifier.start()
    destination = WebhookDestination(
        url=f"{sandbox_url}/_sandbox/webhooks/insurance", sealed_secret=SecretBox(KEY).seal(SECRET)
    )
    await bus.publish(
        AlertRuleChanged(
            name="insurance", kinds=(ChangeKind.INSURANCE_CANCELLATION_PENDING,), destinations=(destination,)
        )
    )
    filing = {
        "type": "BIPD", "form": "91X", "insurer": "Acme Casualty", "policy_number": "P-1",
        "coverage": 750_000, "effective": "2025-01-01", "cancellation": None,
    }  # fmt: skip
    pending = {**filing, "cancellation": "2027-01-15"}

    def authority_change(kind: ChangeKind, before: object, after: object) -> CarrierDataChanged:
        return CarrierDataChanged(
            request_id=uuid4(), dot="99700010", source="authority", kind=kind, subject="bipd_p_1",
            before=before, after=after, observed_at=datetime.now(UTC),  # type: ignore[arg-type]
        )  # fmt: skip

    await bus.publish(authority_change(ChangeKind.INSURANCE_FILING_ADDED, None, filing))  # no rule on it
    published = await bus.publish(
        authority_change(ChangeKind.INSURANCE_CANCELLATION_PENDING, filing, pending)
    )
    view = DeliveriesView(notifier.database_url)
    try:
        await wait_until(lambda: delivered(view), what="a delivered webhook", within_s=30)
        [delivery] = await view.recent()
        assert (delivery.rule, delivery.change_event_id) == ("insurance", published.envelope.event_id)
    finally:
        await view.close()
    seen = (await receiver.get("/_sandbox/webhooks")).json()
    assert [r["answered"] for r in seen["received"]] == [200]
    [received] = seen["received"]
    assert received["signature_ok"]
    body = received["body"]
    assert body["rule"] == "insurance"
    assert (body["change"]["source"], body["change"]["kind"]) == (
        "authority",
        "insurance_cancellation_pending",
    )
    assert (body["change"]["before"], body["change"]["after"]) == (filing, pending)
    assert body["links"]["company"].endswith("/api/companies/99700010/status")


async def test_a_change_no_rule_matches_sends_nothing_and_a_private_address_is_refused(
    bus: Bus, notifier: NotifierProcess, receiver: httpx.AsyncClient, wait_until: Any, unused_port: int
) -> None:
    notifier.start()
    # 127.0.0.2 is loopback and not on the allow-list: refused before any connection is made
    await bus.publish(rule_for(f"http://127.0.0.2:{unused_port}/hook", name="private"))
    await bus.publish(
        AlertRuleChanged(
            name="other-kind",
            kinds=(ChangeKind.CRASHES_ADDED,),
            destinations=(WebhookDestination(url="http://127.0.0.1:1/x", sealed_secret="x"),),
        )
    )
    await bus.publish(change())
    view = DeliveriesView(notifier.database_url)
    try:

        async def failed() -> bool:
            return len(await view.recent(status=DeliveryStatus.FAILED)) == 1

        await wait_until(failed, what="a refused delivery", within_s=30)
        [delivery] = await view.recent()
        assert delivery.rule == "private"
        assert delivery.last_error is not None
        assert "loopback" in delivery.last_error
        assert delivery.attempts == 1
        assert delivery.history[0].status_code is None
    finally:
        await view.close()
    assert (await receiver.get("/_sandbox/webhooks")).json()["total"] == 0


async def test_kill_9_mid_delivery_still_delivers_and_a_duplicate_keeps_its_event_id(
    bus: Bus, notifier: NotifierProcess, receiver: httpx.AsyncClient, sandbox_url: str, wait_until: Any
) -> None:
    await bus.publish(rule_for(f"{sandbox_url}/_sandbox/webhooks/ratings"))
    notifier.start()
    (await receiver.put("/_sandbox/webhooks/faults", json={"hang_next": 1, "hang_s": 8})).raise_for_status()
    await bus.publish(change())

    async def received() -> bool:
        return bool((await receiver.get("/_sandbox/webhooks")).json()["total"] >= 1)

    await wait_until(received, what="the first attempt at the receiver", within_s=30)
    notifier.kill9()  # mid-delivery: the receiver is still holding the request
    notifier.start()
    view = DeliveriesView(notifier.database_url)
    try:
        await wait_until(lambda: delivered(view), what="delivery after the kill", within_s=30)
        [delivery] = await view.recent()
    finally:
        await view.close()
    seen = (await receiver.get("/_sandbox/webhooks")).json()
    assert seen["total"] >= 2
    assert set(seen["per_event_id"]) == {delivery.id}  # every duplicate carries the same event id
    assert all(r["signature_ok"] for r in seen["received"])
    with contextlib.suppress(Exception):
        await receiver.post("/_sandbox/webhooks/reset")


async def test_a_destination_that_fails_every_attempt_is_failing_and_holds_later_deliveries(
    bus: Bus, notifier: NotifierProcess, receiver: httpx.AsyncClient, sandbox_url: str, wait_until: Any
) -> None:
    notifier.env["FMCSA_NOTIFIER_RETRY_SCHEDULE_S"] = "0.2"  # two attempts in all
    await bus.publish(rule_for(f"{sandbox_url}/_sandbox/webhooks/ratings"))
    notifier.start()
    (
        await receiver.put("/_sandbox/webhooks/faults", json={"fail_next": 100, "status": 503})
    ).raise_for_status()
    await bus.publish(change())
    view = DeliveriesView(notifier.database_url)
    try:

        async def failing() -> bool:
            return any(d.failing for d in await view.destinations())

        await wait_until(failing, what="the destination marked failing", within_s=30)
        [failed] = await view.recent(status=DeliveryStatus.FAILED)
        assert [a.status_code for a in failed.history] == [503, 503]
        await bus.publish(change(dot="123"))

        async def held() -> bool:
            return len(await view.recent(status=DeliveryStatus.HELD)) == 1

        await wait_until(held, what="a held delivery", within_s=30)
        assert (await receiver.get("/_sandbox/webhooks")).json()["total"] == 2  # the held one was not sent
        (await receiver.put("/_sandbox/webhooks/faults", json={"fail_next": 0})).raise_for_status()
        await bus.publish(WebhookResendRequested(delivery_id=failed.id, requested_by="test"))

        async def both_delivered() -> bool:
            return len(await view.recent(status=DeliveryStatus.DELIVERED)) == 2

        await wait_until(both_delivered, what="the resend and the released delivery", within_s=30)
        assert not any(d.failing for d in await view.destinations())
    finally:
        await view.close()


async def test_a_url_httpx_refuses_fails_alone_and_the_other_rules_delivery_goes_out(
    bus: Bus, notifier: NotifierProcess, receiver: httpx.AsyncClient, sandbox_url: str, wait_until: Any
) -> None:
    # published straight to the bus (the gateway refuses it): the event model refuses control characters
    # but not a space, which the notifier's URL check refuses at send time
    await bus.publish(rule_for(f"{sandbox_url}/_sandbox/webhooks/a b", name="a-tab"))  # planned first
    await bus.publish(rule_for(f"{sandbox_url}/_sandbox/webhooks/good", name="b-good"))
    notifier.start()
    await bus.publish(change())
    view = DeliveriesView(notifier.database_url)
    try:

        async def settled() -> bool:
            found = await view.recent()
            return len(found) == 2 and all(d.status is not DeliveryStatus.PENDING for d in found)

        await wait_until(settled, what="both deliveries settled", within_s=30)
        by_rule = {d.rule: d for d in await view.recent()}
    finally:
        await view.close()
    assert by_rule["b-good"].status is DeliveryStatus.DELIVERED
    assert by_rule["b-good"].attempts == 1
    assert by_rule["a-tab"].status is DeliveryStatus.FAILED  # refused for good: no retry
    assert by_rule["a-tab"].last_error is not None
    assert by_rule["a-tab"].last_error.startswith("refused_address")
    assert (await receiver.get("/_sandbox/webhooks")).json()["total"] == 1


async def test_a_slow_receiver_does_not_hold_back_another_rules_delivery_of_the_same_change(
    bus: Bus, notifier: NotifierProcess, sandbox_url: str, wait_until: Any
) -> None:
    held = asyncio.Event()
    release = asyncio.Event()

    async def dripping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            held.set()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while not release.is_set():  # a byte now and then, until the test ends
                writer.write(b"a")
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(release.wait(), 1.0)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(dripping, "127.0.0.1", 0)
    slow_port = server.sockets[0].getsockname()[1]
    notifier.env["FMCSA_NOTIFIER_TIMEOUT_S"] = "60"
    await bus.publish(rule_for(f"http://127.0.0.1:{slow_port}/hook", name="a-slow"))  # planned first
    await bus.publish(rule_for(f"{sandbox_url}/_sandbox/webhooks/good", name="b-good"))
    notifier.start()
    await bus.publish(change())
    view = DeliveriesView(notifier.database_url)
    try:
        await wait_until(lambda: delivered(view), what="the other rule's delivery", within_s=30)
        assert held.is_set()  # the slow receiver has its request and is still dripping the answer
        by_rule = {d.rule: d for d in await view.recent()}
        assert by_rule["b-good"].status is DeliveryStatus.DELIVERED
        assert by_rule["a-slow"].status is DeliveryStatus.PENDING
        assert by_rule["a-slow"].attempts == 0  # its attempt is still in flight: nothing waited for it
    finally:
        release.set()
        server.close()
        await view.close()


async def test_a_slow_delivery_holds_only_its_own_slot_and_nothing_waits_fetched(
    bus: Bus, notifier: NotifierProcess, sandbox_url: str, fresh_nats_url: str, wait_until: Any
) -> None:
    """One slot, held by a receiver that does not answer: the next change is not fetched to wait for
    it (its ack wait would run out, and it would come back while it waits), and the held message is
    kept by in-progress acks; once the slot is free the next change goes out.
    """
    release = asyncio.Event()

    async def hanging(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            await release.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(hanging, "127.0.0.1", 0)
    slow_port = server.sockets[0].getsockname()[1]
    notifier.env["FMCSA_NOTIFIER_TIMEOUT_S"] = "60"
    notifier.env["FMCSA_NOTIFIER_MAX_IN_FLIGHT"] = "1"
    slow = rule_for(f"http://127.0.0.1:{slow_port}/hook", name="a-slow").model_copy(
        update={"dots": ("99700003",)}
    )
    good = rule_for(f"{sandbox_url}/_sandbox/webhooks/good", name="b-good").model_copy(
        update={"dots": ("99700004",)}
    )
    await bus.publish(slow)
    await bus.publish(good)
    notifier.start()
    client = await nats.connect(fresh_nats_url)
    js = client.jetstream()
    view = DeliveriesView(notifier.database_url)
    try:
        await bus.publish(change("99700003"))

        async def slow_in_flight() -> bool:
            return len(await view.recent()) == 1

        await wait_until(slow_in_flight, what="the slow delivery planned", within_s=30)
        await bus.publish(change("99700004"))
        await asyncio.sleep(5.0)  # the premise: more than two ack waits (2 s) with the only slot held
        info = await js.consumer_info(EVENTS_STREAM, "notifier")
        assert (info.num_ack_pending, info.num_pending) == (1, 1)  # the next change was not fetched
        assert info.num_redelivered == 0  # the held one was kept by in-progress acks
        release.set()
        await wait_until(lambda: delivered(view, 2), what="both deliveries", within_s=30)
    finally:
        release.set()
        server.close()
        await view.close()
        await client.close()


async def publish_raw(js: JetStreamContext, event: Event, data: bytes) -> int:
    """`event`'s envelope and subject with `data` as its payload: an old or forged event on the bus,
    never checked by the models this code has."""
    envelope = envelope_for(event, producer="test", occurred_at=datetime.now(UTC))
    ack = await js.publish(subject_for(event), data, headers=envelope.to_headers(), stream=EVENTS_STREAM)
    return int(ack.seq)


async def test_a_message_that_cannot_be_planned_is_dead_lettered_and_the_next_ones_are_delivered(
    bus: Bus,
    notifier: NotifierProcess,
    receiver: httpx.AsyncClient,
    sandbox_url: str,
    database_url: str,
    fresh_nats_url: str,
    wait_until: Any,
) -> None:
    """Issue 20: nothing in one message stops the notifier, on SQLite and PostgreSQL."""
    notifier.env["FMCSA_NOTIFIER_DATABASE_URL"] = database_url
    await bus.publish(rule_for(f"{sandbox_url}/_sandbox/webhooks/ratings"))
    notifier.start()
    nc = await nats.connect(fresh_nats_url)
    js = nc.jetstream()
    # a rule whose URL holds U+0000 (raw bytes: the models refuse it): refused on decode
    nul_rule = rule_for(f"{sandbox_url}/_sandbox/webhooks/nul", name="nul")
    data = nul_rule.model_dump_json().replace("/nul", "/n\\u0000ul").encode()
    nul_seq = await publish_raw(js, nul_rule, data)
    # a change whose `before` is a lone surrogate: it decodes (JSON allows the escape), but no webhook
    # body can be made of it: the pure planning raises, every time
    odd = change()
    data = odd.model_dump_json().replace('"before":{"rating":"S"}', '"before":"\\ud800"').encode()
    assert b"\\ud800" in data
    odd_seq = await publish_raw(js, odd, data)
    refused_seq = None
    if "postgresql" in database_url:  # a time PostgreSQL cannot store (UTC is year 10000): refused there
        late = change().model_copy(
            update={"observed_at": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-12)))}
        )
        refused_seq = (await bus.publish(late)).seq
    good = await bus.publish(change(dot="99700004"))
    view = DeliveriesView(database_url)
    try:
        await wait_until(lambda: delivered(view), what="the change after them delivered", within_s=30)
        [delivery] = await view.recent()
        assert delivery.change_event_id == good.envelope.event_id
    finally:
        await view.close()
    letters = {
        "invalid": (nul_seq, "control character (U+0000)"),
        "unplannable": (odd_seq, "surrogates not allowed"),
    }
    if refused_seq is not None:
        letters["store_refused"] = (refused_seq, "date value out of range")
    for reason, (seq, detail) in letters.items():
        letter = await js.get_last_msg(DLQ_STREAM, f"fmcsa.dlq.notifier.{reason}")
        assert letter.headers is not None
        assert letter.headers["Fmcsa-Dlq-Seq"] == str(seq)
        assert detail in letter.headers["Fmcsa-Dlq-Detail"]
    assert (await js.stream_info(DLQ_STREAM)).state.messages == len(letters)
    await nc.close()
    seen = (await receiver.get("/_sandbox/webhooks")).json()
    assert seen["total"] == 1  # the refused ones sent nothing
