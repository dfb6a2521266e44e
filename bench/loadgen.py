"""A small HTTP/1.1 load generator, run as its own process so its CPU is not the server's.

`python -m bench.loadgen --url http://127.0.0.1:PORT --path '/api/companies/{dot}/status'
--dots 1000000:100000 --mode open --rate 500 --duration 20` prints one JSON line: requests, errors,
achieved rate and latency percentiles.

- `open`: a fixed arrival rate. Request i is due at start + i / rate whatever happened before, and its
  latency is counted from that due time (no coordinated omission: a stalled server shows as latency,
  not as fewer requests). Keep-alive connections are reused; a new one opens when all are busy.
- `closed`: `--concurrency` workers each send the next request as soon as the previous answered;
  the figure is the throughput.
A hand-written keep-alive client over asyncio streams: httpx would spend more CPU per request than
the server under test, on a box of two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.report import percentile


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.answered = 0  # requests answered on it: a kept-alive connection the server may have closed

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        """Send one GET and read its whole answer; returns the status code."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value.strip())
            elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        self.answered += 1
        return status

    def close(self) -> None:
        self.writer.close()


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    stale_reconnects: int = 0  # GETs sent again on a new connection: the kept one had been closed

    def summary(self, duration_s: float) -> dict[str, float | int | dict[str, int]]:
        ok = self.statuses.get(200, 0)
        out: dict[str, float | int | dict[str, int]] = {
            "requests": len(self.latencies_ms) + self.failures,
            "ok": ok,
            "errors": self.failures + sum(n for code, n in self.statuses.items() if code != 200),
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            "stale_reconnects": self.stale_reconnects,
            "duration_s": round(duration_s, 3),
            "rps": round(len(self.latencies_ms) / duration_s, 1) if duration_s > 0 else 0.0,
        }
        if self.latencies_ms:
            for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
                out[f"{name}_ms"] = round(percentile(self.latencies_ms, share), 3)
            out["max_ms"] = round(max(self.latencies_ms), 3)
            out["p99_service_ms"] = round(percentile(self.service_ms, 0.99), 3)
        return out


class Target:
    def __init__(self, url: str, path: str, dots: tuple[int, int], token: str | None, seed: int) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = path
        self.first, self.count = dots
        self.random = random.Random(seed)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._head = f"Host: {self.host}:{self.port}\r\n{auth}Accept: application/json\r\n\r\n"

    def next_request(self) -> bytes:
        dot = self.first + self.random.randrange(self.count) if self.count else self.first
        return f"GET {self.path.format(dot=dot)} HTTP/1.1\r\n{self._head}".encode()


async def run_open(
    target: Target, *, rate: float, duration_s: float, warmup_s: float, max_conns: int
) -> Tally:
    tally = Tally()
    idle: list[_Connection] = []
    opened = 0
    room = asyncio.Condition()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    total = int((warmup_s + duration_s) * rate)
    tasks: set[asyncio.Task[None]] = set()

    async def take() -> _Connection:
        nonlocal opened
        async with room:
            while not idle and opened >= max_conns:
                await room.wait()
            if idle:
                return idle.pop()
            opened += 1
        return await _Connection.open(target.host, target.port)

    async def give(conn: _Connection | None) -> None:
        nonlocal opened
        async with room:
            if conn is None:
                opened -= 1
            else:
                idle.append(conn)
            room.notify()

    async def one(due: float, counted: bool, raw: bytes) -> None:
        conn: _Connection | None = None
        try:
            conn = await take()
            sent = loop.time()
            try:
                status = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError):
                if not conn.answered:
                    raise
                # A kept-alive connection the server closed while it sat idle (uvicorn closes after 5 s):
                # like any HTTP client, send the GET once more on a new connection (its time counts).
                conn.close()
                conn = await _Connection.open(target.host, target.port)
                tally.stale_reconnects += counted
                status = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            if conn is not None:
                conn.close()
            await give(None)
            if counted:
                tally.failures += 1
            return
        done = loop.time()
        await give(conn)
        if counted:
            tally.latencies_ms.append((done - due) * 1000)
            tally.service_ms.append((done - sent) * 1000)
            tally.statuses[status] = tally.statuses.get(status, 0) + 1

    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due, i >= warmup_s * rate, target.next_request()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    for conn in idle:
        conn.close()
    return tally


async def run_closed(target: Target, *, concurrency: int, duration_s: float, warmup_s: float) -> Tally:
    tally = Tally()
    loop = asyncio.get_running_loop()
    begin = loop.time()
    counting_from = begin + warmup_s
    end = counting_from + duration_s

    async def worker() -> None:
        conn = await _Connection.open(target.host, target.port)
        try:
            while (now := loop.time()) < end:
                try:
                    status = await conn.request(target.next_request())
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    tally.failures += now >= counting_from
                    conn.close()
                    conn = await _Connection.open(target.host, target.port)
                    continue
                done = loop.time()
                if now >= counting_from:
                    tally.latencies_ms.append((done - now) * 1000)
                    tally.service_ms.append((done - now) * 1000)
                    tally.statuses[status] = tally.statuses.get(status, 0) + 1
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.loadgen", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", required=True, help="may hold {dot}")
    parser.add_argument("--dots", default="0:0", help="FIRST:COUNT, the DOT numbers {dot} is drawn from")
    parser.add_argument("--mode", choices=["open", "closed"], default="open")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-conns", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    first, _, count = args.dots.partition(":")
    target = Target(
        args.url, args.path, (int(first), int(count or 0)), os.environ.get("BENCH_TOKEN"), args.seed
    )
    if args.mode == "open":
        tally = asyncio.run(
            run_open(
                target,
                rate=args.rate,
                duration_s=args.duration,
                warmup_s=args.warmup,
                max_conns=args.max_conns,
            )
        )
    else:
        tally = asyncio.run(
            run_closed(target, concurrency=args.concurrency, duration_s=args.duration, warmup_s=args.warmup)
        )
    summary = tally.summary(args.duration)
    if args.mode == "open":
        summary["target_rate"] = args.rate
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
