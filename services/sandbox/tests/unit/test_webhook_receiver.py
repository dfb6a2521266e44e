from __future__ import annotations

import random

from litestar.testing import TestClient

from fmcsa_alerts.signing import signature_header
from fmcsa_sandbox.app import create_app
from fmcsa_sandbox.settings import Settings

NOW = 1767225600.0
BODY = b'{"id":"0123456789abcdef0123456789abcdef","rule":"demo"}'


EVENT_ID = "0123456789abcdef0123456789abcdef"


def post(
    client: TestClient, *, secret: str = "sandbox-webhook-secret", at: int = int(NOW), sent_as: str = EVENT_ID
) -> int:
    headers = {
        "X-Fmcsa-Event-Id": sent_as,
        "X-Fmcsa-Timestamp": str(at),
        "X-Fmcsa-Signature": signature_header(secret, at, BODY, event_id=EVENT_ID),
        "Content-Type": "application/json",
    }
    return client.post("/_sandbox/webhooks/demo", content=BODY, headers=headers).status_code


def test_the_receiver_records_and_verifies_what_it_gets() -> None:
    app = create_app(Settings(), clock=lambda: NOW, monotonic=lambda: 0.0, rng=random.Random(1))
    with TestClient(app) as client:
        assert post(client) == 200
        assert post(client, secret="wrong") == 200
        assert post(client, at=int(NOW) - 301) == 200
        assert post(client, sent_as="f" * 32) == 200  # a replay under another event id: v2 covers it
        seen = client.get("/_sandbox/webhooks").json()
        assert seen["total"] == 4
        assert [r["signature_ok"] for r in seen["received"]] == [True, False, False, False]
        assert seen["received"][0]["body"]["rule"] == "demo"
        assert seen["per_event_id"] == {EVENT_ID: 3, "f" * 32: 1}


def test_the_receiver_answers_500_for_the_next_n_calls_then_200() -> None:
    app = create_app(Settings(), clock=lambda: NOW, monotonic=lambda: 0.0, rng=random.Random(1))
    with TestClient(app) as client:
        assert client.put("/_sandbox/webhooks/faults", json={"fail_next": 2}).status_code == 200
        assert [post(client) for _ in range(3)] == [500, 500, 200]
        assert client.put("/_sandbox/webhooks/faults", json={"fail_next": -1}).status_code == 400
        assert client.put("/_sandbox/webhooks/faults", json={"bogus": 1}).status_code == 400
        assert client.post("/_sandbox/webhooks/reset").status_code == 200
        assert client.get("/_sandbox/webhooks").json()["total"] == 0


def test_the_receiver_can_hang_for_the_next_call() -> None:
    app = create_app(Settings(), clock=lambda: NOW, monotonic=lambda: 0.0, rng=random.Random(1))
    with TestClient(app) as client:
        assert (
            client.put("/_sandbox/webhooks/faults", json={"hang_next": 1, "hang_s": 0.2}).status_code == 200
        )
        assert post(client) == 200
        assert client.get("/_sandbox/webhooks").json()["faults"]["hang_next"] == 0
