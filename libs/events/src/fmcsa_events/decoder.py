"""Turn raw bus messages into typed events, or into a typed reason why not (the dead-letter path).

Never raises for bad input: an unknown type, a version newer than this code knows, a payload that is
not JSON or that fails validation each become an `Undecodable` with a reason and a short detail.
Older versions are upcast step by step with the class's `upcast_vN_vN+1` functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from fmcsa_events.envelope import Envelope, MissingHeader
from fmcsa_events.models import EVENT_BY_TYPE, Event

MAX_PAYLOAD_BYTES = 256 * 1024
"""Payloads above this are refused before parsing (events are small; a huge one is poison)."""


class UndecodableReason(StrEnum):
    MISSING_HEADER = "missing_header"
    BAD_ENVELOPE = "bad_envelope"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_VERSION = "unknown_version"
    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Decoded:
    envelope: Envelope
    event: Event


@dataclass(frozen=True, slots=True)
class Undecodable:
    reason: UndecodableReason
    detail: str


def decode(headers: Mapping[str, str] | None, data: bytes) -> Decoded | Undecodable:
    """Decode one message; see the module docstring for what becomes `Undecodable`."""
    try:
        envelope = Envelope.from_headers(headers)
    except MissingHeader as error:
        return Undecodable(UndecodableReason.MISSING_HEADER, str(error))
    except ValidationError as error:
        return Undecodable(UndecodableReason.BAD_ENVELOPE, _short(error))
    cls = EVENT_BY_TYPE.get(envelope.type)
    if cls is None:
        return Undecodable(UndecodableReason.UNKNOWN_TYPE, f"unknown event type {envelope.type[:60]!r}")
    if envelope.version > cls.VERSION:
        return Undecodable(
            UndecodableReason.UNKNOWN_VERSION,
            f"{cls.TYPE} version {envelope.version} is newer than the known {cls.VERSION}",
        )
    if len(data) > MAX_PAYLOAD_BYTES:
        return Undecodable(UndecodableReason.TOO_LARGE, f"payload of {len(data)} bytes")
    try:
        # what `json.loads(data, parse_constant=_refuse_constant)` does, without a new decoder per call
        payload: Any = _JSON.decode(data.decode(_encoding(data), "surrogatepass"))
    except (ValueError, RecursionError) as error:
        # not UTF-8, not JSON, NaN/Infinity (no database's JSON takes them), an integer too long for
        # int(), or nesting deeper than the parser's recursion limit: all poison, none may escape
        return Undecodable(UndecodableReason.NOT_JSON, str(error)[:200])
    if not isinstance(payload, dict):
        return Undecodable(UndecodableReason.INVALID, "payload is not a JSON object")
    try:
        if envelope.version < cls.VERSION:
            upcasters = cls.upcasters()
            for version in range(envelope.version, cls.VERSION):
                upcaster = upcasters.get(version)
                if upcaster is None:
                    return Undecodable(UndecodableReason.UNKNOWN_VERSION, f"no upcaster from v{version}")
                payload = upcaster(payload)
        event = cls.model_validate(payload)
    except ValidationError as error:
        return Undecodable(UndecodableReason.INVALID, _short(error))
    except (KeyError, TypeError, ValueError) as error:  # an upcaster met a payload it cannot read
        return Undecodable(UndecodableReason.INVALID, f"upcast failed: {error!r}"[:200])
    return Decoded(envelope, event)


def _refuse_constant(name: str) -> Any:
    """`json.loads` accepts `NaN`, `Infinity` and `-Infinity`; they are not JSON (RFC 8259)."""
    raise ValueError(f"{name} is not a JSON value")


def _encoding(data: bytes) -> str:
    """`json.detect_encoding`, answered at once for an object in UTF-8 (no BOM, no NUL after `{`)."""
    return "utf-8" if data[:1] == b"{" and data[1:2] != b"\x00" else json.detect_encoding(data)


_JSON = json.JSONDecoder(parse_constant=_refuse_constant)
"""One decoder for every payload (`json.loads` with a keyword builds a new one per call: 9% of decoding)."""


def encode(event: Event) -> bytes:
    """The payload of an event: its facts as compact JSON."""
    return event.model_dump_json().encode()


def _short(error: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5]]
    return "; ".join(parts)[:500]
