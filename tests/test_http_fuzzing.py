"""Property-based fuzzing of every HTTP endpoint of every service, from its OpenAPI document.

Each service runs as a real process (`python -m <service>`) on the real broker and server.
Schemathesis generates requests from the service's own `/openapi.json` — valid ones and,
on purpose, invalid ones — and checks every answer: no 5xx, no status code the document
does not list, answers that match their documented schema and content type, and no
request that violates the schema accepted. Requests carry the admin token, so the
protected code paths are reached too; for operations on a consultation, half the cases
name one that exists, so the rules behind the 404 run as well.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.pytest_plugin import DatabaseFactory
from devtools.testing import (
    ADMIN,
    ServiceProcess,
    consultation_payload,
    service_environment,
    unique_prefix,
)
from shared.platform.asyncapi import SERVICES

pytestmark = pytest.mark.integration

# Examples per operation and generation mode: deterministic (derandomized) and bounded so
# the suite's time stays predictable; raise it locally to fuzz harder.
MAX_EXAMPLES = int(os.environ.get("STRATEGIA_FUZZ_EXAMPLES", "40"))

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]


@pytest.fixture(scope="module")
def running_services(
    kafka_bootstrap_servers: str, postgres_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    databases = DatabaseFactory(postgres_admin_dsn)
    logs = tmp_path_factory.mktemp("fuzz-logs")
    prefix = unique_prefix("fuzz")
    processes = {
        name: ServiceProcess(
            name,
            service_environment(
                database_url=databases(name), kafka=kafka_bootstrap_servers, prefix=prefix
            ),
            logs / f"{name}.log",
        ).start()
        for name in SERVICES
    }
    try:
        for process in processes.values():
            process.ready()
        yield processes
    finally:
        for process in processes.values():
            process.stop()
        databases.drop_all()


@pytest.fixture(scope="module")
def known_ids(running_services: dict[str, ServiceProcess]) -> dict[str, str]:
    """Resources that exist, so fuzzed requests also get past the 404."""
    intake = running_services["intake"].url
    consultation = httpx.post(
        f"{intake}/v1/consultations", json=consultation_payload(), headers=ADMIN, timeout=10
    )
    assert consultation.status_code == 201, consultation.text
    return {"consultation_id": consultation.json()["id"]}


@pytest.mark.parametrize("service", SERVICES)
def test_no_5xx_no_undocumented_status_no_invalid_request_accepted(
    service: str,
    running_services: dict[str, ServiceProcess],
    known_ids: dict[str, str],
    tmp_path: Path,
) -> None:
    """Schemathesis's own runner (`st run`): the examples, boundary-value ("coverage") and
    random fuzzing phases, valid and invalid data, NUL bytes included."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(fuzz_config(known_ids), encoding="utf-8")
    url = running_services[service].url
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(config),
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: {ADMIN['Authorization']}",
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,coverage,fuzzing",
            "--mode",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "20261128",
            "--generation-allow-x00",
            "true",
            "--workers",
            "1",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"schemathesis found problems in {service}:\n{result.stdout}"


def fuzz_config(known_ids: dict[str, str]) -> str:
    """Half the requests naming a consultation name one that exists, so the rules behind
    the 404 are fuzzed too."""
    lines = [
        "[checks.negative_data_rejection]",
        # Invalid data is rejected by a 4xx that says why; 413 (too large) is one of them.
        "expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]",
        "",
        "[dictionaries]",
    ]
    lines += [f'{name} = {{ values = ["{value}"] }}' for name, value in known_ids.items()]
    lines += ["", "[parameters]"]
    lines += [
        f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in known_ids
    ]
    return "\n".join(lines) + "\n"


def test_the_fuzzer_sees_every_service(running_services: dict[str, ServiceProcess]) -> None:
    for name, process in running_services.items():
        document = httpx.get(f"{process.url}/openapi.json", timeout=10).json()
        assert document["paths"], f"{name} documents no endpoint"
        assert "/health/ready" in document["paths"]
