from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from fmcsa_sandbox.__main__ import _listen, _remove_state, _write_state


def test_port_zero_binds_a_free_tcp_port_with_nagle_off_for_accepted_sockets() -> None:
    sock = _listen("127.0.0.1", 0)
    try:
        assert sock.getsockname()[1] > 0
        assert sock.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY only on sockets that say TCP
    finally:
        sock.close()


def test_the_state_file_names_the_url_and_pid_and_only_its_writer_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "sandbox.json"
    _write_state(path, "http://127.0.0.1:1234")
    assert json.loads(path.read_text()) == {"url": "http://127.0.0.1:1234", "pid": os.getpid()}
    path.write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": os.getpid() + 1}))
    _remove_state(path)
    assert path.exists()  # another sandbox's file
    _write_state(path, "http://127.0.0.1:1234")
    _remove_state(path)
    assert not path.exists()
    _remove_state(path)  # already gone: nothing to do
