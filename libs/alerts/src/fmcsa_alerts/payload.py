"""The webhook's JSON body and the ids that make it the same message on every attempt.

The body holds the change (with its before and after), the rule's name, and links to the company in
the API. It is built once per delivery and stored, so every retry, resend and post-crash duplicate
sends the same bytes under the same `X-Fmcsa-Event-Id`: the receiver de-duplicates on that id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fmcsa_events.models import CarrierDataChanged


def destination_id(url: str) -> str:
    """A short stable id of a destination (its URL)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def delivery_id(change_event_id: str, rule: str, url: str) -> str:
    """One delivery per (change, rule, destination): 32 hex characters, the webhook's event id."""
    return hashlib.sha256(f"{change_event_id}\n{rule}\n{url}".encode()).hexdigest()[:32]


def webhook_body(
    *, delivery: str, change_event_id: str, change: CarrierDataChanged, rule: str, api_url: str
) -> bytes:
    """The JSON body of one delivery (keys sorted, compact): deterministic for the same inputs."""
    api = api_url.rstrip("/")
    document: dict[str, Any] = {
        "id": delivery,
        "type": change.TYPE,
        "rule": rule,
        "change_event_id": change_event_id,
        "change": json.loads(change.model_dump_json()),
        "links": {
            "company": f"{api}/api/companies/{change.dot}/status",
            "sync_log": f"{api}/api/sync/log?dot={change.dot}",
        },
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
