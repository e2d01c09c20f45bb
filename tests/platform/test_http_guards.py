"""Every service's HTTP guards, on intake run as a real process under uvicorn: body limits
(refused before reading, counted while streaming, stalled uploads cut off), rate limits
shared by replicas and blind to forged X-Forwarded-For, security headers, local docs,
and 503 + Retry-After when the database is unreachable."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devtools.pytest_plugin import DatabaseFactory
from devtools.testing import (
    ADMIN,
    CLERK,
    ServiceProcess,
    consultation_payload,
    service_environment,
    submission_payload,
    unique_prefix,
)

pytestmark = pytest.mark.integration


class Intakes:
    def __init__(self, factory: Any, kafka: str, logs: Path) -> None:
        self.databases: DatabaseFactory = factory
        self.kafka = kafka
        self.logs = logs
        self.processes: list[ServiceProcess] = []

    def start(
        self, database_url: str | None = None, *, service: str = "intake", **settings: object
    ) -> ServiceProcess:
        environment = service_environment(
            database_url=database_url or self.databases(service),
            kafka=self.kafka,
            prefix=unique_prefix("guards"),
            **settings,
        )
        process = ServiceProcess(
            service, environment, self.logs / f"{service}-{len(self.processes)}.log"
        ).start()
        self.processes.append(process)
        return process.ready()


@pytest.fixture
def intakes(
    kafka_bootstrap_servers: str, postgres_admin_dsn: str, tmp_path: Path
) -> Iterator[Intakes]:
    factory = DatabaseFactory(postgres_admin_dsn)
    started = Intakes(factory, kafka_bootstrap_servers, tmp_path)
    try:
        yield started
    finally:
        for process in started.processes:
            process.stop()
        factory.drop_all()


def open_consultation(intake: ServiceProcess) -> str:
    response = httpx.post(
        f"{intake.url}/v1/consultations", json=consultation_payload(), headers=ADMIN, timeout=10
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def raw_request(port: int, head: bytes, body_parts: list[bytes], pause: float = 0) -> bytes:
    """Send a request by hand (headers, then body parts with pauses); return the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        for part in body_parts:
            await asyncio.sleep(pause)
            writer.write(part)
            await writer.drain()
        head_part = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
        length = re.search(rb"content-length: *(\d+)", head_part, re.IGNORECASE)
        body = await reader.readexactly(int(length.group(1))) if length else b""
        return head_part + body
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_a_declared_oversized_body_is_refused_before_it_is_sent(
    intakes: Intakes,
) -> None:
    intake = intakes.start()
    path = f"/v1/consultations/{open_consultation(intake)}/submissions"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 20000000\r\n\r\n"
    ).encode()
    # Not a byte of the 20 MB body is sent: the answer comes from the header alone.
    answer = await raw_request(intake.port, head, [])
    assert status_of(answer) == 413
    assert b'"error":"payload_too_large"' in answer.replace(b" ", b"")


async def test_a_route_declaring_a_larger_limit_accepts_bodies_above_the_default(
    intakes: Intakes,
) -> None:
    intake = intakes.start(rate_limit_per_minute=0)
    path = f"/v1/consultations/{open_consultation(intake)}/submissions"
    # 10,000 Polish characters, mostly two bytes each: ~18 KB of JSON, over the 16 KiB
    # default, within the submissions' own limit.
    text = ("Zażółć gęślą jaźń. " * 600)[:10_000].replace(" ", "ż")
    body = json.dumps(submission_payload(body=text), ensure_ascii=False).encode()
    assert len(body) > 16384
    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as client:
        response = await client.post(
            path, content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 202, response.text


async def test_a_streamed_body_is_counted_and_cut_at_the_limit(intakes: Intakes) -> None:
    intake = intakes.start()
    path = f"/v1/consultations/{open_consultation(intake)}/submissions"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"x" * 16384
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8)] + [b"0\r\n\r\n"]
    answer = await raw_request(intake.port, head, parts)
    assert status_of(answer) == 413


async def test_a_stalled_upload_is_cut_off(intakes: Intakes) -> None:
    intake = intakes.start(http_body_timeout_seconds=1)
    path = f"/v1/consultations/{open_consultation(intake)}/submissions"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{"
    ).encode()
    answer = await raw_request(intake.port, head, [])  # 99 bytes never come
    assert status_of(answer) == 408


async def fresh_minute() -> None:
    """Counts are kept per calendar minute: start a burst early in one, so the requests a
    test expects refused are not counted in the next minute (not a timing assertion)."""
    if datetime.now(UTC).second > 30:
        await asyncio.sleep(61 - datetime.now(UTC).second)


