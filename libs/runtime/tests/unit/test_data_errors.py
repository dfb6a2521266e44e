"""Which database errors are data errors (the same statement fails again on any connection: the
consumers isolate and dead-letter that event) and which are store trouble (retried, nothing is
dead-lettered: an outage must never turn good events into dead letters)."""

from __future__ import annotations

import sqlite3

import pytest

from fmcsa_runtime.database import data_error_reason, is_data_error


class DriverError(Exception):
    """A driver's error as asyncpg raises it: a message and its SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class Wrapped(Exception):
    """SQLAlchemy's wrapper: the statement and parameters in the text, the driver's error as `orig`."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__(
            f"({type(orig).__name__}) {orig}\n[SQL: INSERT INTO t VALUES ($1)]\n[parameters: ('x',)]"
        )
        self.orig = orig


@pytest.mark.parametrize(
    "error",
    [
        DriverError('invalid byte sequence for encoding "UTF8": 0x00', "22021"),
        DriverError(
            "invalid input for query argument $2: 18446744073709551616 (value out of int32 range)", "22000"
        ),
        DriverError("value too long for type character varying(16)", "22001"),
        DriverError('null value in column "dot" violates not-null constraint', "23502"),
        OverflowError("Python int too large to convert to SQLite INTEGER"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        sqlite3.IntegrityError("NOT NULL constraint failed: t.a"),
    ],
)
def test_a_refused_value_is_a_data_error_bare_or_wrapped(error: Exception) -> None:
    assert is_data_error(error)
    assert is_data_error(Wrapped(error))
    reason = data_error_reason(Wrapped(error))
    assert "INSERT" not in reason
    assert "parameters" not in reason


@pytest.mark.parametrize(
    "error",
    [
        DriverError("terminating connection due to administrator command", "57P01"),
        DriverError("connection failure", "08006"),
        DriverError("canceling statement due to lock timeout", "55P03"),
        DriverError("deadlock detected", "40P01"),
        DriverError("relation does not exist", "42P01"),
        sqlite3.OperationalError("database is locked"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        RuntimeError("event 7 is refused even as poison"),
    ],
)
def test_store_trouble_is_not_a_data_error(error: Exception) -> None:
    assert not is_data_error(error)
    assert not is_data_error(Wrapped(error))
