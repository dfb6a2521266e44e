"""The AsyncAPI 3.0 document of the bus, generated from what runs: nothing in it is listed by hand.

- One channel, one message and one `send` operation per type in `fmcsa_events.models.EVENT_TYPES`; the
  channel's address is the subject `fmcsa_events.subjects.subject_for` publishes on
  (`subject_template`), with a parameter per subject token whose enum or pattern is the event field's
  own schema (so a new source key or event type appears without an edit here).
- The payload schemas are the events' pydantic JSON schemas (serialization mode, what is on the wire).
- The message headers are the envelope (`fmcsa_events.envelope`): `Nats-Msg-Id` and the `Fmcsa-*`
  headers, required as `Envelope.from_headers` requires them; `correlationId` points at the
  `Fmcsa-Correlation-Id` header.
- Each operation names who may publish it, read from the bus permissions (`fmcsa_events.permissions`).
- The servers are the configured NATS URLs without their user information.

Why not FastStream's generator (ARCHITECTURE.md, "API documents"): in FastStream 0.7 an AsyncAPI 3
channel has no parameters and a message no headers, and its `correlationId` always points at a
`correlation_id` header our envelope does not have.
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import urlsplit

from pydantic.json_schema import models_json_schema

from fmcsa_events.envelope import (
    CAUSATION_ID,
    CORRELATION_ID,
    MSG_ID,
    OCCURRED_AT,
    PRODUCER,
    REQUIRED_HEADERS,
    TYPE,
    VERSION,
)
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import EVENT_TYPES, Event
from fmcsa_events.permissions import ADMIN, USERS
from fmcsa_events.subjects import EVENTS_WILDCARD, SUBJECT_TOKENS, subject_template
from fmcsa_events.topology import EVENTS_STREAM

ASYNCAPI_VERSION = "3.0.0"
SCHEMAS = "#/components/schemas/"

HEADERS: dict[str, dict[str, Any]] = {
    MSG_ID: {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "description": "The event id. JetStream drops a republish of the same id inside the stream's "
        "duplicate window; ids are deterministic where a fact can be produced twice "
        "(`<source>:<dot>:<slot>` for a scheduled request, `outcome:<request_id>`, "
        "`attempt:<request_id>:<n>`, `change:<request_id>:<kind>:<subject>`, `request:<request_id>`), "
        "a uuid otherwise.",
    },
    TYPE: {"type": "string", "description": "The event type: which payload schema applies."},
    VERSION: {
        "type": "string",
        "pattern": "^[1-9][0-9]*$",
        "description": "The payload's version; a reader upcasts older versions (style.md 2.6).",
    },
    OCCURRED_AT: {
        "type": "string",
        "format": "date-time",
        "description": "When the fact happened (ISO 8601).",
    },
    CORRELATION_ID: {
        "type": "string",
        "maxLength": 200,
        "description": "The request id the event belongs to (a sync request's `request_id`, or its cause's).",
    },
    CAUSATION_ID: {
        "type": "string",
        "maxLength": 200,
        "description": "The event id (`Nats-Msg-Id`) of the event that led to this one.",
    },
    PRODUCER: {"type": "string", "description": "The service that published it (its NATS user)."},
}
"""The envelope headers, each a string on the wire."""


def asyncapi_document(*, nats_url: str, version: str) -> dict[str, Any]:
    """The AsyncAPI 3.0 document as a JSON-ready dict."""
    _, definitions = models_json_schema(
        [(cls, "serialization") for cls in EVENT_TYPES], ref_template=SCHEMAS + "{model}"
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    schemas["EnvelopeHeaders"] = {
        "type": "object",
        "description": "The envelope: what every event carries besides its facts, as NATS headers.",
        "required": list(REQUIRED_HEADERS),
        "properties": HEADERS,
    }
    servers = _servers(nats_url)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for cls in EVENT_TYPES:
        name = cls.__name__
        summary = _summary(cls)
        messages[name] = {
            "name": cls.TYPE,
            "title": name,
            "summary": summary,
            "contentType": "application/json",
            "headers": {
                "allOf": [
                    {"$ref": SCHEMAS + "EnvelopeHeaders"},
                    {
                        "type": "object",
                        "properties": {
                            TYPE: {"const": cls.TYPE},
                            VERSION: {"examples": [str(cls.VERSION)]},
                        },
                    },
                ]
            },
            "payload": {"$ref": SCHEMAS + name},
            "correlationId": {
                "description": "The request id the event belongs to, when it belongs to one.",
                "location": f"$message.header#/{CORRELATION_ID}",
            },
        }
        channel: dict[str, Any] = {
            "address": subject_template(cls.TYPE),
            "title": name,
            "summary": summary,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "servers": [{"$ref": f"#/servers/{server}"} for server in servers],
        }
        parameters = {token: _parameter(cls, token) for token in SUBJECT_TOKENS[cls.TYPE]}
        if parameters:
            channel["parameters"] = parameters
        channels[cls.TYPE] = channel
        authors = _authors(cls)
        operations[f"publish_{cls.TYPE}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cls.TYPE}"},
            "messages": [{"$ref": f"#/channels/{cls.TYPE}/messages/{name}"}],
            "summary": f"Publish {name}.",
            "description": f"Published by {', '.join(authors) if authors else 'nobody'} "
            f"(the bus permissions; `{ADMIN}` may publish anything).",
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "fmcsa-sync: events",
            "version": version,
            "description": f"Every event on the {EVENTS_STREAM} stream (NATS JetStream, subjects "
            f"`{EVENTS_WILDCARD}`): a JSON payload of facts and an envelope in NATS headers. "
            "Generated from the event classes, their subjects, the envelope and the bus permissions.",
        },
        "defaultContentType": "application/json",
        "servers": servers,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _summary(cls: type[Event]) -> str:
    return (cls.__doc__ or cls.__name__).strip().split("\n\n")[0].replace("\n", " ")


def _servers(nats_url: str) -> dict[str, Any]:
    """One server per configured URL, named `nats`, `nats-2`...; user and password are left out."""
    found: dict[str, Any] = {}
    for index, url in enumerate(u.strip() for u in nats_url.split(",") if u.strip()):
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        host = parts.hostname or "localhost"
        found["nats" if index == 0 else f"nats-{index + 1}"] = {
            "host": f"{host}:{parts.port or 4222}",
            "protocol": parts.scheme or "nats",
            "description": f"NATS with JetStream; the events are on the {EVENTS_STREAM} stream.",
        }
    return found


def _parameter(cls: type[Event], token: str) -> dict[str, Any]:
    """A channel parameter for a subject token: the payload field it comes from, its enum or pattern."""
    schema = cls.model_json_schema(mode="serialization")
    field = schema["properties"][token]
    if "$ref" in field:
        field = {**schema.get("$defs", {})[field["$ref"].rsplit("/", 1)[-1]], **field}
    described = field.get("description") or f"The event's `{token}`."
    parameter: dict[str, Any] = {"location": f"$message.payload#/{token}"}
    if "enum" in field:
        parameter["enum"] = [str(value) for value in field["enum"]]
        parameter["description"] = described
    else:
        pattern = field.get("pattern")
        parameter["description"] = f"{described} Matches `{pattern}`." if pattern else described
    return parameter


def _authors(cls: type[Event]) -> list[str]:
    """The service users whose publish permissions cover some subject of this event type."""
    samples = _sample_subjects(cls.TYPE)
    return [
        user
        for user, rights in USERS.items()
        if user != ADMIN and any(_matches(p, s) for p in rights.publish for s in samples)
    ]


def _sample_subjects(event_type: str) -> list[str]:
    """The type's subjects, one per source key where a source is a token, with a sample DOT and name."""
    template = subject_template(event_type)
    subjects = (
        [template.replace("{source}", s.value) for s in SourceKey] if "{source}" in template else [template]
    )
    return [s.replace("{dot}", "1").replace("{name}", "rule") for s in subjects]


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    want, got = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(got) > index
        if index >= len(got) or (token != "*" and token != got[index]):
            return False
    return len(want) == len(got)


def main(argv: list[str] | None = None) -> None:
    """Print the document (for the AsyncAPI CLI: `python -m fmcsa_gateway.asyncapi > asyncapi.json`)."""
    parser = argparse.ArgumentParser(prog="python -m fmcsa_gateway.asyncapi", description=main.__doc__)
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222", help="the servers to list")
    args = parser.parse_args(argv)
    print(json.dumps(asyncapi_document(nats_url=args.nats_url, version="0.0.0"), indent=2))


if __name__ == "__main__":
    main()