async def test_public_writes_are_rate_limited_across_replicas(
    intakes: Intakes, postgres_admin_dsn: str
) -> None:
    database = intakes.databases("intake")
    first = intakes.start(database, rate_limit_per_minute=4)
    second = intakes.start(database, rate_limit_per_minute=4)
    await fresh_minute()
    path = f"/v1/consultations/{open_consultation(first)}/submissions"
    statuses = []
    async with httpx.AsyncClient(timeout=10) as client:
        for index in range(6):  # alternate replicas: one shared count
            replica = (first, second)[index % 2]
            forged = {"X-Forwarded-For": f"10.0.0.{index}"}  # not a trusted proxy: ignored
            response = await client.post(
                replica.url + path, json=submission_payload(), headers=forged
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["error"] == "too_many_requests"
        assert statuses == [202, 202, 202, 202, 429, 429]
        clerk = await client.post(
            first.url + path, json=submission_payload(channel="phone"), headers=CLERK
        )
        assert clerk.status_code == 202  # staff are not limited


async def test_token_spending_and_sign_in_links_are_rate_limited(intakes: Intakes) -> None:
    """A guesser of emailed tokens, or a flood of sign-in emails, meets the same limit on
    groups as submissions do on intake (one mechanism, in `shared/`)."""
    groups = intakes.start(service="groups", rate_limit_per_minute=2)
    await fresh_minute()
    async with httpx.AsyncClient(base_url=groups.url, timeout=10) as client:
        unknown = {"token": "g" * 43}  # the shape of a real link token
        spent = [(await client.post("/v1/sessions", json=unknown)).status_code for _ in range(2)]
        assert spent == [422, 422]  # unknown token
        # The client's budget is spent: every public write of the service refuses it now.
        for path, payload in (
            ("/v1/sessions", unknown),
            ("/v1/volunteers/confirm", unknown),
            ("/v1/volunteers/withdraw", unknown),
            ("/v1/access-links", {"email": "someone@example.org"}),
        ):
            refused = await client.post(path, json=payload)
            assert refused.status_code == 429, path
            assert int(refused.headers["Retry-After"]) >= 1


async def test_a_trusted_proxy_names_the_client(intakes: Intakes) -> None:
    intake = intakes.start(rate_limit_per_minute=1, trusted_proxies='["127.0.0.1"]')
    await fresh_minute()
    path = f"/v1/consultations/{open_consultation(intake)}/submissions"
    async with httpx.AsyncClient(timeout=10) as client:
        for client_address in ("198.51.100.1", "198.51.100.2"):
            response = await client.post(
                intake.url + path,
                json=submission_payload(),
                headers={"X-Forwarded-For": client_address, "X-Forwarded-Proto": "https"},
            )
            assert response.status_code == 202  # two clients, one request each
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        again = await client.post(
            intake.url + path,
            json=submission_payload(),
            headers={"X-Forwarded-For": "198.51.100.1"},
        )
        assert again.status_code == 429


async def test_every_answer_carries_security_headers_and_docs_are_local(
    intakes: Intakes,
) -> None:
    intake = intakes.start()
    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as client:
        for response in (
            await client.get("/health/live"),
            await client.get("/v1/consultations/not-a-uuid"),
            await client.post("/v1/consultations", json={}, headers=ADMIN),
        ):
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert "Strict-Transport-Security" not in response.headers  # plain HTTP here
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "'unsafe-inline'" not in docs.headers["Content-Security-Policy"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        assert assets and all(asset.startswith("/docs/") for asset in assets), assets
        for asset in assets:
            assert (await client.get(asset)).status_code == 200


async def test_docs_can_be_switched_off(intakes: Intakes) -> None:
    intake = intakes.start(http_docs="false")
    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as client:
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 200


async def test_an_unreachable_database_is_503_with_retry_after(
    intakes: Intakes, postgres_admin_dsn: str
) -> None:
    database = intakes.databases("intake")
    intake = intakes.start(database)
    name = database.rsplit("/", 1)[1]
    admin = await asyncpg.connect(postgres_admin_dsn)
    try:
        # The database refuses every connection and loses the ones it had.
        await admin.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT 0')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        async with httpx.AsyncClient(base_url=intake.url, timeout=30) as client:
            listed = await client.get("/v1/consultations")
            assert listed.status_code == 503, listed.text
            assert listed.headers["Retry-After"] == "5"
            assert listed.json()["error"] == "unavailable"
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            body = json.dumps(ready.json())
            assert "Error" not in body and "asyncpg" not in body  # no internals
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT -1')
        await admin.close()
