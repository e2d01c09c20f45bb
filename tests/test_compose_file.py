"""Structure checks of docker-compose.yml, the service Dockerfiles and the
PostgreSQL init script (no Docker engine is needed, nor started)."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "init-databases.sh"
ENV_EXAMPLE = ROOT / ".env.example"

APP_SERVICES = ("intake", "groups", "notifications", "news")
INFRA_SERVICES = ("proxy", "kafka", "postgres", "mailpit")
WEB = "web"
# One-shot steps: they run to completion before the services start.
INIT_SERVICES = ("kafka-init",)
KAFKA_START = ROOT / "deploy" / "kafka" / "start.sh"
KAFKA_CERTS = ROOT / "deploy" / "kafka" / "make-certs.sh"
CADDYFILE = ROOT / "deploy" / "caddy" / "Caddyfile"
SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET")

# ${NAME}, ${NAME:?message}, ${NAME?message}, ${NAME:-default}, ${NAME-default}
REFERENCE = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}$")
REQUIRED_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose["services"]
    assert isinstance(services, dict)
    return services


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "KEY=value" form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    result = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        result.append((instruction.upper(), arguments.strip()))
    return result


def workspace_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members: list[str] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members.extend(
            path.parent.relative_to(ROOT).as_posix()
            for path in ROOT.glob(f"{pattern}/pyproject.toml")
        )
    return sorted(members)


def test_all_services_present(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == set(APP_SERVICES) | set(INFRA_SERVICES) | set(INIT_SERVICES) | {WEB}


def test_web_front_reaches_the_services_through_the_proxy(
    services: dict[str, dict[str, Any]],
) -> None:
    web = services[WEB]
    assert web["build"]["args"]["SERVICE"] == WEB
    assert Path(web["build"]["context"]) == Path(".")
    assert web["ports"] == ["8000:8000"]
    env = environment(web)
    assert env["STRATEGIA_HTTP_HOST"] == "0.0.0.0"
    assert env["STRATEGIA_HTTP_PORT"] == "8000"
    for n, name in enumerate(APP_SERVICES):
        assert env[f"STRATEGIA_{name.upper()}_URL"] == f"http://proxy:{8001 + n}"
    assert REQUIRED_REFERENCE.fullmatch(env["STRATEGIA_WEB_SECRET_KEY"])
    assert "STRATEGIA_DATABASE_URL" not in env, "the web front keeps no state"
    assert "/health/ready" in " ".join(web["healthcheck"]["test"])


@pytest.mark.parametrize("name", (*APP_SERVICES, *INFRA_SERVICES, WEB))
def test_every_service_has_healthcheck_and_restart_policy(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    healthcheck = service.get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    assert not healthcheck.get("disable", False)
    assert healthcheck["test"][0] in ("CMD", "CMD-SHELL")
    assert service.get("restart") in ("always", "unless-stopped")


def test_infrastructure_images(services: dict[str, dict[str, Any]]) -> None:
    assert re.fullmatch(r"apache/kafka:4\.1\.\d+", services["kafka"]["image"])
    assert services["postgres"]["image"] in ("postgres:16", "postgres:17")
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")


def test_kafka_runs_single_node_kraft(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = environment(kafka)
    assert env["KAFKA_CFG_PROCESS_ROLES"] == "broker,controller"
    node_id = env["KAFKA_CFG_NODE_ID"]
    assert env["KAFKA_CFG_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:9093"
    assert env["KAFKA_CFG_ADVERTISED_LISTENERS"] == "SASL_SSL://kafka:9092"
    for key in (
        "KAFKA_CFG_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_CFG_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_CFG_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    assert any(volume.endswith(":" + env["KAFKA_CFG_LOG_DIRS"]) for volume in kafka["volumes"])


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path of the service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        found[target] = source
    return found


def test_kafka_takes_only_authenticated_tls_clients_and_authorises_by_acl(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    env = environment(kafka)
    listeners = dict(
        item.split(":", 1) for item in env["KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    # No plaintext and no unauthenticated listener.
    assert listeners == {"CONTROLLER": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL"}
    assert env["KAFKA_CFG_LISTENERS"] == "SASL_SSL://:9092,CONTROLLER://:9093"
    assert env["KAFKA_CFG_INTER_BROKER_LISTENER_NAME"] == "SASL_SSL"
    assert env["KAFKA_CFG_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_CFG_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512"
    assert env["KAFKA_CFG_AUTHORIZER_CLASS_NAME"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert env["KAFKA_CFG_SUPER_USERS"] == "User:admin"
    assert env["KAFKA_CFG_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_CFG_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM"] == "https"
    assert REQUIRED_REFERENCE.fullmatch(env["KAFKA_ADMIN_PASSWORD"])
    # Ports stay inside the compose network.
    assert "ports" not in kafka
    # The start script: secrets into the JAAS settings, admin's SCRAM user at format time.
    mounted = mounts(kafka)
    assert kafka["entrypoint"] == ["/bin/sh", "/etc/strategia/kafka-start.sh"]
    assert Path(mounted["/etc/strategia/kafka-start.sh"]) == Path("deploy/kafka/start.sh")
    script = KAFKA_START.read_text(encoding="utf-8")
    assert "--add-scram" in script and "SCRAM-SHA-512=[name=admin" in script
    assert "KAFKA_CFG_" in script
    # TLS material from the documented script, never from the image or the repository.
    assert Path(mounted[env["KAFKA_CFG_SSL_KEYSTORE_LOCATION"]]) == Path(
        "deploy/kafka/certs/broker.pem"
    )
    assert Path(mounted[env["KAFKA_CFG_SSL_TRUSTSTORE_LOCATION"]]) == Path(
        "deploy/kafka/certs/ca.crt"
    )
    assert os.access(KAFKA_CERTS, os.X_OK)
    assert "deploy/kafka/certs/" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    # The health check authenticates like any client.
    assert "--command-config" in kafka["healthcheck"]["test"]


def test_kafka_init_creates_every_principal_the_code_derives(
    services: dict[str, dict[str, Any]],
) -> None:
    from shared.platform.kafka_access import password_variable, principal_names

    init = services["kafka-init"]
    assert init["command"] == ["python", "-m", "shared.platform.kafka_access"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["restart"] == "on-failure"
    env = environment(init)
    assert env["STRATEGIA_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["STRATEGIA_KAFKA_SASL_USERNAME"] == "admin"
    assert env["STRATEGIA_KAFKA_SASL_PASSWORD"].startswith("${KAFKA_ADMIN_PASSWORD:?")
    assert Path(mounts(init)[env["STRATEGIA_KAFKA_SSL_CA_FILE"]]) == Path(
        "deploy/kafka/certs/ca.crt"
    )
    # A new service or client role in the code needs its password here.
    for name in principal_names():
        assert REQUIRED_REFERENCE.fullmatch(env[password_variable(name)]), name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_builds_from_the_one_dockerfile(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    build = services[name]["build"]
    assert Path(build["context"]) == Path(".")
    assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
    assert build["args"]["SERVICE"] == name
    assert (ROOT / "Dockerfile").is_file()
    assert not (ROOT / "services" / name / "Dockerfile").exists(), "one Dockerfile for all"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_waits_for_healthy_kafka_and_postgres(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    depends_on = services[name]["depends_on"]
    for dependency in ("kafka", "postgres"):
        assert depends_on[dependency]["condition"] == "service_healthy", dependency
    # Its Kafka user and ACLs exist before it starts.
    assert depends_on["kafka-init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_settings(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    env = environment(service)
    assert env["STRATEGIA_HTTP_HOST"] == "0.0.0.0"
    assert env["STRATEGIA_HTTP_PORT"] == "8000"
    assert env["STRATEGIA_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    # Its own Kafka principal (the default username, <prefix><service>), over verified TLS.
    assert env["STRATEGIA_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert "STRATEGIA_KAFKA_SASL_USERNAME" not in env
    assert env["STRATEGIA_KAFKA_SASL_PASSWORD"].startswith(f"${{{name.upper()}_KAFKA_PASSWORD:?")
    assert Path(mounts(service)[env["STRATEGIA_KAFKA_SSL_CA_FILE"]]) == Path(
        "deploy/kafka/certs/ca.crt"
    )
    for key in (
        "STRATEGIA_ADMIN_TOKEN",
        "STRATEGIA_COORDINATOR_TOKEN",
        "STRATEGIA_CLERK_TOKEN",
        "STRATEGIA_LOG_LEVEL",
        "STRATEGIA_GMINA_PROFILE",
    ):
        assert key in env, key
    # Replicas publish no port: only the proxy reaches them (several replicas could not
    # share one host port anyway).
    assert "ports" not in service
    assert "/health/ready" in " ".join(service["healthcheck"]["test"])
    assert env["STRATEGIA_HTTP_WORKERS"] == "${STRATEGIA_HTTP_WORKERS:-2}"
    assert env["STRATEGIA_KAFKA_TOPIC_PARTITIONS"] == "${STRATEGIA_KAFKA_TOPIC_PARTITIONS:-6}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_as_replicas(services: dict[str, dict[str, Any]], name: str) -> None:
    replicas = services[name]["deploy"]["replicas"]
    match = REFERENCE.match(str(replicas))
    assert match and match["name"] == "STRATEGIA_REPLICAS" and int(match["arg"]) >= 2, replicas


def test_a_reverse_proxy_publishes_each_service_and_spreads_over_its_replicas(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    proxy = services["proxy"]
    assert re.fullmatch(r"caddy:2(\.\d+)*-alpine", proxy["image"]), proxy["image"]
    assert proxy["ports"] == [f"{8001 + n}:{8001 + n}" for n in range(len(APP_SERVICES))]
    assert set(proxy["depends_on"]) == set(APP_SERVICES)
    mounts = [volume.split(":") for volume in proxy["volumes"]]
    assert ["./deploy/caddy/Caddyfile", "/etc/caddy/Caddyfile", "ro"] in mounts
    assert "8080/healthz" in " ".join(proxy["healthcheck"]["test"])

    caddyfile = CADDYFILE.read_text(encoding="utf-8")
    # Each public port proxies to its service's DNS name, re-resolved so every replica
    # (one A record each) gets requests; a failing replica is skipped and retried around.
    for n, name in enumerate(APP_SERVICES):
        site = re.search(rf"^:{8001 + n} \{{\n\timport replicas {name}\n\}}$", caddyfile, re.M)
        assert site, name
    assert re.search(r"dynamic a \{args\[0\]\} 8000", caddyfile)
    for directive in ("lb_policy round_robin", "lb_retries", "fail_duration", "refresh"):
        assert directive in caddyfile, directive
    assert re.search(r"^:8080 \{\n\trespond /healthz 200\n\}$", caddyfile, re.M)

    # Behind the proxy, X-Forwarded-For is believed from the compose network only, which
    # is fixed so that the setting can name it.
    [subnet] = [c["subnet"] for c in compose["networks"]["default"]["ipam"]["config"]]
    env = environment(services["intake"])
    assert json.loads(env["STRATEGIA_TRUSTED_PROXIES"]) == [subnet]


def test_gmina_defaults_are_konstancin_jeziorna(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["intake"])
    assert env["STRATEGIA_GMINA_PROFILE"] == "${STRATEGIA_GMINA_PROFILE:-konstancin-jeziorna}"


def test_notifications_smtp_defaults_to_mailpit(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["notifications"])
    assert env["STRATEGIA_SMTP_HOST"] == "${STRATEGIA_SMTP_HOST:-mailpit}"
    assert env["STRATEGIA_SMTP_PORT"] == "${STRATEGIA_SMTP_PORT:-1025}"
    assert env["STRATEGIA_SMTP_TLS"] == "${STRATEGIA_SMTP_TLS:-none}"
    for key in ("STRATEGIA_SMTP_USERNAME", "STRATEGIA_SMTP_PASSWORD", "STRATEGIA_MAIL_FROM"):
        assert REFERENCE.match(env[key]), key


@pytest.mark.parametrize("name", (*APP_SERVICES, *INFRA_SERVICES, *INIT_SERVICES, WEB))
def test_no_hard_coded_secrets(services: dict[str, dict[str, Any]], name: str) -> None:
    for key, value in environment(services[name]).items():
        if not any(word in key.upper() for word in SECRET_WORDS):
            continue
        match = REFERENCE.match(value)
        assert match, f"{name}.{key} must be a ${{...}} reference, not a literal"
        if match["op"] in (":-", "-"):
            assert match["arg"] == "", f"{name}.{key} has a non-empty default"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_has_its_own_database_and_role(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    url = environment(services[name])["STRATEGIA_DATABASE_URL"]
    match = re.fullmatch(
        r"postgresql://(?P<user>[^:@/]+):(?P<password>.+)@postgres:5432/(?P<db>\w+)", url
    )
    assert match, url
    assert match["user"] == name
    assert match["db"] == name
    password_var = f"{name.upper()}_DB_PASSWORD"
    assert REQUIRED_REFERENCE.fullmatch(match["password"]), match["password"]
    assert match["password"].startswith(f"${{{password_var}:?")
    # ... and the postgres container gets the same variable for its init script.
    assert environment(services["postgres"])[password_var].startswith(f"${{{password_var}:?")


def test_postgres_runs_the_init_script(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert REQUIRED_REFERENCE.fullmatch(environment(postgres)["POSTGRES_PASSWORD"])
    mounts = [volume.split(":") for volume in postgres["volumes"]]
    assert any(
        Path(source) == Path("deploy/postgres/init-databases.sh")
        and target.startswith("/docker-entrypoint-initdb.d/")
        and target.endswith(".sh")
        for source, target, *_ in mounts
    ), mounts
    assert any(target == "/var/lib/postgresql/data" for _, target, *_ in mounts)
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_init_script_creates_a_role_and_database_per_service() -> None:
    script = INIT_SCRIPT.read_text(encoding="utf-8")
    assert script.startswith("#!/usr/bin/env bash\n")
    # The postgres entrypoint executes *.sh files only if executable (else sources them).
    assert os.access(INIT_SCRIPT, os.X_OK), "init-databases.sh must be executable"
    services_line = re.search(r"^STRATEGIA_SERVICES=\((?P<names>[^)]*)\)$", script, re.MULTILINE)
    assert services_line, "STRATEGIA_SERVICES=(...) not found"
    assert sorted(services_line["names"].split()) == sorted(APP_SERVICES)
    assert '"${service^^}_DB_PASSWORD"' in script
    assert "CREATE ROLE %I LOGIN PASSWORD %L" in script
    assert "CREATE DATABASE %I OWNER %I" in script
    assert "ON_ERROR_STOP=1" in script


def test_every_required_variable_is_listed_empty_in_env_example(
    services: dict[str, dict[str, Any]],
) -> None:
    required = {
        name
        for service in services.values()
        for value in environment(service).values()
        for name in REQUIRED_REFERENCE.findall(value)
    }
    assert {"POSTGRES_PASSWORD", "STRATEGIA_ADMIN_TOKEN"} <= required
    example: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"not KEY=value: {line!r}"
            example[key.strip()] = value.strip()
    assert required <= set(example), required - set(example)
    for key, value in example.items():
        if any(word in key for word in SECRET_WORDS):
            assert value == "", f".env.example must not hold a value for {key}"


def test_dockerfile() -> None:
    instructions = dockerfile_instructions(ROOT / "Dockerfile")
    keywords = [instruction for instruction, _ in instructions]
    stages = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    assert len(stages) >= 2, "multi-stage build expected"
    assert all(stage.split()[0] == "python:3.11-slim" for stage in stages), stages
    assert ("ARG", "SERVICE") in instructions

    runs = [arguments for instruction, arguments in instructions if instruction == "RUN"]
    assert any(re.search(r"\bpip install\b.*\buv\b", run) for run in runs)
    sync = [run for run in runs if run.startswith("uv sync")]
    assert sync, "no uv sync"
    for run in sync:
        options = run.split()
        assert "--no-dev" in options
        assert "--locked" in options or "--frozen" in options
        assert options[options.index("--package") + 1] == '"strategia-${SERVICE}"'

    copied = " ".join(arguments for instruction, arguments in instructions if instruction == "COPY")
    for manifest in ("pyproject.toml", "uv.lock"):
        assert manifest in copied.split()
    # uv needs every workspace member's pyproject.toml to check the lock file.
    for member in workspace_members():
        assert f"{member}/pyproject.toml {member}/" in copied, member
    assert "services/${SERVICE}/ services/${SERVICE}/" in copied
    assert "shared/ shared/" in copied

    final_stage = instructions[len(keywords) - keywords[::-1].index("FROM") :]
    users = [arguments for instruction, arguments in final_stage if instruction == "USER"]
    assert users and users[-1] not in ("root", "0"), "must run as a non-root user"
    assert ("EXPOSE", "8000") in final_stage
    assert any("STRATEGIA_SERVICE=${SERVICE}" in arguments for _, arguments in final_stage)
    healthchecks = [
        arguments for instruction, arguments in final_stage if instruction == "HEALTHCHECK"
    ]
    assert healthchecks and "/health/ready" in healthchecks[-1]
    commands = [arguments for instruction, arguments in final_stage if instruction == "CMD"]
    assert commands, "no CMD"
    assert json.loads(commands[-1]) == ["/bin/sh", "-c", 'exec python -m "$STRATEGIA_SERVICE"']
    assert not any(instruction == "ENTRYPOINT" for instruction, _ in final_stage)


def test_dockerignore_keeps_secrets_and_venvs_out() -> None:
    patterns = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for pattern in (".env", ".git", "**/.venv"):
        assert pattern in patterns, pattern
