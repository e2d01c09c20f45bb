"""The local development stack: Kafka, PostgreSQL, an SMTP sink, the four services and the
web front (one instance: it keeps no state, and talks to the services' first instances).

Every component is a detached process (own session) with its log and pid file in the run dir
(``.run/`` at the repo root, or ``$STRATEGIA_RUN_DIR``), so ``make up`` returns while the stack
keeps running, and ``make down`` finds everything again from the pid files.

``STRATEGIA_REPLICAS=n`` (``make up REPLICAS=n``) runs n instances of every service, as a
deployment runs replicas: one database and one consumer group per service, each instance
on its own HTTP port. Instance 1 keeps the service's name and port; instance k is the
component ``<service>-k`` on the service's port + 100·(k-1), or ``STRATEGIA_<SERVICE>_<k>_PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devtools import kafka, postgres, smtp_sink
from devtools.proc import (
    DevtoolsError,
    apt_install,
    live_pid_from_file,
    log_tail,
    port_open,
    repo_root,
    terminate_pid,
    wait_port,
    write_pid_file,
)
from shared.platform import kafka_access
from shared.platform.kafka_security import KafkaConnection, principal_name

HOST = "127.0.0.1"
SERVICES: tuple[str, ...] = ("intake", "groups", "notifications", "news")
# API tokens of the roles: every service checks them.
ROLE_TOKEN_NAMES: tuple[str, ...] = ("ADMIN_TOKEN", "COORDINATOR_TOKEN", "CLERK_TOKEN")
# Secrets only one service may hold: notifications derives subscribers' links from its own.
SERVICE_SECRET_NAMES: Mapping[str, tuple[str, ...]] = {
    "notifications": ("SUBSCRIPTION_LINK_SECRET",),
}
TOKEN_NAMES: tuple[str, ...] = (
    *ROLE_TOKEN_NAMES,
    *(name for names in SERVICE_SECRET_NAMES.values() for name in names),
)
# The web front's session-signing key: generated once with the tokens, given only to web.
WEB_SECRET_NAME = "WEB_SECRET_KEY"  # noqa: S105 (the variable's name, not a secret)
WEB = "web"
READY_TIMEOUT = 120.0
# Written into every run dir we create: ``clean`` deletes only directories carrying it, so a
# mistyped STRATEGIA_RUN_DIR can never make it delete something else.
RUN_DIR_MARKER = ".strategia-run-dir"

_DEFAULT_PORTS = {
    "STRATEGIA_KAFKA_PORT": 9092,
    "STRATEGIA_KAFKA_CONTROLLER_PORT": 9093,
    "STRATEGIA_PG_PORT": 55432,
    "STRATEGIA_SMTP_PORT": 1025,
    "STRATEGIA_INTAKE_PORT": 8001,
    "STRATEGIA_GROUPS_PORT": 8002,
    "STRATEGIA_NOTIFICATIONS_PORT": 8003,
    "STRATEGIA_NEWS_PORT": 8004,
    "STRATEGIA_WEB_PORT": 8000,
}


def _env_port(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return _DEFAULT_PORTS[name]
    try:
        port = int(raw)
    except ValueError:
        raise DevtoolsError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise DevtoolsError(f"{name}={port} is out of range")
    return port


MAX_REPLICAS = 9
REPLICA_PORT_STEP = 100


def _env_replicas(env: Mapping[str, str]) -> int:
    raw = env.get("STRATEGIA_REPLICAS", "").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_REPLICAS:
        raise DevtoolsError(f"STRATEGIA_REPLICAS={raw!r}: a whole number from 1 to {MAX_REPLICAS}")
    return int(raw)


def replica_name(service: str, instance: int) -> str:
    """The component name of a service's instance (1: the service's own name)."""
    return service if instance == 1 else f"{service}-{instance}"


def service_of(component: str) -> str:
    """The service an instance component belongs to (``intake-2`` -> ``intake``)."""
    name, _, number = component.rpartition("-")
    return name if name in SERVICES and number.isdigit() else component


@dataclass(frozen=True)
class StackConfig:
    run_dir: Path
    kafka_port: int
    kafka_controller_port: int
    pg_port: int
    smtp_port: int
    service_ports: dict[str, int] = field(default_factory=dict)
    replicas: int = 1
    # Ports of the instances after the first, by component name (``intake-2``: 8101).
    replica_ports: dict[str, int] = field(default_factory=dict)
    web_port: int = 8000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if env is None else env
        run_dir = Path(env.get("STRATEGIA_RUN_DIR") or repo_root() / ".run").absolute()
        service_ports = {s: _env_port(env, f"STRATEGIA_{s.upper()}_PORT") for s in SERVICES}
        replicas = _env_replicas(env)
        replica_ports = {}
        for instance in range(2, replicas + 1):
            for service in SERVICES:
                name = f"STRATEGIA_{service.upper()}_{instance}_PORT"
                default = service_ports[service] + REPLICA_PORT_STEP * (instance - 1)
                replica_ports[replica_name(service, instance)] = (
                    _env_port(env, name) if env.get(name, "").strip() else default
                )
        return cls(
            run_dir=run_dir,
            kafka_port=_env_port(env, "STRATEGIA_KAFKA_PORT"),
            kafka_controller_port=_env_port(env, "STRATEGIA_KAFKA_CONTROLLER_PORT"),
            pg_port=_env_port(env, "STRATEGIA_PG_PORT"),
            smtp_port=_env_port(env, "STRATEGIA_SMTP_PORT"),
            service_ports=service_ports,
            replicas=replicas,
            replica_ports=replica_ports,
            web_port=_env_port(env, "STRATEGIA_WEB_PORT"),
        )

    def instances(self) -> list[tuple[str, str, int]]:
        """(component, service, HTTP port) of every service instance, first ones first."""
        return [
            (
                replica_name(service, instance),
                service,
                self.service_ports[service]
                if instance == 1
                else self.replica_ports[replica_name(service, instance)],
            )
            for instance in range(1, self.replicas + 1)
            for service in SERVICES
        ]

    def components(self) -> tuple[str, ...]:
        return (
            "kafka",
            "postgres",
            "smtp",
            *(component for component, _, _ in self.instances()),
            WEB,
        )

    def port_of(self, component: str) -> int:
        if component == WEB:
            return self.web_port
        return {component: port for component, _, port in self.instances()}[component]

    def log(self, component: str) -> Path:
        return self.run_dir / f"{component}.log"

    def pid(self, component: str) -> Path:
        return self.run_dir / f"{component}.pid"

    @property
    def kafka_data(self) -> Path:
        return self.run_dir / "kafka"

    @property
    def pg_data(self) -> Path:
        return self.run_dir / "postgres"

    @property
    def mail_dir(self) -> Path:
        return self.run_dir / "mail"

    @property
    def tokens_file(self) -> Path:
        return self.run_dir / "dev-tokens.env"

    @property
    def kafka_credentials_file(self) -> Path:
        return self.run_dir / "kafka-credentials.env"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "stack.json"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{postgres.SUPERUSER}@{HOST}:{self.pg_port}/postgres"

    def service_dsn(self, service: str) -> str:
        # The service's own role (LOGIN, owner of its database); trust auth on loopback.
        return f"postgresql://{service}@{HOST}:{self.pg_port}/{service}"

    def address(self, component: str) -> str:
        ports = {
            "kafka": self.kafka_port,
            "postgres": self.pg_port,
            "smtp": self.smtp_port,
            **self.service_ports,
            **self.replica_ports,
            WEB: self.web_port,
        }
        return f"{HOST}:{ports[component]}"

    def to_json(self) -> str:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        return json.dumps(data, indent=2, sort_keys=True)


# Process markers: a pid file only counts when its process still has this in its argv.
def _marker(component: str) -> str:
    return {
        "kafka": kafka.PROCESS_MARKER,
        "postgres": postgres.PROCESS_MARKER,
        "smtp": smtp_sink.PROCESS_MARKER,
    }.get(component, service_of(component))


# The components of a stack of one instance per service (see StackConfig.components).
COMPONENTS: tuple[str, ...] = ("kafka", "postgres", "smtp", *SERVICES, WEB)


def running_pid(config: StackConfig, component: str) -> int | None:
    return live_pid_from_file(config.pid(component), _marker(component))


# --- tokens ----------------------------------------------------------------------------------


def load_or_create_tokens(
    path: Path,
    names: tuple[str, ...] = (*TOKEN_NAMES, WEB_SECRET_NAME),
    *,
    hex_values: bool = False,
) -> dict[str, str]:
    """Secrets for local use: generated once, then reused (``KEY=value`` lines, mode 600)."""
    tokens: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key in names and value:
                tokens[key] = value
    if all(name in tokens for name in names):
        return tokens
    for name in names:
        tokens.setdefault(name, secrets.token_hex(24) if hex_values else secrets.token_urlsafe(32))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("".join(f"{name}={tokens[name]}\n" for name in names))
    tmp.replace(path)
    return tokens


# The name of a variable in the credentials file, not a password.
KAFKA_ADMIN_PASSWORD = "STRATEGIA_KAFKA_PASSWORD_ADMIN"  # noqa: S105


def topic_prefix() -> str:
    return os.environ.get("STRATEGIA_KAFKA_TOPIC_PREFIX", "")


def load_or_create_kafka_passwords(path: Path) -> dict[str, str]:
    """SCRAM passwords of the admin and of every principal the code derives (a new service
    gets one on the next ``up``): ``STRATEGIA_KAFKA_PASSWORD_<PRINCIPAL>`` lines, mode 600."""
    names = (
        KAFKA_ADMIN_PASSWORD,
        *(kafka_access.password_variable(name) for name in kafka_access.principal_names()),
    )
    return load_or_create_tokens(path, names, hex_values=True)


def apply_kafka_access(config: StackConfig, passwords: Mapping[str, str]) -> None:
    """Create or update the principals' SCRAM users and sync their ACLs (from the code)."""
    prefix = topic_prefix()
    users = {
        principal_name(prefix, name): passwords[kafka_access.password_variable(name)]
        for name in kafka_access.principal_names()
    }
    asyncio.run(kafka_access.apply_access(kafka_admin(config, passwords), prefix, users))
    print(
        f"Kafka: {len(users)} principals, {len(kafka_access.acl_bindings(prefix))} ACLs applied",
        flush=True,
    )


