"""`python -m <source package>.sequential`: one source's client, driven one carrier at a time.

The baseline the benchmark compares the pipeline with (`bench/pipeline.py`, `speedup_vs_sequential`) is
the seeds' loop: one company at a time, one source after another, each call waiting for the one before.
The bench imports no service, so each source's client lives in its own process: built once from the
source's settings (the environment), it prints `ready`, then fetches each DOT read from a line of stdin
and answers one JSON line, `{"dot", "failed", "seconds"}`, before it reads the next; at the end of input
it closes the client and exits. The bench writes each company to the four processes in turn, so the
loop is the seeds' one, with the same clients kept for the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TextIO

from fmcsa_runtime.logging import configure_logging
from fmcsa_runtime.settings import ServiceSettings
from fmcsa_source_kit.failures import Failure

READY = "ready"


class SourceClient(Protocol):
    async def fetch(self, dot: str) -> object: ...

    async def aclose(self) -> None: ...


async def serve(client: SourceClient, lines: TextIO, out: TextIO) -> None:
    """Fetch the DOT of each line of `lines` in turn and answer each on `out`; then close the client."""
    try:
        print(READY, file=out, flush=True)
        while line := await asyncio.to_thread(lines.readline):
            dot = line.strip()
            if not dot:
                continue
            began = time.monotonic()
            result = await client.fetch(dot)
            answer = {"dot": dot, "failed": isinstance(result, Failure), "seconds": time.monotonic() - began}
            print(json.dumps(answer), file=out, flush=True)
    finally:
        await client.aclose()


def main(
    source: str,
    settings: ServiceSettings,
    make_client: Callable[[], SourceClient],
    argv: Sequence[str] | None = None,
) -> None:
    """Answer `--help`, log to stderr (stdout carries the answers), then serve stdin with the client."""
    argparse.ArgumentParser(
        prog=f"python -m fmcsa_source_{source}.sequential",
        description=f"The {source} client fetching the DOT of each line of stdin, one after another, "
        "answering one JSON line each (the benchmark's sequential baseline).",
    ).parse_args(argv)
    configure_logging(service=source, level=settings.log_level, json=settings.log_json)
    asyncio.run(serve(make_client(), sys.stdin, sys.stdout))
