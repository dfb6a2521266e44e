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

    monkeypatch.delenv("FMCSA_PORT_STRIPE", raising=False)
    monkeypatch.setattr(embedded, "_HANDED_OUT", {})
    monkeypatch.setattr(embedded.socket, "socket", OneDuplicatePort)
    assert [free_port(), free_port()] == [41001, 41002]


def test_a_stripe_keeps_to_its_own_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    offered = iter(range(41000, 41100))

    class CountingUp(socket.socket):
        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", next(offered))

    monkeypatch.setenv("FMCSA_PORT_STRIPE", "2/3")
    monkeypatch.setattr(embedded, "_HANDED_OUT", {})
    monkeypatch.setattr(embedded.socket, "socket", CountingUp)
    assert [free_port() for _ in range(4)] == [41000, 41003, 41006, 41009]  # 41000 % 3 == 2


@pytest.mark.parametrize("raw", ["3", "3/3", "-1/2", "a/b"])
def test_a_bad_stripe_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("FMCSA_PORT_STRIPE", raw)
    with pytest.raises(ValueError, match="FMCSA_PORT_STRIPE"):
        free_port()


def test_a_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
