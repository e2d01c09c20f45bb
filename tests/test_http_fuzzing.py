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
import time
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
    submission_payload,
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
    consultation_id = consultation.json()["id"]
    return {"consultation_id": consultation_id, **groups_ids(running_services, consultation_id)}


def groups_ids(services: dict[str, ServiceProcess], consultation_id: str) -> dict[str, str]:
    """A working group with three members and a submission routed to it, so the groups
    endpoints are fuzzed past their 404 too."""
    groups, intake = services["groups"].url, services["intake"].url
    deadline = time.monotonic() + 60
    while httpx.get(f"{groups}/v1/consultations/{consultation_id}/groups", timeout=10).is_error:
        assert time.monotonic() < deadline, "groups never learnt of the consultation"
        time.sleep(0.2)
    volunteer_ids = []
    for n in range(3):
        signed_up = httpx.post(
            f"{groups}/v1/consultations/{consultation_id}/volunteers",
            json={
                "name": f"Wolontariusz {n}",
                "email": f"fuzz{n}@example.org",
                "themes": ["social"],
                "consent": {"processing": True},
                "channel": "phone",
            },
            headers=ADMIN,
            timeout=10,
        )
        assert signed_up.status_code == 202, signed_up.text
        volunteer_ids.append(signed_up.json()["volunteer_id"])
    group_id = signed_up.json()["group"]["id"]
    submitted = httpx.post(
        f"{intake}/v1/consultations/{consultation_id}/submissions",
        json=submission_payload(),
        timeout=10,
    )
    assert submitted.status_code == 202, submitted.text
    queue = f"{groups}/v1/groups/{group_id}/submissions"
    while not httpx.get(queue, headers=ADMIN, timeout=10).json()["total"]:
        assert time.monotonic() < deadline, "the submission never reached its group"
        time.sleep(0.2)
    return {
        "group_id": group_id,
        "volunteer_id": volunteer_ids[0],
        "submission_id": submitted.json()["id"],
    }


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
