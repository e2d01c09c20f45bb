"""An open-loop load generator: requests leave on a fixed schedule, whatever the answers.

A closed-loop tool (each connection waits for its answer before the next request) slows
down with the server and so hides how late answers are ("coordinated omission"). Here
request i is due at start + i / rate; it goes out on an idle keep-alive connection of the
pool, or a new one when all are busy, and its latency is counted from the moment it was
due. Raw HTTP/1.1 on asyncio streams: no client library in the way.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RequestFactory = Callable[[int], tuple[str, str, dict[str, str], bytes]]  # method, path, ...


@dataclass
class Answer:
    index: int
    status: int
    latency: float  # seconds from the moment the request was due
    body: bytes


@dataclass
class PacedResult:
    offered_rate: float
    seconds: float
    answers: list[Answer] = field(default_factory=list)
    failures: int = 0  # connections that broke
    late_starts: int = 0  # requests sent more than 10 ms after they were due
    connections: int = 0

    @property
    def completed_per_second(self) -> float:
        return len(self.answers) / self.seconds

    def latencies(self, status: int | None = None) -> list[float]:
        return sorted(a.latency for a in self.answers if status is None or a.status == status)

    def json_bodies(self, status: int) -> list[tuple[Answer, Any]]:
        return [(a, json.loads(a.body)) for a in self.answers if a.status == status]


def percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def run_paced(
    host: str,
    port: int,
    make_request: RequestFactory,
    *,
    rate: float,
    seconds: float,
    max_connections: int = 1000,
) -> PacedResult:
    """Offer `rate` requests a second for `seconds`; wait for every answer."""
    result = PacedResult(offered_rate=rate, seconds=seconds)
    idle: deque[_Connection] = deque()
    opened = 0
    limit = asyncio.Semaphore(max_connections)

    def encode(index: int) -> bytes:
        method, path, headers, payload = make_request(index)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(payload)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload

    async def one(index: int, due: float, request: bytes) -> None:
        nonlocal opened
        async with limit:
            connection = idle.popleft() if idle else None
            try:
                if connection is None:
                    opened += 1
                    connection = _Connection(*await asyncio.open_connection(host, port))
                status, payload = await connection.exchange(request)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.failures += 1
                if connection is not None:
                    connection.close()
                return
            result.answers.append(Answer(index, status, time.perf_counter() - due, payload))
            idle.append(connection)

    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    tasks: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    for index in range(total):
        due = started + index / rate
        request = encode(index)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.010:
            result.late_starts += 1
        tasks.append(loop.create_task(one(index, due, request)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - started
    result.connections = opened
    while idle:
        idle.popleft().close()
    return result