def kafka_admin(config: StackConfig, passwords: Mapping[str, str]) -> KafkaConnection:
    return KafkaConnection(
        f"{HOST}:{config.kafka_port}",
        "SASL_PLAINTEXT",
        kafka.ADMIN_USER,
        passwords[KAFKA_ADMIN_PASSWORD],
    )


# --- helpers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(config: StackConfig, *, create: bool = False) -> Iterator[None]:
    """Serialise up/down/clean on one run dir (``create``: make it, as ``up`` does)."""
    if create:
        config.run_dir.mkdir(parents=True, exist_ok=True)
        (config.run_dir / RUN_DIR_MARKER).touch()
    with open(config.run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _service_python() -> str:
    venv_python = repo_root() / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def _require_free(port: int, what: str, env_name: str) -> None:
    if port_open(port, HOST):
        raise DevtoolsError(
            f"port {port} wanted by {what} is already in use on {HOST}; "
            f"stop whatever listens there or choose another port with {env_name}=<port>"
        )


def _spawn(cmd: list[str], log_file: Path, pid_file: Path, env: Mapping[str, str]) -> int:
    """Start ``cmd`` detached (own session: survives us, and its group can be signalled)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=repo_root(),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    write_pid_file(pid_file, proc.pid)
    return proc.pid


def service_env(
    config: StackConfig,
    service: str,
    tokens: Mapping[str, str],
    *,
    port: int | None = None,
    kafka_passwords: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = dict(os.environ)
    if kafka_passwords is not None:
        # The service's own principal: it may touch only what its code uses.
        user = principal_name(topic_prefix(), service)
        env["STRATEGIA_KAFKA_SECURITY_PROTOCOL"] = "SASL_PLAINTEXT"
        env["STRATEGIA_KAFKA_SASL_USERNAME"] = user
        env["STRATEGIA_KAFKA_SASL_PASSWORD"] = kafka_passwords[
            kafka_access.password_variable(service)
        ]
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "STRATEGIA_HTTP_HOST": HOST,
            "STRATEGIA_HTTP_PORT": str(port or config.service_ports[service]),
            "STRATEGIA_DATABASE_URL": config.service_dsn(service),
            "STRATEGIA_KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{config.kafka_port}",
            **{
                f"STRATEGIA_{name}": tokens[name]
                for name in (*ROLE_TOKEN_NAMES, *SERVICE_SECRET_NAMES.get(service, ()))
            },
        }
    )
    # The web front runs on this host and passes the resident's address on in
    # X-Forwarded-For: believed from loopback only, so rate limits count residents.
    env.setdefault("STRATEGIA_TRUSTED_PROXIES", f'["{HOST}"]')
    if service == "notifications":
        env["STRATEGIA_SMTP_HOST"] = HOST
        env["STRATEGIA_SMTP_PORT"] = str(config.smtp_port)
    return env


def web_env(config: StackConfig, tokens: Mapping[str, str]) -> dict[str, str]:
    """The web front: the services' first instances, the clerk token (its desk's sign-in)
    and the session-signing key."""
    env = dict(os.environ)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "STRATEGIA_HTTP_HOST": HOST,
            "STRATEGIA_HTTP_PORT": str(config.web_port),
            **{
                f"STRATEGIA_{service.upper()}_URL": f"http://{HOST}:{config.service_ports[service]}"
                for service in SERVICES
            },
            "STRATEGIA_CLERK_TOKEN": tokens["CLERK_TOKEN"],
            "STRATEGIA_WEB_SECRET_KEY": tokens[WEB_SECRET_NAME],
        }
    )
    return env


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health/ready", timeout=2) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_services_ready(
    config: StackConfig, services: tuple[str, ...] | None = None, timeout: float = READY_TIMEOUT
) -> None:
    """Poll every ``/health/ready`` until all answer 200; fail fast when a service dies.
    `services`: instance components (default: all of them)."""
    pending = set(services or (component for component, _, _ in config.instances()))
    deadline = time.monotonic() + timeout
    while pending:
        for service in sorted(pending):
            if _ready(config.port_of(service)):
                pending.discard(service)
                print(f"  {service} is ready", flush=True)
            elif running_pid(config, service) is None:
                raise DevtoolsError(
                    f"{service} exited before becoming ready\n"
                    f"--- {config.log(service)} ---\n{log_tail(config.log(service))}\n"
                    "The rest of the stack is left running; stop it with `make down`."
                )
        if not pending:
            return
        if time.monotonic() >= deadline:
            tails = "\n".join(
                f"--- {config.log(s)} ---\n{log_tail(config.log(s))}" for s in sorted(pending)
            )
            raise DevtoolsError(
                f"not ready within {timeout:.0f}s: {', '.join(sorted(pending))} "
                f"(GET http://{HOST}:<port>/health/ready did not answer 200)\n{tails}\n"
                "The stack is left running for inspection; stop it with `make down`."
            )
        time.sleep(0.5)


# --- commands --------------------------------------------------------------------------------


def install() -> None:
    """Everything ``up`` and the tests need besides Python packages: JRE, Maven, jars, Postgres."""
    kafka.ensure_java()
    jars = kafka.ensure_kafka_jars()
    bindir = postgres.ensure_postgres_binaries()
    print(f"devtools: Kafka jars in {jars}; PostgreSQL binaries in {bindir}")


def ensure_browser() -> None:
    """Debian's Chromium and its WebDriver, for the web front's browser tests."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    apt_install(["chromium", "chromium-driver"], "Chromium and chromedriver (browser tests)")


