"""The sequential baseline's client process: one answer a line, in order, failures marked, then closed."""

from __future__ import annotations

import io
import json

from fmcsa_events.models import ErrorKind
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.sequential import READY, serve


class Client:
    def __init__(self) -> None:
        self.fetched: list[str] = []
        self.closed = False

    async def fetch(self, dot: str) -> object:
        self.fetched.append(dot)
        return Failure(ErrorKind.NOT_FOUND, retryable=False, message="no such carrier") if dot == "2" else dot

    async def aclose(self) -> None:
        self.closed = True


async def test_each_line_is_fetched_in_turn_and_answered_then_the_client_is_closed() -> None:
    client, out = Client(), io.StringIO()
    await serve(client, io.StringIO("1\n2\n\n3\n"), out)
    first, *answers = out.getvalue().splitlines()
    assert first == READY
    assert [(a["dot"], a["failed"]) for a in map(json.loads, answers)] == [
        ("1", False),
        ("2", True),
        ("3", False),
    ]
    assert client.fetched == ["1", "2", "3"]
    assert client.closed
