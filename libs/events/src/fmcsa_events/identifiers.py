"""The identifiers every event and subject is built from: DOT numbers and source keys.

A DOT number is 1 to 8 ASCII digits and nothing else; it is kept in canonical form (no leading
zeros), because Socrata stores `123`, never `00000123`, and an equality filter would miss a padded
value. Only a value that passed `parse_dot` can reach a subject or an upstream query.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator, StringConstraints, WithJsonSchema

# `\d` would also match non-ASCII digits and `$` would match before a trailing newline.
_DOT_PATTERN = re.compile(r"[0-9]{1,8}")


class InvalidDotNumber(ValueError):
    """A value that is not 1 to 8 ASCII digits was offered as a DOT number."""


def parse_dot(value: object) -> str:
    """Return the canonical DOT number (`"00123"` -> `"123"`), or raise `InvalidDotNumber`.

    Accepts a str of 1-8 ASCII digits or a non-negative int below 10**8; refuses everything else,
    including whitespace, signs, `0` and `00000000` (no carrier has DOT 0).
    """
    if isinstance(value, bool):
        raise InvalidDotNumber("a DOT number is 1 to 8 digits, not a boolean")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or _DOT_PATTERN.fullmatch(value) is None:
        shown = repr(value)[:40]
        raise InvalidDotNumber(f"a DOT number is 1 to 8 digits, got {shown}")
    canonical = str(int(value))
    if canonical == "0":
        raise InvalidDotNumber("DOT number 0 does not exist")
    return canonical


def _validate_dot(value: object) -> str:
    try:
        return parse_dot(value)
    except InvalidDotNumber as error:
        raise ValueError(str(error)) from None


DOT_PATTERN = r"^[1-9][0-9]{0,7}$"
"""A canonical DOT number: what every event carries and every schema documents (`parse_dot` also takes
leading zeros, which it drops)."""

DotNumber = Annotated[
    str,
    BeforeValidator(_validate_dot),
    StringConstraints(pattern=DOT_PATTERN),
    WithJsonSchema({"type": "string", "pattern": DOT_PATTERN}),
]
"""A validated, canonical DOT number; use it as the type of every DOT field. Its JSON schema carries the
pattern for input too (a before-validator would otherwise hide it)."""


class SourceKey(StrEnum):
    """The FMCSA sources, one service each."""

    CSA = "csa"
    VIOLATIONS = "violations"
    INSPECTIONS = "inspections"
    AUTHORITY = "authority"


class Basic(StrEnum):
    """The BASIC a violation counts toward, as the violations source keys it from the dataset's
    `basic_desc` label and as its summary rows (and so the carrier record and its API) name it.
    """

    UNSAFE_DRIVING = "unsafe_driving"
    HOS_COMPLIANCE = "hos_compliance"
    DRIVER_FITNESS = "driver_fitness"
    DRUGS_ALCOHOL = "drugs_alcohol"
    VEHICLE_MAINTENANCE = "vehicle_maintenance"
    HAZMAT_COMPLIANCE = "hazmat_compliance"
    CRASH_INDICATOR = "crash_indicator"


class InvalidSource(ValueError):
    """A value that is not one of the source keys was offered as a source."""


def parse_source(value: object) -> SourceKey:
    """Return the `SourceKey` for `value`, or raise `InvalidSource` naming the allowed keys."""
    try:
        return SourceKey(str(value)) if isinstance(value, str) else SourceKey(value)  # type: ignore[arg-type]  # refused below
    except ValueError:
        allowed = ", ".join(s.value for s in SourceKey)
        raise InvalidSource(f"source must be one of {allowed}, got {repr(value)[:40]}") from None
