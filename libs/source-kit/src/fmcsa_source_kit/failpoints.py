"""Failpoints: named places where a test can make a process crash (SIGKILL itself), once.

Off unless `FMCSA_FAILPOINTS` names them (comma-separated). Each fires once per
`FMCSA_FAILPOINTS_DIR` (a marker file records it), so the restarted process runs normally and the test
sees the recovery. This is how the tests kill a source service exactly between publishing an outcome
and acking its request; production never sets these variables.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def failpoint(name: str) -> None:
    """SIGKILL this process if the failpoint `name` is armed and has not fired yet."""
    armed = os.environ.get("FMCSA_FAILPOINTS")
    if not armed or name not in {n.strip() for n in armed.split(",")}:
        return
    folder = Path(os.environ.get("FMCSA_FAILPOINTS_DIR", ".fmcsa-data/failpoints"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        (folder / f"{name}.fired").open("x").close()
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
