"""A real single-node Apache Kafka 4.1.1 broker (KRaft) run from Maven Central jars.

No Docker engine is needed: Maven resolves ``kafka_2.13`` and its runtime dependencies into a
per-user cache once, and the broker runs as a plain ``java`` process.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devtools.proc import (
    DevtoolsError,
    apt_install,
    log_tail,
    pid_alive,
    repo_root,
    stop_popen,
    terminate_pid,
    write_pid_file,
)
from shared.platform.kafka_security import KafkaConnection

KAFKA_VERSION = "4.1.1"
STARTED_LINE = "Kafka Server started"
# Marks the cache dir as complete; written only after Maven copied every jar.
_MARKER = ".complete"
# ``kafka.Kafka`` is the broker's main class; it identifies the process in ``ps``/procfs.
PROCESS_MARKER = "kafka.Kafka"


def kafka_dir() -> Path:
    """``devtools/kafka`` (pom.xml and log4j2.properties)."""
    return repo_root() / "devtools" / "kafka"


def jar_cache_dir() -> Path:
    # Outside the run dir on purpose: ``make clean`` must not force a new Maven download.
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "strategia" / f"kafka-{KAFKA_VERSION}"


def ensure_java() -> str:
    """Path of ``java``, installing a headless JRE first when possible."""
    java = shutil.which("java")
    if java is None:
        apt_install(["openjdk-17-jre-headless"], "Java (needed to run the Kafka broker)")
        java = shutil.which("java")
    if java is None:
        raise DevtoolsError("java is still not on PATH after installing openjdk-17-jre-headless")
    return java


def ensure_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        ensure_java()
        apt_install(["maven"], "Maven (needed to download the Kafka jars)")
        mvn = shutil.which("mvn")
    if mvn is None:
        raise DevtoolsError("mvn is still not on PATH after installing maven")
    return mvn


def ensure_kafka_jars() -> Path:
    """Directory holding every runtime jar of Kafka (KAFKA_VERSION); resolves them on first use.

    Safe to call concurrently (``make up`` next to ``make test``): a file lock serialises the
    Maven run, and the jars land in a temp dir that is renamed into place only when complete.
    """
    target = jar_cache_dir()
    if (target / _MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".kafka-{KAFKA_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _MARKER).is_file():  # another process finished while we waited
            return target
        mvn = ensure_maven()
        staging = target.parent / f".kafka-{KAFKA_VERSION}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(kafka_dir() / "pom.xml"),
            "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        print(f"devtools: resolving Kafka {KAFKA_VERSION} jars into {target}", flush=True)
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            raise DevtoolsError(
                f"Maven could not resolve the Kafka jars (exit {result.returncode}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        (staging / _MARKER).write_text(f"{KAFKA_VERSION}\n")
        shutil.rmtree(target, ignore_errors=True)  # an incomplete leftover without marker
        staging.rename(target)
    return target


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in Kafka's URL-safe base64 form (22 chars).

    Like Kafka's own ``Uuid.randomUuid``, never one starting with ``-``: the storage tool's
    argument parser would take it for an option (one id in 64 did, and failed ``make up``).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


# The broker's own super user: SCRAM credentials made at storage-format time, the broker's
# inter-broker identity, and what tests and tools use to inspect topics and apply ACLs.
ADMIN_USER = "admin"


def _jaas(module: str, username: str, password: str, **users: str) -> str:
    extra = "".join(f' user_{name}="{secret}"' for name, secret in users.items())
    return f'{module} required username="{username}" password="{password}"{extra};'


def write_server_properties(
    data_dir: Path,
    port: int,
    controller_port: int,
    host: str = "127.0.0.1",
    *,
    admin_password: str,
) -> Path:
    """(Re)write ``server.properties`` for a single combined broker+controller node.

    Clients must authenticate (SASL SCRAM-SHA-512 on ``SASL_PLAINTEXT``: the listener is on
    the loopback interface; compose adds TLS) and are authorised by KRaft's
    ``StandardAuthorizer``: nothing is allowed without an ACL, except to the super user.
    The controller listener takes SASL PLAIN with the admin only (SCRAM credentials live in
    the metadata log, which a controller must read before it can check them).
    """
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # Static quorum of one voter: no --standalone/dynamic-quorum bookkeeping needed.
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "listeners": f"SASL_PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"SASL_PLAINTEXT://{host}:{port}",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": _jaas(
            "org.apache.kafka.common.security.scram.ScramLoginModule", ADMIN_USER, admin_password
        ),
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": _jaas(
            "org.apache.kafka.common.security.plain.PlainLoginModule",
            ADMIN_USER,
            admin_password,
            **{ADMIN_USER: admin_password},
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER}",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(data_dir / "logs"),
        # Single node: every internal topic must live with one replica.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Consumers in tests must not wait 3 s for a first rebalance.
        "group.initial.rebalance.delay.ms": "0",
        # The default 128 MiB dedupe buffer is wasted memory for local use.
        "log.cleaner.dedupe.buffer.size": "2097152",
        # The cleaner looks for compactable logs every second (default 15 s), so an erased
        # person key (intake.person-keys.v1, groups.person-keys.v1: a tombstone) is
        # compacted away within a test.
        "log.cleaner.backoff.ms": "1000",
        # Only for principals allowed to CREATE the topic (the admin, a service's own).
        "auto.create.topics.enable": "true",
        "num.partitions": "1",
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "server.properties"
    # It holds the admin's password: readable by its owner only.
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("".join(f"{key}={value}\n" for key, value in props.items()))
    return path


# Written next to the data once the metadata log holds the admin's SCRAM credentials.
SCRAM_MARKER = "scram-admin"


def format_storage(
    jars: Path, data_dir: Path, properties: Path, log_file: Path, *, admin_password: str
) -> None:
    """Format the KRaft metadata log once, so topics and offsets survive restarts; the admin's
    SCRAM-SHA-512 credentials are written into it (``--add-scram``)."""
    if (data_dir / "logs" / "meta.properties").is_file():
        if not (data_dir / SCRAM_MARKER).is_file():
            raise DevtoolsError(
                f"{data_dir} was formatted before the broker required SASL: it has no admin "
                f"credentials. Delete it (e.g. `rm -rf {data_dir}`) and start again."
            )
        return  # formatted already (StorageTool would reject a different cluster id)
    java = ensure_java()
    cmd = [
        java,
        "-Xmx256m",
        f"-Dlog4j2.configurationFile={kafka_dir() / 'log4j2.properties'}",
        "-cp",
        f"{jars}/*",
        "kafka.tools.StorageTool",
        "format",
        # "=": a random id may start with "-", which argparse takes for an option.
        f"--cluster-id={new_cluster_id()}",
        "-c",
        str(properties),
        "--add-scram",
        f"SCRAM-SHA-512=[name={ADMIN_USER},password={admin_password}]",
        "--ignore-formatted",
    ]
    result = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    with open(log_file, "a") as log:
        log.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise DevtoolsError(
            f"Kafka storage format failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    (data_dir / SCRAM_MARKER).write_text(f"{ADMIN_USER}\n")


@dataclass
class KafkaProcess:
    """A running broker. ``proc`` is set when this process started it (so it can be reaped)."""

    pid: int
    port: int
    controller_port: int
    log_file: Path
    host: str = "127.0.0.1"
    pid_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    admin_password: str = field(default="", repr=False)

    def admin(self) -> KafkaConnection:
        """The super user's connection (topic inspection, users and ACLs)."""
        return KafkaConnection(
            self.bootstrap_servers, "SASL_PLAINTEXT", ADMIN_USER, self.admin_password
        )

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (controlled shutdown), SIGKILL after ``timeout``; removes the pid file."""
        if self.proc is not None:
            stop_popen(self.proc, timeout)
        else:
            terminate_pid(self.pid, timeout)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)


def _wait_started(
    proc: subprocess.Popen[bytes], log_file: Path, offset: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_file, "rb") as log:
            log.seek(offset)
            if STARTED_LINE.encode() in log.read():
                return
        if proc.poll() is not None:
            raise DevtoolsError(
                f"Kafka exited with code {proc.returncode} during startup\n"
                f"--- {log_file} ---\n{log_tail(log_file)}"
            )
        time.sleep(0.2)
    stop_popen(proc, 10.0)
    raise DevtoolsError(
        f"Kafka did not log {STARTED_LINE!r} within {timeout:.0f}s\n"
        f"--- {log_file} ---\n{log_tail(log_file)}"
    )


def start_kafka(
    data_dir: Path,
    port: int,
    controller_port: int,
    log_file: Path,
    pid_file: Path | None = None,
    *,
    admin_password: str,
    host: str = "127.0.0.1",
    timeout: float = 90.0,
) -> KafkaProcess:
    """Start a broker on ``host:port`` (controller on ``controller_port``) and wait until ready.

    Data in ``data_dir`` survives restarts. The broker runs in its own session, so it outlives
    the caller (``make up``) unless stopped; its output goes to ``log_file``.
    """
    data_dir = data_dir.resolve()
    log_file = log_file.resolve()
    jars = ensure_kafka_jars()
    java = ensure_java()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    properties = write_server_properties(
        data_dir, port, controller_port, host, admin_password=admin_password
    )
    format_storage(jars, data_dir, properties, log_file, admin_password=admin_password)
    offset = log_file.stat().st_size if log_file.exists() else 0
    cmd = [
        java,
        "-Xms256m",
        "-Xmx512m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={kafka_dir() / 'log4j2.properties'}",
        "-cp",
        f"{jars}/*",
        PROCESS_MARKER,
        str(properties),
    ]
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            start_new_session=True,
        )
    if pid_file is not None:
        write_pid_file(pid_file, proc.pid)
    try:
        _wait_started(proc, log_file, offset, timeout)
    except BaseException:
        stop_popen(proc, 10.0)
        if pid_file is not None:
            with contextlib.suppress(OSError):
                pid_file.unlink()
        raise
    return KafkaProcess(
        pid=proc.pid,
        port=port,
        controller_port=controller_port,
        log_file=log_file,
        host=host,
        pid_file=pid_file,
        proc=proc,
        admin_password=admin_password,
    )
