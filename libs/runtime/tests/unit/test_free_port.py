import socket

import pytest

from fmcsa_runtime import embedded
from fmcsa_runtime.embedded import free_port


def test_ports_picked_in_a_row_differ_even_when_the_os_offers_the_same_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offered = iter([41001, 41001, 41001, 41002])

    class OneDuplicatePort(socket.socket):
        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", next(offered))

    monkeypatch.setattr(embedded, "_HANDED_OUT", {})
    monkeypatch.setattr(embedded.socket, "socket", OneDuplicatePort)
    assert [free_port(), free_port()] == [41001, 41002]


def test_a_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
