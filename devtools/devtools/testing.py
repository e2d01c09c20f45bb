"""Helpers for tests on the real broker: wait for an outcome, read a topic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord

DEADLINE_SECONDS = 60.0

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


async def wait_for(
    check: Callable[[], Awaitable[bool]], what: str, *, deadline_s: float = DEADLINE_SECONDS
) -> None:
    """Poll until `check` holds; fail saying what never happened (no timing assertions)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {deadline_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


async def read_topic(
    kafka: str,
    topic: str,
    *,
    until: Callable[[list[Record]], bool],
    keep: Callable[[Record], bool] = lambda _: True,
    deadline_s: float = DEADLINE_SECONDS,
) -> list[Record]:
    """Read `topic` from the beginning, keeping matching records, until `until` holds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    kept: list[Record] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        while not until(kept):
            if loop.time() > deadline:
                raise AssertionError(f"{topic}: condition not met; kept {len(kept)} records")
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                kept.extend(record for record in records if keep(record))
    finally:
        await consumer.stop()
    return kept


def count(expected: int) -> Callable[[list[Record]], bool]:
    return lambda records: len(records) >= expected


def body(record: Record) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(record.value or b"null")
    return value


def headers(record: Record) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}
