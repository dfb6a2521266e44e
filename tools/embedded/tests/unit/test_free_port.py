import contextlib
import socket

import pytest

import fmcsa_embedded as embedded
from fmcsa_embedded import free_port


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


@pytest.mark.parametrize("stripe", ["0/2", "1/2", "2/3"])
def test_a_stripe_keeps_to_its_own_ports_and_each_one_binds(
    monkeypatch: pytest.MonkeyPatch, stripe: str
) -> None:
    # Linux hands bind(0) odd ports first: a stripe of even ports must not depend on the OS's pick
    index, count = (int(part) for part in stripe.split("/"))
    monkeypatch.setenv("FMCSA_PORT_STRIPE", stripe)
    ports = [free_port() for _ in range(20)]
    assert all(port % count == index for port in ports), ports
    assert all(20_000 <= port < 32_768 for port in ports), ports
    assert len(set(ports)) == len(ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_a_taken_port_of_the_stripe_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMCSA_PORT_STRIPE", "0/4000")  # four ports: 20000, 24000, 28000, 32000
    monkeypatch.setattr(embedded, "_HANDED_OUT", {})
    with contextlib.ExitStack() as taken:
        for port in (20_000, 24_000, 32_000):
            sock = taken.enter_context(socket.socket())
            sock.bind(("127.0.0.1", port))
            sock.listen()
        assert free_port() == 28_000
        with pytest.raises(RuntimeError, match="no free port in stripe 0/4000"):
            free_port()  # 28000 was just handed out and the rest are taken


@pytest.mark.parametrize("raw", ["3", "3/3", "-1/2", "a/b"])
def test_a_bad_stripe_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("FMCSA_PORT_STRIPE", raw)
    with pytest.raises(ValueError, match="FMCSA_PORT_STRIPE"):
        free_port()


def test_a_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
