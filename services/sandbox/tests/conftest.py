"""Shared by the sandbox's tests: the recursive shape comparison behind the drift test, and the flat view
of served bodies behind the scripted-DOT tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

# Keys whose value is a value or null, carrier by carrier (so the example's one state is not a rule).
NULLABLE = frozenset(
    {
        "dbaName", "oosDate", "reviewDate", "reviewType", "safetyRating", "safetyRatingDate",
        "safetyReviewDate", "safetyReviewType", "out_of_service_date", "mc_mx_ff_numbers", "safety_rating",
        "safety_rating_date", "safety_review_date", "safety_type",
    }
)  # fmt: skip
# Keys Socrata leaves out of a row when the value is null.
OPTIONAL = frozenset({"section_desc", "group_desc", "cancl_effective_date"})
# Keys the sandbox serves beyond the recorded examples: `/authority`'s pending-grant and pending-revocation
# flags, which the authority contract names but no recording shows (their existence and meaning unverified).
UNRECORDED = frozenset(
    f"{kind}Authority{flag}Status"
    for kind in ("common", "contract", "broker")
    for flag in ("Pending", "Revocation")
)

_FORMATS = (
    ("timestamp", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")),
    ("iso-date", re.compile(r"\d{4}-\d\d-\d\d")),
    ("mdy-date", re.compile(r"\d\d/\d\d/\d{4}")),
    ("dmy-mon-date", re.compile(r"\d\d-(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)-\d\d")),
    ("percent", re.compile(r"\d+(\.\d+)?%")),
    ("number", re.compile(r"-?\d+(\.\d+)?")),
)


def string_format(text: str) -> str | None:
    """The structured format a string is in, or None for free text."""
    for name, pattern in _FORMATS:
        if pattern.fullmatch(text):
            return name
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def shape_mismatches(example: Any, actual: Any, path: str = "$", key: str = "") -> list[str]:
    """Where `actual` departs from the example's shape: key sets, value kinds, string formats, recursively.

    Numbers are one kind (int or float); a key of NULLABLE may be null on either side; a key of OPTIONAL
    may be missing from `actual`, one of UNRECORDED may be extra in it; each element of an array must match
    one of the example's elements.
    """
    expected_kind, actual_kind = _kind(example), _kind(actual)
    if expected_kind != actual_kind:
        if key in NULLABLE and "null" in (expected_kind, actual_kind):
            return []
        return [f"{path}: {actual_kind} where the example has {expected_kind} ({example!r} vs {actual!r})"]
    if isinstance(example, dict):
        problems = []
        missing = set(example) - set(actual) - OPTIONAL
        extra = set(actual) - set(example) - UNRECORDED
        if missing or extra:
            problems.append(f"{path}: missing keys {sorted(missing)}, extra keys {sorted(extra)}")
        for name in example.keys() & actual.keys():
            problems += shape_mismatches(example[name], actual[name], f"{path}.{name}", name)
        return problems
    if isinstance(example, list):
        if not example:
            return [] if not actual else [f"{path}: {len(actual)} elements where the example has none"]
        if not actual:
            return [f"{path}: empty where the example has elements"]
        problems = []
        for i, item in enumerate(actual):
            tries = [shape_mismatches(model, item, f"{path}[{i}]", key) for model in example]
            problems += min(tries, key=len)
        return problems
    if isinstance(example, str):
        wanted = string_format(example)
        if wanted is not None and string_format(actual) != wanted:
            return [f"{path}: {actual!r} is not in the example's {wanted} format ({example!r})"]
    return []


@pytest.fixture
def same_shape() -> Callable[[Any, Any], list[str]]:
    return shape_mismatches


MISSING = "<missing>"
"""Where a flat view lacks a path: the before or after of a field that appears or disappears."""


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """A JSON value as `{"a.b.0.c": leaf}`; an empty list or object is a leaf of its own."""
    if isinstance(value, dict) and value:
        items: Any = value.items()
    elif isinstance(value, list) and value:
        items = enumerate(value)
    else:
        return {path: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat |= flatten(item, f"{path}.{key}" if path else str(key))
    return flat


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Every path whose value differs between two flat views: `{path: (before, after)}`."""
    return {
        path: (before.get(path, MISSING), after.get(path, MISSING))
        for path in before.keys() | after.keys()
        if before.get(path, MISSING) != after.get(path, MISSING)
    }


class Flat:
    """`flatten` and `changed` for tests (a fixture, as test modules cannot import a conftest)."""

    missing = MISSING
    flatten = staticmethod(flatten)
    changed = staticmethod(changed)


@pytest.fixture
def flat() -> Flat:
    return Flat()