def _check_same_ports(config: StackConfig) -> None:
    """Refuse to mix a running stack with a different port configuration."""
    if not config.state_file.is_file():
        return
    previous = json.loads(config.state_file.read_text())
    current = json.loads(config.to_json())
    if previous != current and any(running_pid(config, c) for c in _all_components(config)):
        raise DevtoolsError(
            f"a stack with other settings is running from {config.run_dir} "
            f"(see {config.state_file}); run `make down` first"
        )


def up(config: StackConfig) -> None:
    with _locked(config, create=True):
        _check_same_ports(config)
        config.state_file.write_text(config.to_json() + "\n")
        tokens = load_or_create_tokens(config.tokens_file)
        kafka_passwords = load_or_create_kafka_passwords(config.kafka_credentials_file)
        install()

        if running_pid(config, "kafka") is None:
            _require_free(config.kafka_port, "Kafka", "STRATEGIA_KAFKA_PORT")
            _require_free(
                config.kafka_controller_port,
                "the Kafka controller",
                "STRATEGIA_KAFKA_CONTROLLER_PORT",
            )
            print(f"starting Kafka on {config.address('kafka')} ...", flush=True)
            kafka.start_kafka(
                config.kafka_data,
                config.kafka_port,
                config.kafka_controller_port,
                config.log("kafka"),
                config.pid("kafka"),
                admin_password=kafka_passwords[KAFKA_ADMIN_PASSWORD],
                host=HOST,
            )
        else:
            print("Kafka already running", flush=True)
        apply_kafka_access(config, kafka_passwords)

        if running_pid(config, "postgres") is None:
            _require_free(config.pg_port, "PostgreSQL", "STRATEGIA_PG_PORT")
            print(f"starting PostgreSQL on {config.address('postgres')} ...", flush=True)
            postgres.start_postgres(
                config.pg_data, config.pg_port, config.log("postgres"), config.pid("postgres")
            )
        else:
            print("PostgreSQL already running", flush=True)
        postgres.ensure_service_databases(config.admin_dsn, SERVICES)

        if running_pid(config, "smtp") is None:
            _require_free(config.smtp_port, "the SMTP sink", "STRATEGIA_SMTP_PORT")
            print(f"starting SMTP sink on {config.address('smtp')} ...", flush=True)
            cmd = [
                _service_python(),
                "-m",
                smtp_sink.PROCESS_MARKER,
                *("--host", HOST, "--port", str(config.smtp_port), "--dir", str(config.mail_dir)),
            ]
            _spawn(cmd, config.log("smtp"), config.pid("smtp"), os.environ)
            wait_port(
                config.smtp_port, 30, host=HOST, what="SMTP sink", log_file=config.log("smtp")
            )
        else:
            print("SMTP sink already running", flush=True)

        for component, service, port in config.instances():
            if running_pid(config, component) is not None:
                print(f"{component} already running", flush=True)
                continue
            _require_free(port, component, _port_variable(component))
            print(f"starting {component} on {config.address(component)} ...", flush=True)
            _spawn(
                [_service_python(), "-m", service],
                config.log(component),
                config.pid(component),
                service_env(config, service, tokens, port=port, kafka_passwords=kafka_passwords),
            )
        if running_pid(config, WEB) is None:
            _require_free(config.web_port, WEB, "STRATEGIA_WEB_PORT")
            print(f"starting web on {config.address(WEB)} ...", flush=True)
            _spawn(
                [_service_python(), "-m", WEB],
                config.log(WEB),
                config.pid(WEB),
                web_env(config, tokens),
            )
        else:
            print("web already running", flush=True)
        print(f"waiting for /health/ready (up to {READY_TIMEOUT:.0f}s) ...", flush=True)
        wait_services_ready(config, (*(c for c, _, _ in config.instances()), WEB))
    print_status(config)


def _port_variable(component: str) -> str:
    service = service_of(component)
    if component == service:
        return f"STRATEGIA_{service.upper()}_PORT"
    return f"STRATEGIA_{service.upper()}_{component.rpartition('-')[2]}_PORT"


def _all_components(config: StackConfig) -> tuple[str, ...]:
    """What this config runs, and any further instances an earlier ``up`` left pid files of
    (started with more replicas)."""
    extra = sorted(
        path.stem
        for path in config.run_dir.glob("*-*.pid")
        if service_of(path.stem) != path.stem and path.stem not in config.components()
    )
    return (*config.components(), *extra)


def _stop_component(config: StackConfig, component: str) -> None:
    pid = running_pid(config, component)
    if component == "postgres":
        # pg_ctl finds the postmaster through the data dir, even without our pid file.
        if pid is not None or config.pg_data.exists():
            postgres.stop_postgres(config.pg_data, pid=pid)
    elif pid is not None:
        # Kafka gets longer: a controlled shutdown flushes its logs.
        terminate_pid(pid, timeout=60.0 if component == "kafka" else 20.0, group=True)
    if pid is not None:
        print(f"stopped {component} (pid {pid})", flush=True)
    config.pid(component).unlink(missing_ok=True)


def down(config: StackConfig) -> None:
    if not config.run_dir.exists():
        print(f"nothing to stop: {config.run_dir} does not exist")
        return
    with _locked(config):
        # Services first (they hold Kafka/Postgres connections), infrastructure last.
        infrastructure = ("kafka", "postgres", "smtp")
        services = [c for c in _all_components(config) if c not in infrastructure]
        for component in (*reversed(services), "smtp", "kafka", "postgres"):
            _stop_component(config, component)


def clean(config: StackConfig) -> None:
    if not config.run_dir.exists():
        print(f"nothing to clean: {config.run_dir} does not exist")
        return
    if not (config.run_dir / RUN_DIR_MARKER).exists():
        raise DevtoolsError(
            f"refusing to delete {config.run_dir}: it lacks {RUN_DIR_MARKER}, "
            "so it was not made by `make up`"
        )
    down(config)
    postgres.remove_data_dir(config.pg_data)  # follows a relocation symlink, see postgres.py
    shutil.rmtree(config.run_dir)
    print(f"removed {config.run_dir}")


def status_rows(config: StackConfig) -> list[tuple[str, str, str, str]]:
    rows = []
    instances = {component for component, _, _ in config.instances()} | {WEB}
    for component in config.components():
        pid = running_pid(config, component)
        state = "running" if pid is not None else "stopped"
        if pid is not None and component in instances:
            state = "ready" if _ready(config.port_of(component)) else "not ready"
        rows.append((component, state, str(pid or "-"), config.address(component)))
    return rows


def print_status(config: StackConfig) -> None:
    if config.state_file.is_file():
        # Show the ports the stack was started with, whatever this shell's env says.
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            saved = json.loads(config.state_file.read_text())
            saved["run_dir"] = Path(saved["run_dir"])
            config = StackConfig(**saved)
    header = ("COMPONENT", "STATE", "PID", "ADDRESS")
    rows = [header, *status_rows(config)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(line.rstrip())
    print()
    print(f"run dir:    {config.run_dir}")
    print(f"logs:       {config.run_dir}/<component>.log")
    print(f"tokens:     {config.tokens_file}")
    print(f"kafka SASL: {config.kafka_credentials_file} (SCRAM-SHA-512; admin: {kafka.ADMIN_USER})")
    print(f"mail:       {config.mail_dir}/*.eml")
    print(f"web:        http://{HOST}:{config.web_port}  (the residents' pages)")
    print(f"kafka:      {HOST}:{config.kafka_port}")
    print(f"postgres:   {config.admin_dsn} (admin)")
    print(f"            postgresql://<service>@{HOST}:{config.pg_port}/<service> (services)")
    if config.replicas > 1:
        print(f"replicas:   {config.replicas} instances of every service (one database and one")
        print("            consumer group per service), HTTP on these ports:")
        for service in SERVICES:
            ports = [port for _, owner, port in config.instances() if owner == service]
            print(f"            {service:<14}{', '.join(str(port) for port in ports)}")
